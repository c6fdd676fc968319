"""Policy pack rules: unit tests on hand-made resources, the three real stacks (mocked
program runs) as compliant examples, and the pulumi-policy adapters reporting violations.

Resources reach the rules as the real analyzer presents them: pulumi-policy's `Analyze`
wraps the deserialised inputs in `unknown_checking_proxy` (read-only `Mapping`/`Sequence`
proxies, numbers as floats), so every hand-made resource here is wrapped the same way."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pricecheck_policy import rules
from pricecheck_policy.pack import policies
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from .harness import StackRun
from .test_program import plain

SLACK = "https://hooks.slack.com/services/T0FAKE/B0FAKE/notarealsecret"
RUNBOOK_BODY = '{"static": {"runbook": "https://example.org/docs/runbooks/x.md"}}'


def as_analyzed(props: dict[str, Any]) -> Any:
    """Inputs as pulumi-policy's analyzer hands them to a policy (JSON round trip, then
    its proxies): a list arrives as a `Sequence` proxy, not a `list`."""
    return unknown_checking_proxy(json.loads(json.dumps(props)))


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::pricechecktn::{type_}::{name}"


def automation(
    name: str = "a",
    *,
    stack: str = "prod",
    severity: str = "critical",
    routes: tuple[str, ...] = ("pd",),
    body: str = RUNBOOK_BODY,
    trigger: dict[str, Any] | None = None,
    api_key: str | None = "pnu_abcdefghijklmnopqrstuvwxyz",
) -> rules.Res:
    return rules.Res(
        rules.AUTOMATION,
        name,
        urn(stack, rules.AUTOMATION, name),
        as_analyzed(
            {
                **({"api_key": api_key} if api_key else {}),
                "name": name,
                "tags": [f"severity:{severity}"],
                "routes": list(routes),
                "actions": [{"type": "send-notification", "body": body}],
                "trigger": trigger or {"posture": "Reactive", "within": 0},
            }
        ),
        ("api_key",),
    )


def block(name: str, slug: str, data: dict[str, Any], secret_outputs: tuple[str, ...]) -> rules.Res:
    props = as_analyzed({"name": name, "block_type_slug": slug, "data": data})
    return rules.Res(rules.BLOCK, name, urn("prod", rules.BLOCK, name), props, secret_outputs)


PD_BLOCK = block("pd", rules.PAGERDUTY_BLOCK_TYPE, {"routing_key": "x" * 32}, ("api_key", "data"))
SLACK_BLOCK = block("slack", "pricechecktn-slack-alert", {"url": SLACK}, ("data",))


def test_prod_critical_rules_must_page() -> None:
    paging = automation("paging", routes=("pd", "slack"))
    silent = automation("silent", routes=("slack",))
    warning = automation("warning", severity="warning", routes=("slack",))
    problems = rules.critical_rules_page([PD_BLOCK, SLACK_BLOCK, paging, silent, warning], "prod")
    assert problems == ["silent: critical rule does not page PagerDuty on prod"]
    assert rules.critical_rules_page([SLACK_BLOCK, silent], "staging") == []
    # A route named like a PagerDuty block but of another type does not count.
    fake = block("pd", "pricechecktn-slack-alert", {}, ("data",))
    assert rules.critical_rules_page([fake, paging], "prod") != []


def test_plaintext_secrets() -> None:
    assert rules.plaintext_secrets(PD_BLOCK) == []
    leaky = automation(body=RUNBOOK_BODY + SLACK)
    assert rules.plaintext_secrets(leaky) == [
        "a: Slack webhook URL in plain input 'actions[0].body'"
    ]
    # Block data is where secrets live, but only if the outputs are marked secret.
    assert rules.plaintext_secrets(SLACK_BLOCK) == []
    unmarked = block("b", "pricechecktn-slack-alert", {"url": SLACK}, ("api_key",))
    assert rules.plaintext_secrets(unmarked) == [
        "b: 'data' holds a secret but is not a secret output"
    ]
    variable = rules.Res(
        rules.VARIABLE,
        "v",
        urn("prod", rules.VARIABLE, "v"),
        {
            "name": "v",
            "value": {"key": "pnu_abcdefghijklmnopqrstuvwxyz", "smtp": "smtp://u:pw@host"},
            "api_key": "pnu_abcdefghijklmnopqrstuvwxyz",
        },
        (),
    )
    assert rules.plaintext_secrets(variable) == [
        "v: Prefect API key in plain input 'value.key'",
        "v: password in a URL in plain input 'value.smtp'",
        "v: 'api_key' holds a secret but is not a secret output",
    ]


def test_runbook_links() -> None:
    assert rules.runbook_links(automation()) == []
    assert rules.runbook_links(automation(body='{"runbook": "docs/x.md"}')) == [
        "a: action 0 has no runbook link"
    ]
    silent = automation()
    silent = rules.Res(silent.type, "s", silent.urn, {**silent.props, "actions": []})
    assert rules.runbook_links(silent) == [
        "s: automation sends no notification, so no runbook link"
    ]
    assert rules.runbook_links(PD_BLOCK) == []


def test_sla_bounds() -> None:
    proactive = {"posture": "Proactive", "within": 30}
    too_short = automation(trigger=proactive)
    assert rules.sla_bounds(too_short, "prod") == ["a: SLA of 30 s outside [60, 86400] s"]
    assert rules.sla_bounds(too_short, "local") == []  # drills
    assert rules.sla_bounds(automation(trigger={**proactive, "within": 3600}), "prod") == []
    slas = {
        "deployments": {"ok": {"max_duration_s": 3600}, "typo": {"max_duration_s": 36000000}},
        "thresholds": {
            "scraping": {"min_success_rate": 1.5, "max_site_duration_s": 600},
            "model": {"min_accuracy": 0.85, "max_prediction_latency_s": -1},
        },
    }
    variable = rules.Res(
        rules.VARIABLE,
        "sla",
        urn("staging", rules.VARIABLE, "sla"),
        {"name": rules.SLA_VARIABLE, "value": slas},
    )
    assert rules.sla_bounds(variable, "staging") == [
        "sla: typo max_duration_s=36000000 outside [60, 86400] s",
        "sla: thresholds.scraping.min_success_rate=1.5 is not in (0, 1]",
        "sla: thresholds.model.max_prediction_latency_s=-1 is negative",
    ]


def test_stack_of_urn() -> None:
    assert rules.stack_of(urn("prod", rules.BLOCK, "x")) == "prod"


def _as_res(run: StackRun) -> list[rules.Res]:
    return [
        rules.Res(r.type, r.name, r.urn, plain(r.inputs), tuple(r.secret_outputs))
        for r in run.resources
    ]


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_real_stacks_comply(stack: str, stack_runs: dict[str, StackRun]) -> None:
    resources = _as_res(stack_runs[stack])
    problems = rules.critical_rules_page(resources, stack)
    for res in resources:
        problems += rules.plaintext_secrets(res)
        problems += rules.runbook_links(res)
        problems += rules.sla_bounds(res, stack)
    assert problems == []


def test_prod_without_pagerduty_route_is_caught(stack_runs: dict[str, StackRun]) -> None:
    resources = _as_res(stack_runs["prod"])
    broken = []
    for res in resources:
        if res.type == rules.AUTOMATION and "severity:critical" in res.props["tags"]:
            props = copy.deepcopy(dict(res.props))
            props["routes"] = [r for r in props["routes"] if "pagerduty" not in r]
            res = rules.Res(res.type, res.name, res.urn, props, res.secret_outputs)
        broken.append(res)
    assert rules.critical_rules_page(broken, "prod")


def _args(res: rules.Res) -> ResourceValidationArgs:
    opts = PolicyResourceOptions(
        False, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(res.secret_outputs)
    )
    return ResourceValidationArgs(res.type, res.props, res.urn, res.name, opts, None)


def test_pack_reports_violations_through_pulumi_policy() -> None:
    by_name = {p.name: p for p in policies()}
    assert set(by_name) == {
        "prod-critical-rules-page-pagerduty",
        "no-plaintext-secrets",
        "prefect-api-authenticated",
        "automation-has-runbook-link",
        "sla-within-bounds",
    }
    reported: list[tuple[str, str | None]] = []
    checks = {
        "no-plaintext-secrets": automation(body=RUNBOOK_BODY + SLACK),
        "prefect-api-authenticated": automation(api_key=None),
        "automation-has-runbook-link": automation(body="{}"),
        "sla-within-bounds": automation(trigger={"posture": "Proactive", "within": 5}),
    }
    for name, res in checks.items():
        policy = by_name[name]
        assert isinstance(policy, ResourceValidationPolicy)
        reported.clear()
        policy.validate(_args(res), lambda message, urn=None: reported.append((message, urn)))
        assert len(reported) == 1 and reported[0][1] == res.urn, name
        reported.clear()
        policy.validate(_args(automation()), lambda m, u=None: reported.append((m, u)))
        assert reported == [], name


def test_a_secret_inside_a_list_is_caught_through_the_proxies() -> None:
    """A Slack URL pasted into the body of an automation's first action: the analyzer
    hands `actions` over as a Sequence proxy, and the rule still looks inside it."""
    leaked = automation(body=RUNBOOK_BODY[:-1] + f', "hook": "{SLACK}"}}')
    assert not isinstance(leaked.props["actions"], list)  # what the analyzer gives
    assert rules.plaintext_secrets(leaked) == [
        "a: Slack webhook URL in plain input 'actions[0].body'"
    ]
