"""Alert drills: which runs to make and which alerts each must produce, on which channels.

`make demo` and the end-to-end tests play the same scenarios, so the demo's table and the
tests' assertions cannot drift apart. Expectations follow the default routes of the
`local` stack: critical → slack-critical + pagerduty + email, warning → slack-warnings,
info → slack-info; a recovery → slack-critical + a PagerDuty resolve.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools import runs
from devtools.receivers import Delivery
from pricecheck_alerts.signals import send_signal

CRITICAL = ("slack-critical", "pagerduty", "email")
RESOLVED = ("slack-critical", "pagerduty")

# Deployments of flows/fixtures/drills.py: (flow object name, deployment name).
DRILL_DEPLOYMENTS = {
    "drill-flaky": "flaky",
    "drill-crash": "crash",
    "drill-timeout": "timeout",
    "drill-slow": "slow",
    "drill-scrape": "scrape",
}


@dataclass(frozen=True)
class Expected:
    channel: str
    rule: str
    action: str = "trigger"


@dataclass(frozen=True)
class Scenario:
    """One drill: run `deployment` with `parameters` (or emit `event`), expect `alerts`."""

    name: str
    deployment: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    alerts: tuple[Expected, ...] = ()
    overlap: bool = False  # started in the background (an SLA overrun runs long)
    event: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def _to(channels: tuple[str, ...], rule: str, action: str = "trigger") -> tuple[Expected, ...]:
    return tuple(Expected(c, rule, action) for c in channels)


HOSTILE_MESSAGE = 'Prix "faux" \\ échec\nسعر غير صحيح 🚨 <script>&amp;</script> ' + "x" * 20_000

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "SLA overrun (drill-slow runs 20 s, SLA 10 s)",
        "drill-slow/drill-slow",
        {"seconds": 20},
        (Expected("slack-warnings", "run-duration-sla"),),
        overlap=True,
    ),
    Scenario(
        "failure with hostile text",
        "drill-flaky/drill-flaky",
        {"fail": True, "message": HOSTILE_MESSAGE},
        _to(CRITICAL, "flow-run-failed"),
    ),
    Scenario("crash", "drill-crash/drill-crash", {}, _to(CRITICAL, "flow-run-crashed")),
    Scenario("timeout", "drill-timeout/drill-timeout", {}, _to(CRITICAL, "flow-run-timed-out")),
    Scenario(
        "scraping task blocked (HTTP 403)",
        "drill-scrape/drill-scrape",
        {"error": "forbidden"},
        (Expected("slack-warnings", "task-run-failed"),),
    ),
    Scenario(
        "model drift signal",
        None,
        alerts=(Expected("slack-warnings", "model-drift"),),
        event="pricechecktn.model.drift_detected",
        facts={"feature": "price_tnd", "psi": 0.31, "threshold": 0.25, "ks_p_value": 0.001},
    ),
    Scenario(
        "recovery of drill-flaky",
        "drill-flaky/drill-flaky",
        {"fail": False},
        _to(RESOLVED, "flow-run-failed", "resolve"),
    ),
    Scenario(
        "another success of drill-flaky: nothing to resolve",
        "drill-flaky/drill-flaky",
        {"fail": False},
    ),
)

_SLACK_CONTEXT = re.compile(r"^rule (?P<rule>\S+) · (?P<action>trigger|resolve) · ")
_EMAIL_RULE = re.compile(r"^Rule: (?P<rule>\S+)", re.M)


def identify(delivery: Delivery) -> Expected | None:
    """Which rule and action a delivery carries, read from the payload itself."""
    body = delivery.body or {}
    if delivery.channel == "pagerduty":
        rule = str(body.get("dedup_key", "")).rsplit("/", 1)[-1]
        return Expected("pagerduty", rule, body.get("event_action", "?"))
    if delivery.channel == "email":
        if str(body.get("subject", "")).startswith("PriceCheckTN daily report"):
            return Expected("email", "daily-report", "report")  # the report flow's own mail
        match = _EMAIL_RULE.search(body.get("text", ""))
        return Expected("email", match["rule"], "trigger") if match else None
    for block in body.get("blocks", []):
        if block.get("type") == "context":
            match = _SLACK_CONTEXT.match(block["elements"][0]["text"])
            if match:
                return Expected(delivery.channel, match["rule"], match["action"])
    return None


def deploy_drills(root: Path, work_pool: str) -> None:
    """Deploy every drill flow of flows/fixtures/drills.py into `work_pool`."""
    from flows.fixtures import drills

    for deployment, attribute in DRILL_DEPLOYMENTS.items():
        runs.deploy(getattr(drills, attribute), deployment, work_pool, root)


def play(scenario: Scenario, root: Path) -> subprocess.Popen[bytes] | None:
    """Make the scenario happen; an overlapping run is returned still running."""
    if scenario.event:
        send_signal(scenario.event, "drill", scenario.facts)
        return None
    assert scenario.deployment
    flow_run = runs.create_run(scenario.deployment, scenario.parameters)
    if scenario.overlap:
        return runs.start(flow_run.id, root)
    runs.execute(flow_run.id, root)
    return None


def wait_for_alerts(
    fetch: Callable[[], list[Delivery]],
    expected: Counter[Expected],
    timeout: float = 90,
    settle: float = 3,
) -> list[Delivery]:
    """Poll `fetch` until every expected alert arrived (or `timeout`), then wait `settle`
    seconds more so a duplicate or a stray alert shows itself, and return all deliveries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = Counter(identify(d) for d in fetch())
        if all(got[item] >= count for item, count in expected.items()):
            break
        time.sleep(0.5)
    time.sleep(settle)
    return fetch()
