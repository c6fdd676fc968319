"""A corpus of malformed configs: each gets a clear error naming the file (with the line
where there is one) and the field, from `check`, with no traceback; a handful of unusual
but valid inputs pass. Nothing here may be silently accepted: every case once was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pricecheck_alerts.cli import main
from pricecheck_alerts.config.loader import MAX_FILE_BYTES

RULES = "automations/rules/zz-test.yaml"
ROUTES = "automations/routes.yaml"
SLAS = "automations/slas.yaml"
SIGNALS = "automations/signals.yaml"
LOCAL = "infra/Pulumi.local.yaml"
PROD = "infra/Pulumi.prod.yaml"

RULE = """rules:
  - name: my-rule
    description: A test rule.
    severity: warning
    trigger: {kind: flow-run-state, states: [Failed]}
    message: Something failed
    runbook: docs/runbooks/flow-run-failed.md
"""

EVENT_RULE = RULE.replace(
    "{kind: flow-run-state, states: [Failed]}",
    "{kind: event, event: pricechecktn.data.quality_low}",
)


def _laughs() -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, 9):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    """`path` gets `text` (or `edit` applied to its current text); `expect` must appear in
    one error line, which must name `path` (and `line` when given)."""

    name: str
    path: str
    expect: str
    text: str | bytes | None = None
    edit: Callable[[str], str] | None = None
    line: int | None = None


def replace(old: str, new: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        assert old in text, f"{old!r} not in the file: the case would test nothing"
        return text.replace(old, new, 1)

    return apply


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


CORPUS = [
    # --- YAML itself -------------------------------------------------------------------
    Case(
        "duplicate key in a rule",
        RULES,
        "duplicate key 'severity'",
        RULE + "    severity: info\n",
        line=8,
    ),
    Case("duplicate top-level key", RULES, "duplicate key 'rules'", RULE + "rules: []\n", line=8),
    Case("syntax error", RULES, "invalid YAML", "rules:\n  - name: [unclosed\n", line=3),
    Case("tab indentation", RULES, "invalid YAML", "rules:\n\t- name: x\n", line=2),
    Case("python tag", RULES, "invalid YAML", "rules: !!python/object:os.system x\n", line=1),
    Case("unhashable key", RULES, "invalid YAML", "? [a]\n: b\n", line=1),
    Case("two documents", RULES, "expected a single document", RULE + "---\n" + RULE, line=8),
    Case(
        "NUL byte", RULES, "unacceptable character", RULE.replace("A test", "A \x00 test"), line=3
    ),
    Case(
        "not UTF-8",
        RULES,
        "not UTF-8 (byte 0xe9",
        RULE.replace("A test", "Caf\xe9").encode("latin-1"),
        line=3,
    ),
    Case(
        "deep nesting",
        RULES,
        "nest",  # ours past 40 levels, or libyaml's own limit first
        "rules: " + "[" * 5000 + "]" * 5000 + "\n",
        line=1,
    ),
    Case("billion laughs", RULES, "expands to more than", _laughs()),
    Case(
        "self-referencing alias",
        RULES,
        "refers to the value that contains it",
        "rules: &r [*r]\n",
        line=1,
    ),
    Case(
        "runbook with a NUL byte",
        RULES,
        "field 'runbook': no such file",
        RULE.replace("docs/runbooks/flow-run-failed.md", '"docs/a\\0b.md"'),
        line=7,
    ),
    Case(
        "a flow file too deep to parse",
        "flows/zz_crafted.py",
        "flows/zz_crafted.py: cannot read its flows",
        "x = " + "+".join(["a"] * 200_000) + "\n",
    ),
    Case(
        "merge key",
        RULES,
        "merge keys (<<) are not allowed",
        RULE.replace("  - name", "  - &base\n    name") + "  - <<: *base\n    name: second\n",
        line=9,
    ),
    Case(
        "huge file",
        RULES,
        f"more than the {MAX_FILE_BYTES} a config file may hold",
        RULE + "#" * MAX_FILE_BYTES,
    ),
    Case("empty file", RULES, "field '(top level)'", ""),
    Case("a list at the top", RULES, "field '(top level)'", "- rules\n"),
    Case("no rules", RULES, "field 'rules'", "rules: []\n", line=1),
    Case("rules: null", RULES, "field 'rules'", "rules:\n", line=1),
    # --- rule fields ---------------------------------------------------------------------
    Case("enabled as a string", RULES, "field 'enabled'", RULE + "    enabled: 'false'\n", line=8),
    Case("enabled as a number", RULES, "field 'enabled'", RULE + "    enabled: 0\n", line=8),
    Case(
        "resolve_on_recovery as a string",
        RULES,
        "field 'resolve_on_recovery'",
        RULE + "    resolve_on_recovery: 'true'\n",
        line=8,
    ),
    Case(
        "unknown key", RULES, "field 'severty': unknown key", RULE + "    severty: info\n", line=8
    ),
    Case(
        "unknown severity",
        RULES,
        "field 'severity'",
        RULE.replace("severity: warning", "severity: loud"),
        line=4,
    ),
    Case("no channel", RULES, "field 'channels'", RULE + "    channels: []\n", line=8),
    Case("unknown channel", RULES, "field 'channels[0]'", RULE + "    channels: [pager]\n", line=8),
    Case("no states", RULES, "field 'trigger.states'", RULE.replace("[Failed]", "[]"), line=5),
    Case(
        "trigger without kind",
        RULES,
        "field 'trigger'",
        RULE.replace("kind: flow-run-state, ", ""),
        line=5,
    ),
    Case(
        "date as description",
        RULES,
        "field 'description'",
        RULE.replace("A test rule.", "2024-01-01"),
        line=3,
    ),
    Case(
        "20 000-character message",
        RULES,
        "field 'message'",
        RULE.replace("Something failed", "x" * 20_000),
        line=6,
    ),
    Case(
        "unknown deployment in scope",
        RULES,
        "field 'scope.deployments[0]': no deployment 'nightly'",
        RULE + "    scope: {deployments: [nightly]}\n",
        line=8,
    ),
    Case(
        "unknown flow in scope",
        RULES,
        "field 'scope.flows[0]': no flow named 'pipeline'",
        RULE + "    scope: {flows: [pipeline]}\n",
        line=8,
    ),
    Case(
        "event nothing emits",
        RULES,
        "no pipeline emits 'pricechecktn.data.price_spike'",
        EVENT_RULE.replace("quality_low", "price_spike"),
        line=5,
    ),
    Case(
        "external as a string",
        RULES,
        "field 'trigger.external'",
        EVENT_RULE.replace("quality_low}", "quality_low, external: 'yes'}"),
        line=5,
    ),
    Case(
        "missing runbook file",
        RULES,
        "field 'runbook': no such file: docs/runbooks/nope.md",
        RULE.replace("flow-run-failed.md", "nope.md"),
        line=7,
    ),
    Case(
        "runbook outside docs/",
        RULES,
        "field 'runbook': no such file",
        RULE.replace("docs/runbooks/flow-run-failed.md", "docs/../README.md"),
        line=7,
    ),
    Case(
        "runbook that is no link",
        RULES,
        "field 'runbook'",
        RULE.replace("docs/runbooks/flow-run-failed.md", "see the wiki"),
        line=7,
    ),
    Case(
        "template in message",
        RULES,
        "field 'message': must not contain template syntax",
        RULE.replace("Something failed", "'{{ flow_run.name }}'"),
        line=6,
    ),
    Case(
        "template in a scope tag",
        RULES,
        "field 'scope.tags[0]': must not contain template syntax",
        RULE + "    scope: {tags: ['{% raw %}']}\n",
        line=8,
    ),
    Case(
        "template in classify_tags",
        RULES,
        "field 'trigger.classify_tags[0]'",
        RULE.replace(
            "{kind: flow-run-state, states: [Failed]}",
            "{kind: task-run-failed, classify_tags: ['{#x#}']}",
        ),
        line=5,
    ),
    Case(
        "template in a key",
        RULES,
        "the key must not contain template syntax",
        RULE + "    '{{x}}': 1\n",
        line=8,
    ),
    Case(
        "duplicate rule name",
        RULES,
        "field 'name': duplicate, already defined in automations/rules/flow-runs.yaml",
        RULE.replace("my-rule", "flow-run-failed"),
        line=2,
    ),
    # --- routes --------------------------------------------------------------------------
    Case(
        "critical routed nowhere",
        ROUTES,
        "field 'defaults.critical'",
        edit=replace("critical: [slack-critical, pagerduty, email]", "critical: []"),
        line=4,
    ),
    Case(
        "duplicate critical key",
        ROUTES,
        "duplicate key 'critical'",
        edit=replace("info: [slack-info]", "info: [slack-info]\n  critical: [slack-info]"),
        line=7,
    ),
    Case(
        "a stack routes critical nowhere",
        ROUTES,
        "field 'stacks.prod.critical'",
        edit=replace("stacks: {}", "stacks: {prod: {critical: []}}"),
        line=7,
    ),
    Case(
        "a severity without a route",
        ROUTES,
        "no route for severity info",
        edit=replace("  info: [slack-info]\n", ""),
    ),
    Case(
        "routes for an unknown stack",
        ROUTES,
        "field 'stacks.qa': no such stack",
        edit=replace("stacks: {}", "stacks: {qa: {critical: [email]}}"),
        line=7,
    ),
    # --- SLAs ----------------------------------------------------------------------------
    Case(
        "SLA for an unknown deployment",
        SLAS,
        "field 'deployments.nightly': no deployment 'nightly'",
        edit=replace("  pricechecktn-pipeline:\n", "  nightly:\n"),
    ),
    Case(
        "duplicate SLA",
        SLAS,
        "duplicate key 'pricechecktn-pipeline'",
        edit=replace("thresholds:", "  pricechecktn-pipeline: {max_duration_s: 60}\nthresholds:"),
    ),
    Case(
        "unknown threshold",
        SLAS,
        "field 'thresholds.scraping.min_sucess_rate': unknown key",
        edit=replace("min_success_rate: 0.95\n    max_site", "min_sucess_rate: 0.95\n    max_site"),
    ),
    # --- the signal catalog --------------------------------------------------------------
    Case(
        "signal from an unknown flow",
        SIGNALS,
        "no flow named 'scraper'",
        edit=replace("emitted_by: [api-health-probe]", "emitted_by: [scraper]"),
    ),
    Case(
        "duplicate signal",
        SIGNALS,
        "duplicate key 'pricechecktn.api.degraded'",
        edit=append(
            "  pricechecktn.api.degraded: {description: again, emitted_by: [api-health-probe]}\n"
        ),
    ),
    Case(
        "signal without emitter",
        SIGNALS,
        "field 'signals.pricechecktn.api.degraded.emitted_by'",
        edit=replace("emitted_by: [api-health-probe]", "emitted_by: []"),
    ),
    # --- stack files ---------------------------------------------------------------------
    Case(
        "duplicate key in a stack",
        LOCAL,
        "duplicate key 'pricechecktn:environment'",
        edit=append("  pricechecktn:environment: prod\n"),
    ),
    Case(
        "protect as a string",
        PROD,
        "field 'protect'",
        edit=replace("pricechecktn:protect: true", "pricechecktn:protect: 'true'"),
    ),
    Case(
        "template in a URL",
        LOCAL,
        "field 'runbookBaseUrl': must not contain template syntax",
        edit=replace("/blob/main", "/blob/{{ secret }}"),
        line=8,
    ),
    Case(
        "stack SLA for an unknown deployment",
        LOCAL,
        "field 'slaOverrides.deployments.drill-slw'",
        edit=replace("      drill-slow:\n", "      drill-slw:\n"),
    ),
    Case(
        "stack file not UTF-8", LOCAL, "not UTF-8", b"config:\n  pricechecktn:environment: \xff\n"
    ),
    # --- prefect.yaml ----------------------------------------------------------------------
    Case("broken prefect.yaml", "prefect.yaml", "invalid YAML", "deployments: [\n"),
]


def write(tree: Path, case: Case) -> None:
    path = tree / case.path
    if case.edit is not None:
        path.write_text(case.edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    elif isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text or "", encoding="utf-8")


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_malformed_config_gets_a_clear_error(
    tree: Path, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree, case)
    assert main(["--root", str(tree), "check"]) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), err
    assert "Traceback" not in err
    prefix = f"error: {case.path}:{case.line}:" if case.line else f"error: {case.path}"
    matching = [line for line in lines if case.expect in line]
    assert matching, f"{case.expect!r} not in:\n{err}"
    assert any(line.startswith(prefix) for line in matching), f"{prefix!r} not in:\n{err}"
    assert len(err) < 5_000  # bounded, even for a 20 000-character value or a 2 MB file


VALID = [
    ("Arabic and emoji", RULE.replace("Something failed", "فشل التشغيل 🚨")),
    ("byte-order mark", "\ufeff" + RULE),
    ("yes as a boolean", RULE + "    enabled: yes\n"),
    ("an external event", EVENT_RULE.replace("quality_low}", "price_spike, external: true}")),
    ("a link as runbook", RULE.replace("docs/runbooks/flow-run-failed.md", "https://wiki/x")),
    (
        "anchors and aliases",
        RULE.replace("    message:", "    channels: &to [slack-warnings]\n    message:")
        + RULE.split("rules:\n", 1)[1].replace("my-rule", "second")
        + "    channels: *to\n",
    ),
]


@pytest.mark.parametrize(("name", "text"), VALID, ids=[v[0] for v in VALID])
def test_unusual_but_valid_config_passes(
    tree: Path, name: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / RULES).write_text(text, encoding="utf-8")
    assert main(["--root", str(tree), "check"]) == 0, capsys.readouterr().err


def test_nothing_is_written_from_a_config_that_fails(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`render` (and `apply`, which compiles the same way first) stops at validation."""
    write(tree, CORPUS[0])
    assert main(["--root", str(tree), "render", "--stack", "local"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "duplicate key 'severity'" in err
