"""Validation of automations/: precise errors naming file, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricecheck_alerts.cli import main
from pricecheck_alerts.config.loader import ConfigError, load_catalog


def write_rules(tree: Path, text: str) -> None:
    (tree / "automations" / "rules" / "zz-test.yaml").write_text(text)


def problems(tree: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_catalog(tree)
    return caught.value.problems


def test_real_catalog_loads(project_root: Path) -> None:
    catalog = load_catalog(project_root)
    names = {r.name for r in catalog.rules}
    assert {
        "flow-run-failed",
        "flow-run-crashed",
        "flow-run-timed-out",
        "run-duration-sla",
        "task-run-failed",
        "model-drift",
        "data-volume-anomaly",
    } <= names
    assert catalog.slas.deployments["pricechecktn-pipeline"].max_duration_s == 3600
    assert catalog.slas.thresholds.scraping.min_success_rate == 0.95
    assert catalog.slas.thresholds.api.max_response_ms == 500


RULE = """rules:
  - name: my-rule
    description: test
    severity: warning
    trigger: {kind: flow-run-state, states: [Failed]}
    message: m
    runbook: docs/runbooks/flow-run-failed.md
"""


def test_unknown_key_names_file_rule_and_field(tree: Path) -> None:
    write_rules(tree, RULE.replace("    message: m\n", "    message: m\n    severty: info\n"))
    assert problems(tree) == [
        "automations/rules/zz-test.yaml:7: rule 'my-rule': field 'severty': unknown key"
    ]


def test_nested_trigger_field_is_named_without_union_noise(tree: Path) -> None:
    write_rules(tree, RULE.replace("states: [Failed]", "states: [Exploded]"))
    [problem] = problems(tree)
    assert problem.startswith(
        "automations/rules/zz-test.yaml:5: rule 'my-rule': field 'trigger.states[0]': "
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("severity: warning", "severity: urgent"), "severity"),
        (("runbook: docs/runbooks/flow-run-failed.md", "runbook: see wiki"), "runbook"),
        (("runbook: docs/runbooks/flow-run-failed.md", "runbook: docs/none.md"), "runbook"),
        (("message: m", "message: '{{ flow_run.name }}'"), "message"),
        (
            ("kind: flow-run-state, states: [Failed]", "kind: event, event: other.thing"),
            "trigger.event",
        ),
        (("kind: flow-run-state, states: [Failed]", "kind: nope"), "trigger"),
    ],
)
def test_bad_values(tree: Path, change: tuple[str, str], field: str) -> None:
    write_rules(tree, RULE.replace(*change))
    [problem] = problems(tree)
    assert f"rule 'my-rule': field '{field}'" in problem


def test_resolve_on_recovery_only_for_run_states(tree: Path) -> None:
    write_rules(
        tree,
        RULE.replace(
            "kind: flow-run-state, states: [Failed]", "kind: event, event: pricechecktn.a.b"
        )
        + "    resolve_on_recovery: true\n",
    )
    [problem] = problems(tree)
    assert "resolve_on_recovery is only valid for flow-run-state triggers" in problem


def test_duplicate_rule_and_every_problem_reported(tree: Path) -> None:
    write_rules(tree, RULE.replace("my-rule", "flow-run-failed"))
    (tree / "automations" / "rules" / "zz-other.yaml").write_text(
        RULE.replace("my-rule", "second").replace("severity: warning", "severity: x")
    )
    found = problems(tree)
    assert len(found) == 2
    assert any(
        "rule 'flow-run-failed': field 'name': duplicate, already defined in "
        "automations/rules/flow-runs.yaml" in p
        for p in found
    )
    assert any("rule 'second': field 'severity'" in p for p in found)


def test_yaml_syntax_error_has_line(tree: Path) -> None:
    write_rules(tree, "rules:\n  - name: [unclosed\n")
    [problem] = problems(tree)
    assert problem.startswith("automations/rules/zz-test.yaml:3:")
    assert "invalid YAML" in problem


def test_sla_bounds_and_routes(tree: Path) -> None:
    (tree / "automations" / "slas.yaml").write_text(
        "deployments:\n  p:\n    max_duration_s: 5\n"
        "thresholds:\n  drift: {psi_warning: 0.3, psi_critical: 0.2}\n"
    )
    (tree / "automations" / "routes.yaml").write_text("defaults:\n  critical: [pager]\n")
    found = problems(tree)
    assert any(
        p.startswith("automations/slas.yaml:3: field 'deployments.p.max_duration_s'") for p in found
    )
    assert any("field 'thresholds.drift'" in p and "psi_warning must be below" in p for p in found)
    assert any(
        p.startswith("automations/routes.yaml:2: field 'defaults.critical[0]'") for p in found
    )


def test_check_command_exit_codes(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(tree), "check", "--stack", "local"]) == 0
    write_rules(tree, RULE.replace("severity: warning", "severity: loud"))
    assert main(["--root", str(tree), "check", "--stack", "local"]) == 1
    err = capsys.readouterr().err
    assert "error: automations/rules/zz-test.yaml:4: rule 'my-rule': field 'severity'" in err


def test_unknown_stack_is_a_clear_error(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(tree), "render", "--stack", "qa"]) == 1
    assert "infra/Pulumi.qa.yaml: no such stack" in capsys.readouterr().err


def test_every_rule_has_a_runbook_in_the_repo(project_root: Path) -> None:
    for rule in load_catalog(project_root).rules:
        if rule.runbook.startswith("docs/"):
            assert (project_root / rule.runbook).is_file(), rule.runbook


def test_empty_channel_override_is_an_error(tree: Path) -> None:
    write_rules(tree, RULE + "    channels: []\n")
    [problem] = problems(tree)
    assert "rule 'my-rule': field 'channels'" in problem


def test_routes_for_an_unknown_stack_are_an_error(tree: Path) -> None:
    (tree / "automations" / "routes.yaml").write_text(
        "defaults: {critical: [email], warning: [email], info: [email]}\n"
        "stacks: {prd: {critical: [pagerduty]}}\n"
    )
    assert problems(tree) == [
        "automations/routes.yaml:2: field 'stacks.prd': no such stack (known: local, prod, staging)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- just a list\n", "infra/Pulumi.prod.yaml: must be a mapping with a 'config' mapping"),
        (
            "config:\n  pricechecktn:slackCriticalUrl: https://hooks.example/T0/B0/x\n",
            "infra/Pulumi.prod.yaml:2: field 'slackCriticalUrl': a secret in plain text; set "
            "it with `pulumi config set --secret pricechecktn:slackCriticalUrl ...`",
        ),
    ],
)
def test_bad_stack_files(
    tree: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "infra" / "Pulumi.prod.yaml").write_text(text)
    assert main(["--root", str(tree), "check", "--stack", "prod"]) == 1
    assert f"error: {expected}" in capsys.readouterr().err


def test_every_pipeline_signal_has_exactly_one_rule(project_root: Path) -> None:
    """A check that emits an event nobody routes is an alert that never fires: every signal
    of the catalog (automations/signals.yaml) has one rule, and the named constants the
    flows use are all in the catalog."""
    from pricecheck_alerts.config.models import PipelineEventTrigger
    from pricecheck_alerts.signals import Signal

    catalog = load_catalog(project_root)
    routed = [r.trigger.event for r in catalog.rules if isinstance(r.trigger, PipelineEventTrigger)]
    assert sorted(routed) == sorted(catalog.signals)
    assert {s.value for s in Signal} <= set(catalog.signals)


def test_check_reports_the_stack_secrets_and_where_they_come_from(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("PRICECHECK_SLACK_CRITICAL_URL", "PRICECHECK_SMTP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--root", str(tree), "check", "--stack", "staging"]) == 1
    out, err = capsys.readouterr()
    assert "  secret slackCriticalUrl: MISSING" in out
    assert (
        "error: infra/Pulumi.staging.yaml: secret 'slackCriticalUrl' is not set: `pulumi config "
        "set --secret pricechecktn:slackCriticalUrl ...` for pulumi up, or "
        "$PRICECHECK_SLACK_CRITICAL_URL for apply (--skip-secrets to check without them)"
    ) in err.splitlines()
    # PagerDuty is managed on staging: its API token is needed, not a routing key.
    assert "secret pagerdutyToken: MISSING" in out and "pagerdutyRoutingKey" not in out

    assert main(["--root", str(tree), "check", "--stack", "staging", "--skip-secrets"]) == 0
    assert "secret" not in capsys.readouterr().out

    stack_file = tree / "infra" / "Pulumi.staging.yaml"
    stack_file.write_text(
        stack_file.read_text()
        + "  pricechecktn:pagerdutyToken:\n    secure: v1:AAAA\n"
        + "  pricechecktn:slackWarningsUrl:\n    secure: v1:BBBB\n"
        + "  pricechecktn:prefectAuthString:\n    secure: v1:CCCC\n"
    )
    for var in (
        "PRICECHECK_SLACK_CRITICAL_URL",
        "PRICECHECK_SLACK_INFO_URL",
        "PRICECHECK_SMTP_PASSWORD",
    ):
        monkeypatch.setenv(var, "set-in-the-environment")
    assert main(["--root", str(tree), "check", "--stack", "staging"]) == 0
    out = capsys.readouterr().out
    assert "  secret pagerdutyToken: infra/Pulumi.staging.yaml (pagerdutyToken)" in out
    assert "  secret slackWarningsUrl: infra/Pulumi.staging.yaml (slackWarningsUrl)" in out
    assert "  secret slackCriticalUrl: $PRICECHECK_SLACK_CRITICAL_URL" in out
    assert "  secret prefectAuthString: infra/Pulumi.staging.yaml (prefectAuthString)" in out
    assert "set-in-the-environment" not in out


def test_without_references_a_tree_lacking_docs_and_flows_still_loads(tree: Path) -> None:
    """What the pipeline image holds (automations/, prefect.yaml, flows/ but no docs/),
    and what an older git revision may lack: the rules still load for their routing."""
    import shutil

    shutil.rmtree(tree / "docs")
    assert any("no such file: docs/runbooks/" in p for p in problems(tree))
    catalog = load_catalog(tree, references=False)
    assert {r.name for r in catalog.rules} >= {"flow-run-failed", "model-drift"}
    assert catalog.deployments is None  # nothing to check SLA overrides against
