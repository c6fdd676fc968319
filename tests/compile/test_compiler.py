"""The compiler's output per stack: triggers, routes, blocks, determinism, no secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pricecheck_alerts.cli import main
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources, referenced_blocks
from pricecheck_alerts.config.loader import ConfigError, load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.naming import MANAGED_TAG

SECRET_ENV = {
    "PRICECHECK_SLACK_CRITICAL_URL": "https://hooks.example.invalid/critical-SECRET-1",
    "PRICECHECK_PAGERDUTY_ROUTING_KEY": "SECRETSECRETSECRETSECRETSECRET32",
    "PRICECHECK_SMTP_PASSWORD": "smtp-SECRET-pw",
    "PRICECHECK_SMTP_USERNAME": "alerts",
}


def compiled(
    root: Path,
    stack: str = "local",
    environ: dict[str, str] | None = None,
) -> StackResources:
    return compile_stack(load_catalog(root), load_stack(root, stack, environ or {}))


def by_name(resources: StackResources) -> dict[str, dict]:
    return {a.name: a.body for a in resources.automations}


def test_local_stack_automations(project_root: Path) -> None:
    automations = by_name(compiled(project_root))
    failed = automations["pricechecktn/local/flow-run-failed"]
    assert failed["trigger"]["expect"] == ["prefect.flow-run.Failed"]
    assert failed["trigger"]["posture"] == "Reactive"
    assert failed["trigger"]["for_each"] == ["prefect.resource.id"]
    assert MANAGED_TAG in failed["tags"] and "stack:local" in failed["tags"]
    assert "owner_resource" not in failed  # prefect deploy would delete owned automations
    assert referenced_blocks(failed) == [
        "pricechecktn-local-slack-critical",
        "pricechecktn-local-pagerduty-pipeline",
        "pricechecktn-local-email",
    ]
    assert automations["pricechecktn/local/flow-run-timed-out"]["trigger"]["expect"] == [
        "prefect.flow-run.TimedOut"
    ]


def test_sla_is_proactive_per_run_with_stack_override(project_root: Path) -> None:
    automations = by_name(compiled(project_root))
    drill = automations["pricechecktn/local/run-duration-sla/drill-slow"]["trigger"]
    assert drill["posture"] == "Proactive"
    assert drill["after"] == ["prefect.flow-run.Running"]
    assert set(drill["expect"]) == {
        f"prefect.flow-run.{s}"
        for s in ("Completed", "Failed", "TimedOut", "Crashed", "Cancelled", "Cancelling")
    }
    assert drill["for_each"] == ["prefect.resource.id"]
    assert drill["within"] == 10
    assert drill["match_related"][0] == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": "drill-slow",
    }
    pipeline = automations["pricechecktn/local/run-duration-sla/pricechecktn-pipeline"]
    assert pipeline["trigger"]["within"] == 15  # the local stack's override
    prod = by_name(compiled(project_root, "prod"))
    assert (
        prod["pricechecktn/prod/run-duration-sla/pricechecktn-pipeline"]["trigger"]["within"]
        == 3600
    )  # automations/slas.yaml


def test_resolve_fires_only_after_a_failure_of_the_same_deployment(project_root: Path) -> None:
    body = by_name(compiled(project_root))["pricechecktn/local/flow-run-failed/resolve"]
    trigger = body["trigger"]
    assert trigger["after"] == ["prefect.flow-run.Failed"]
    assert trigger["expect"] == ["prefect.flow-run.Completed"]
    assert trigger["for_each"] == [
        "related:deployment:prefect.resource.id",
        "related:flow:prefect.resource.id",
    ]
    assert '"action": "resolve"' in body["actions"][0]["body"]
    # Resolves go to Slack and PagerDuty; nobody wants an e-mail saying all is well.
    assert referenced_blocks(body) == [
        "pricechecktn-local-slack-critical",
        "pricechecktn-local-pagerduty-pipeline",
    ]


def test_pipeline_signals_route_by_severity_and_domain(project_root: Path) -> None:
    automations = by_name(compiled(project_root))
    drift = automations["pricechecktn/local/model-drift"]
    assert drift["trigger"]["expect"] == ["pricechecktn.model.drift_detected"]
    assert referenced_blocks(drift) == ["pricechecktn-local-slack-warnings"]
    degraded = automations["pricechecktn/local/model-degradation"]
    assert "pricechecktn-local-pagerduty-model" in referenced_blocks(degraded)
    assert referenced_blocks(automations["pricechecktn/local/slow-task"]) == [
        "pricechecktn-local-slack-info"
    ]


def test_scope_and_channel_override(tree: Path) -> None:
    (tree / "automations" / "rules" / "scoped.yaml").write_text(
        "rules:\n  - name: scoped\n    description: d\n    severity: info\n"
        "    scope: {deployments: [pricechecktn-pipeline, data-validation], tags: [nightly]}\n"
        "    trigger: {kind: flow-run-state, states: [Cancelled]}\n"
        "    message: m\n    runbook: https://runbooks.example/x\n"
        "    channels: [email]\n"
    )
    body = by_name(compiled(tree))["pricechecktn/local/scoped"]
    assert body["trigger"]["match_related"] == [
        {
            "prefect.resource.role": "deployment",
            "prefect.resource.name": ["pricechecktn-pipeline", "data-validation"],
        },
        {"prefect.resource.role": "tag", "prefect.resource.id": ["prefect.tag.nightly"]},
    ]
    assert referenced_blocks(body) == ["pricechecktn-local-email"]
    assert '"runbook": "https://runbooks.example/x"' in body["actions"][0]["body"]


def test_unroutable_channel_is_a_config_error(tree: Path) -> None:
    stack_file = tree / "infra" / "Pulumi.local.yaml"
    text = stack_file.read_text()
    start = text.index("  pricechecktn:email:")
    stack_file.write_text(text[:start] + text[text.index("  # Short SLAs") :])
    with pytest.raises(ConfigError) as caught:
        compiled(tree)
    assert (
        "rule 'flow-run-failed': channel 'email' needs 'email' settings in infra/Pulumi.local.yaml"
    ) in caught.value.problems


def test_blocks_name_their_secrets_but_hold_none(project_root: Path) -> None:
    resources = compiled(project_root, environ=SECRET_ENV)
    blocks = {b.name: b for b in resources.blocks}
    assert blocks["pricechecktn-local-slack-critical"].secret_inputs == {
        "url": "slackCriticalUrl"
    }
    assert blocks["pricechecktn-local-pagerduty-model"].secret_inputs == {
        "routing_key": "pagerdutyRoutingKey:model"
    }
    assert blocks["pricechecktn-local-email"].secret_inputs == {"password": "smtpPassword"}
    secrets = resolve_secrets(project_root, "local", SECRET_ENV)
    assert (
        secrets["pagerdutyRoutingKey:data-quality"]
        == SECRET_ENV["PRICECHECK_PAGERDUTY_ROUTING_KEY"]
    )
    assert secrets["slackCriticalUrl"] == SECRET_ENV["PRICECHECK_SLACK_CRITICAL_URL"]


def test_render_is_deterministic_and_secret_free(
    project_root: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in SECRET_ENV.items():
        monkeypatch.setenv(key, value)
    outputs = []
    for fmt in ("json", "json", "yaml"):
        assert (
            main(["--root", str(project_root), "render", "--stack", "local", "--format", fmt]) == 0
        )
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    document = json.loads(outputs[0])
    assert len(document["automations"]) == len(compiled(project_root).automations)
    for rendered in outputs:
        for key, secret in SECRET_ENV.items():
            if key != "PRICECHECK_SMTP_USERNAME":
                assert secret not in rendered
        # the local receivers' URLs are secrets too, as far as rendering is concerned
        assert "127.0.0.1:9101/slack" not in rendered
        assert "**redacted**" in rendered


def test_apply_names_the_missing_secret_and_its_variable(project_root: Path) -> None:
    from pricecheck_alerts.provision.apply import apply_stack

    resources = compiled(project_root, "prod")
    with pytest.raises(ConfigError) as caught:
        apply_stack(resources, {}, api_url="http://127.0.0.1:9/api")  # fails before any I/O
    assert (
        "secret 'slackCriticalUrl' has no value: set PRICECHECK_SLACK_CRITICAL_URL"
        in caught.value.problems
    )
    assert (
        "secret 'pagerdutyRoutingKey:model' has no value: set "
        "PRICECHECK_PAGERDUTY_ROUTING_KEY" in caught.value.problems
    )


def test_every_stack_checks(project_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(project_root), "check"]) == 0
    out = capsys.readouterr().out
    rules = len(load_catalog(project_root).rules)
    assert all(f"{stack}: {rules} rules" in out for stack in ("local", "staging", "prod"))


def test_delivery_failures_are_watched_from_outside_the_watched_names(
    project_root: Path,
) -> None:
    automations = by_name(compiled(project_root))
    meta = automations["pricechecktn-meta/local/delivery-failed"]
    assert meta["trigger"]["match"] == {
        "prefect.resource.id": "prefect.automation.*",
        "prefect.resource.name": "pricechecktn/local/*",
    }
    assert meta["trigger"]["expect"] == ["prefect.automation.action.failed"]
    # no loop: its own name is outside what it watches, and so are the send-test ones,
    # whose failures are reported to whoever sent the test
    outside = {name for name in automations if not name.startswith("pricechecktn/local/")}
    assert outside == {"pricechecktn-meta/local/delivery-failed"} | {
        name for name in automations if name.startswith("pricechecktn-meta/local/send-test/")
    }
    assert len(outside) == 1 + 6  # one send-test per block


def test_every_block_has_a_send_test_automation(project_root: Path) -> None:
    resources = compiled(project_root)
    automations = by_name(resources)
    for block in resources.blocks:
        suffix = block.name.removeprefix("pricechecktn-local-")
        test = automations[f"pricechecktn-meta/local/send-test/{suffix}"]
        assert test["trigger"]["expect"] == ["pricechecktn.alerting.send_test"]
        channel = suffix.split("-pipeline")[0].split("-model")[0].split("-data")[0]
        assert test["trigger"]["match"]["pricechecktn.channel"] == channel
        actions = [a["body"] for a in test["actions"]]
        assert len(actions) == (2 if channel == "pagerduty" else 1)
        assert all('"rule": "send-test"' in body for body in actions)


def test_stack_concurrency_limits_are_compiled(project_root: Path) -> None:
    [limit] = compiled(project_root, "prod").concurrency_limits
    assert (limit.name, limit.limit) == ("pricechecktn-scraping", 3)
    assert compiled(project_root).concurrency_limits == ()  # none on the local stack
