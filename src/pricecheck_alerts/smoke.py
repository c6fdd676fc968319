"""`pricecheck-alerts smoke`: prove that a deployed stack's server delivers an alert.

A green `pulumi up` and `prefect deploy` do not prove that alerts go out: the server may
lack this package (its blocks then fail to load), a secret may be wrong, the triggers
service may be stalled. The smoke test sends one pipeline signal through one of the
stack's real automations and waits for the server's own record of every action it ran
(`prefect.automation.action.executed` or `.failed`, related to that very event).

The signal is `pricechecktn.report.published` with `smoke: true`: its rule is `info` and
goes to the info channel, so the team sees one "smoke" note per deploy and nobody is paged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.client.orchestration import get_client

from pricecheck_alerts import naming
from pricecheck_alerts.events import read_events
from pricecheck_alerts.signals import Signal, send_signal

SMOKE_RULE = "daily-report"
"""The rule whose automation the smoke signal goes through (`pricechecktn.report.published`)."""
EXECUTED = "prefect.automation.action.executed"
FAILED = "prefect.automation.action.failed"


class SmokeError(Exception):
    """The stack cannot be smoke-tested or did not deliver; the message says why."""


@dataclass
class SmokeResult:
    automation: str
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.delivered) and not self.failed

    def lines(self) -> list[str]:
        head = f"smoke: {self.automation}: {len(self.delivered)} delivered"
        lines = [f"{head}, {len(self.failed)} failed in {self.seconds:.1f} s"]
        lines += [f"  delivered: {block}" for block in self.delivered]
        lines += [f"  FAILED: {reason}" for reason in self.failed]
        return lines


def _block(event: dict[str, Any]) -> str:
    for related in event.get("related", []):
        if related.get("prefect.resource.role") == "block":
            return str(related.get("prefect.resource.name", "?"))
    return "?"


def run_smoke(environment: str, timeout: float = 60.0, poll_s: float = 0.5) -> SmokeResult:
    """Send the smoke signal on the server PREFECT_API_URL names and wait (at most
    `timeout`) until each action of the stack's automation reported back."""
    name = naming.automation_name(environment, SMOKE_RULE)
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(name)
    if not found:
        raise SmokeError(f"no automation {name!r} on this server: provision the stack first")
    automation = found[0]
    if not automation.enabled:
        raise SmokeError(f"automation {name!r} is disabled: nothing would be delivered")
    expected = len(automation.actions)
    # The events are found by the smoke event's id; the time window only bounds the query,
    # wide enough for a runner whose clock is off by minutes.
    since = datetime.now(UTC) - timedelta(minutes=10)
    started = time.monotonic()
    event = send_signal(
        Signal.report_published,
        "smoke",
        {"smoke": True, "note": "deploy smoke test: nothing to do"},
    )
    result = SmokeResult(name)
    deadline = started + timeout
    while True:
        reports = read_events(
            since, names=[EXECUTED, FAILED], related_ids=[f"prefect.event.{event.id}"]
        )
        result.seconds = time.monotonic() - started
        if len(reports) >= expected or time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    for report in reports:
        if report["event"] == EXECUTED:
            result.delivered.append(_block(report))
        else:
            payload = report.get("payload", {})
            reason = payload.get("notification_log") or payload.get("reason") or "unknown"
            result.failed.append(f"{_block(report)}: {reason}")
    missing = expected - len(reports)
    if missing > 0:
        result.failed.append(
            f"{missing} of {expected} actions reported nothing within {timeout:.0f} s "
            "(is the server's triggers/actions service running?)"
        )
    return result
