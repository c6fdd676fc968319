"""`pricecheck-alerts diff`: who gets alerted, compared between a git revision and the
working tree of a real (temporary) git repository holding a copy of the real config."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from pricecheck_alerts.cli import main
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.paging import (
    NO_CHANGE,
    Change,
    diff_plans,
    load_plan,
    plan_stack,
)
from pricecheck_alerts.config.loader import copy_config, load_catalog
from pricecheck_alerts.config.models import Channel
from pricecheck_alerts.config.stacks import load_stack
from pricecheck_alerts.naming import automation_name, block_name

CRITICAL_PAGERS = [
    "delivery-failed",
    "flow-run-crashed",
    "flow-run-failed",
    "flow-run-timed-out",
    "model-degradation",
]


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def commit(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def edit(path: Path, old: str, new: str) -> None:
    """Replace text that must be there: a test that edits nothing proves nothing."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def repo(tree: Path) -> Path:
    """The real config, committed once in a fresh git repository."""
    git(tree, "init", "-q")
    commit(tree, "base")
    return tree


def diff(
    capsys: pytest.CaptureFixture[str],
    root: Path,
    stack: str,
    base: str = "HEAD~1",
    fmt: str = "text",
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--root", str(root), "diff", "--stack", stack, f"--base={base}", "--format", fmt])
    out, err = capsys.readouterr()
    return code, out, err


def test_critical_no_longer_pages_pagerduty_in_prod(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        repo / "automations" / "routes.yaml",
        "stacks: {}",
        "stacks:\n  prod:\n    critical: [slack-critical, email]",
    )
    commit(repo)

    code, out, err = diff(capsys, repo, "prod")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    warning = f"⚠ critical alerts no longer page PagerDuty (rules {', '.join(CRITICAL_PAGERS)})"
    assert lines[2] == warning  # right after the title, before anything else
    assert "  critical alerts: slack-critical, pagerduty, email → slack-critical, email" in lines
    assert (
        f"  {', '.join(CRITICAL_PAGERS)}: channels slack-critical, pagerduty, email → "
        "slack-critical, email (no longer pages PagerDuty)"
    ) in lines

    code, markdown, _ = diff(capsys, repo, "prod", fmt="markdown")
    assert code == 0
    assert markdown.startswith("### Who gets alerted on `prod`")
    assert f"> **{warning}**" in markdown
    assert markdown.index(warning) < markdown.index("**Routes (severity → channels)**")
    assert "| `flow-run-failed` | critical | slack-critical, email | - |" in markdown

    # the override is prod's: staging still pages
    assert diff(capsys, repo, "staging") == (0, NO_CHANGE + "\n", "")


def test_uncommitted_working_tree_against_head(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        repo / "automations" / "routes.yaml",
        "critical: [slack-critical, pagerduty, email]",
        "critical: [slack-critical, email]",
    )
    code, out, _ = diff(capsys, repo, "staging", base="HEAD")
    assert code == 0
    assert "⚠ critical alerts no longer page PagerDuty (rules delivery-failed," in out
    assert "→ working tree" in out.splitlines()[0]


def test_sla_and_threshold_change_in_staging_only(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        repo / "infra" / "Pulumi.staging.yaml",
        "        max_duration_s: 5400\n",
        "        max_duration_s: 1800\n    thresholds:\n      scraping:\n"
        "        min_success_rate: 0.9\n",
    )
    commit(repo)

    code, out, _ = diff(capsys, repo, "staging")
    assert code == 0
    assert "  SLA of pricechecktn-pipeline: 5400 s → 1800 s" in out.splitlines()
    assert "  threshold scraping.min_success_rate: 0.95 → 0.9" in out.splitlines()
    assert "⚠" not in out

    _, markdown, _ = diff(capsys, repo, "staging", fmt="markdown")
    assert "- SLA of `pricechecktn-pipeline`: 5400 s → 1800 s" in markdown
    assert "- threshold `scraping.min_success_rate`: 0.95 → 0.9" in markdown

    assert diff(capsys, repo, "prod") == (0, NO_CHANGE + "\n", "")
    code, markdown, _ = diff(capsys, repo, "prod", fmt="markdown")
    assert code == 0 and NO_CHANGE in markdown
    assert "<details>" not in markdown and len(markdown.splitlines()) == 1


def test_cosmetic_changes_are_no_change(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = repo / "automations" / "rules" / "flow-runs.yaml"
    edit(
        rules,
        "  - name: flow-run-failed\n"
        "    description: A flow run ended Failed after its last retry.\n"
        "    severity: critical\n"
        "    trigger: {kind: flow-run-state, states: [Failed]}\n",
        "  # the one that matters most\n"
        "  - name: flow-run-failed\n"
        "    trigger:\n"
        "      states: [Failed]\n"
        "      kind: flow-run-state\n"
        "    severity: critical   # pages\n"
        "    description: >-\n"
        "      A flow run of any deployment ended Failed,\n"
        "      after its last retry.\n",
    )
    edit(rules, "message: Flow run crashed", "message: 'Flow run crashed: `infra` died'")
    edit(
        repo / "automations" / "routes.yaml",
        "critical: [slack-critical, pagerduty, email]",
        "critical:\n    - email\n    - pagerduty\n    - slack-critical\n    - email",
    )
    commit(repo)

    for stack in ("local", "staging", "prod"):
        assert diff(capsys, repo, stack) == (0, NO_CHANGE + "\n", "")
    code, markdown, _ = diff(capsys, repo, "prod", fmt="markdown")
    assert code == 0
    assert markdown.startswith(f"**`prod`**: {NO_CHANGE} (compared with `HEAD~1 (")
    assert "**Wording only (does not change who is alerted)**" in markdown
    assert "- `flow-run-failed`: description reworded" in markdown
    assert (
        "- `flow-run-crashed`: message `Flow run crashed` → ``Flow run crashed: `infra` died``"
        in (markdown)
    )
    assert "⚠" not in markdown


def test_rule_added_disabled_and_severity_changed(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signals = repo / "automations" / "rules" / "pipeline-signals.yaml"
    edit(
        signals,
        "rules:\n",
        "rules:\n"
        "  - name: price-spike\n"
        "    description: Prices jumped.\n"
        "    severity: warning\n"
        "    scope: {deployments: [pricechecktn-pipeline]}\n"
        "    trigger: {kind: event, event: pricechecktn.data.price_spike, external: true}\n"
        "    message: Price spike\n"
        "    runbook: docs/runbooks/data-quality-low.md\n"
        "    channels: [slack-warnings, email]\n\n",
    )
    edit(
        signals,
        "    runbook: docs/runbooks/model-drift.md\n",
        "    runbook: docs/runbooks/model-drift.md\n    enabled: false\n",
    )
    edit(
        signals,
        "    severity: warning\n    trigger: {kind: event, event: pricechecktn.data.quality_low}",
        "    severity: critical\n    trigger: {kind: event, event: pricechecktn.data.quality_low}",
    )
    edit(
        repo / "automations" / "rules" / "flow-runs.yaml",
        "    runbook: docs/runbooks/flow-run-timed-out.md\n",
        "    runbook: docs/runbooks/flow-run-timed-out.md\n    enabled: false\n",
    )
    commit(repo)

    code, out, _ = diff(capsys, repo, "prod")
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[2] == "⚠ critical alerts that paged PagerDuty were disabled (rule flow-run-timed-out)"
    )
    assert (
        "  added price-spike: warning → slack-warnings, email; when the pipeline emits "
        "pricechecktn.data.price_spike; only deployment pricechecktn-pipeline"
    ) in lines
    assert (
        "  disabled model-drift (was warning → slack-warnings; when the pipeline emits "
        "pricechecktn.model.drift_detected)"
    ) in lines
    assert "  data-quality-low: severity warning → critical" in lines
    assert (
        "  data-quality-low: channels slack-warnings → slack-critical, pagerduty, email "
        "(now pages PagerDuty)"
    ) in lines
    assert lines.index("  data-quality-low: severity warning → critical") > lines.index(
        "Rule changes:"
    )

    _, markdown, _ = diff(capsys, repo, "prod", fmt="markdown")
    assert (
        "| `data-quality-low` | critical | slack-critical, pagerduty, email | data-quality |"
        in (markdown)
    )
    assert "`model-drift`" not in markdown.split("<details>")[1]  # disabled: routes nothing


def test_trigger_scope_and_pagerduty_service_in_words(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = repo / "automations" / "rules" / "flow-runs.yaml"
    edit(
        rules,
        "    trigger: {kind: flow-run-state, states: [Failed]}\n",
        "    trigger: {kind: flow-run-state, states: [Failed, Crashed]}\n"
        "    scope: {deployments: [pricechecktn-pipeline], tags: [nightly]}\n"
        "    domain: model\n",
    )
    edit(rules, "    resolve_on_recovery: true\n", "")  # the first: flow-run-failed's
    edit(
        rules,
        "    severity: critical\n    trigger: {kind: delivery-failed}",
        "    severity: warning\n    trigger: {kind: delivery-failed}",
    )
    commit(repo)

    code, out, _ = diff(capsys, repo, "prod")
    assert code == 0
    lines = out.splitlines()
    assert (
        "  flow-run-failed: fires when a flow run enters Failed → "
        "when a flow run enters Crashed or Failed"
    ) in lines
    assert (
        "  flow-run-failed: watches every run → deployment pricechecktn-pipeline and tag nightly"
    ) in lines
    assert "  flow-run-failed: PagerDuty service pipeline → model" in lines
    assert "  flow-run-failed: resolves on recovery yes → no" in lines
    assert (
        "⚠ critical alerts downgraded to warning no longer page PagerDuty (rule delivery-failed)"
        in lines
    )


def test_on_call_people_and_urgency(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prod = repo / "infra" / "Pulumi.prod.yaml"
    edit(prod, "pipeline: {urgency: high,", "pipeline: {urgency: low,")
    edit(
        prod, "to: [mlops@pricechecktn.example]", "to: [mlops@pricechecktn.example, cto@x.example]"
    )
    commit(repo)

    _, out, _ = diff(capsys, repo, "prod")
    lines = out.splitlines()
    assert "  PagerDuty urgency of service pipeline: high → low" in lines
    assert (
        "  e-mail recipients: mlops@pricechecktn.example → "
        "cto@x.example, mlops@pricechecktn.example"
    ) in lines


def test_bad_ref_is_one_line_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for ref in ("no-such-branch", "--output=/tmp/x", "HEAD~5"):
        code, out, err = diff(capsys, repo, "prod", base=ref)
        assert code == 1 and out == ""
        assert err == f"error: unknown git revision '{ref}' (no such branch, tag or commit)\n"


def test_not_a_git_repository(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tree.parent))
    code, out, err = diff(capsys, tree, "prod", base="HEAD")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "is not inside a git repository" in err


def test_invalid_config_names_the_revision(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = repo / "automations" / "rules" / "task-runs.yaml"
    edit(rules, "severity: warning", "severity: loud")
    commit(repo, "broken")
    edit(rules, "severity: loud", "severity: warning")  # fixed in the working tree only

    # A base that today's checks refuse (stricter checks, renamed keys) does not fail the
    # review: the report says so, names the problems and shows the new routing.
    code, out, err = diff(capsys, repo, "prod", base="HEAD")
    assert (code, err) == (0, "")
    assert out.startswith("cannot compare: HEAD (")
    assert "at base revision HEAD (" in out
    assert "automations/rules/task-runs.yaml:4: rule 'task-run-failed': field 'severity'" in out
    code, out, _ = diff(capsys, repo, "prod", base="HEAD", fmt="markdown")
    assert code == 0 and "cannot compare" in out and "| rule | severity |" in out

    # broken in the working tree: named as such
    edit(rules, "severity: warning", "severity: loud")
    code, _, err = diff(capsys, repo, "prod", base="HEAD~1")
    assert code == 1
    assert err.startswith("error: at the working tree: automations/rules/task-runs.yaml")


def test_project_in_a_subfolder_of_the_repository(
    tmp_path: Path, project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mono = tmp_path / "mono"
    project = copy_config(project_root, mono / "alerting")
    (mono / "automations").mkdir()  # a decoy at the repository root: must not be read
    (mono / "automations" / "README").write_text("not ours")
    git(mono, "init", "-q")
    commit(mono, "base")
    edit(project / "automations" / "slas.yaml", "max_duration_s: 3600", "max_duration_s: 1800")

    code, out, _ = diff(capsys, project, "prod", base="HEAD")
    assert code == 0
    assert "  SLA of pricechecktn-pipeline: 3600 s → 1800 s" in out.splitlines()


def test_environment_does_not_change_the_plan(
    project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRICECHECK_EMAIL_TO", "someone-else@example.invalid")
    plan = load_plan(project_root, "prod")
    stack = load_stack(project_root, "prod", {})
    assert stack.email is not None
    assert plan.email_recipients == tuple(sorted(stack.email.recipients))


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_plan_matches_what_the_compiler_wires(project_root: Path, stack: str) -> None:
    """The plan resolves channels itself; it must agree with the compiled automations."""
    catalog = load_catalog(project_root)
    config = load_stack(project_root, stack, {})
    plan = plan_stack(catalog, config)
    automations = {a.name: a for a in compile_stack(catalog, config).automations}
    for rule in plan.rules:
        name = automation_name(config.environment, rule.name)
        if name not in automations:  # SLA rules: one per deployment; delivery-failed: meta
            continue
        expected = {
            block_name(
                config.environment,
                c.value,
                rule.pagerduty_service if c is Channel.pagerduty else None,
            )
            for c in rule.channels
        }
        assert set(automations[name].block_names) == expected, rule.name


def test_identical_plans_and_wording_only(project_root: Path) -> None:
    plan = load_plan(project_root, "prod")
    same = diff_plans(plan, plan)
    assert not same.changed and same.changes == () and same.text() == NO_CHANGE
    rules = tuple(
        replace(r, runbook="https://x") if r.name == "slow-task" else r for r in plan.rules
    )
    reworded = replace(plan, rules=rules)
    result = diff_plans(plan, reworded)
    assert not result.changed
    assert result.changes == (
        Change("runbook", ("slow-task",), "docs/runbooks/slow-task.md", "https://x"),
    )


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["diff", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "pricecheck-alerts diff --stack prod --base origin/main" in out
