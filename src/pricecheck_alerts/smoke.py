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
from uuid import uuid4

from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.events.schemas.automations import Automation

from pricecheck_alerts import naming
from pricecheck_alerts.events import read_events
from pricecheck_alerts.redelivery import reason_of
from pricecheck_alerts.signals import Signal, send_event, send_signal

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
    kind: str = "smoke"

    @property
    def ok(self) -> bool:
        return bool(self.delivered) and not self.failed

    def lines(self) -> list[str]:
        head = f"{self.kind}: {self.automation}: {len(self.delivered)} delivered"
        lines = [f"{head}, {len(self.failed)} failed in {self.seconds:.1f} s"]
        lines += [f"  delivered: {block}" for block in self.delivered]
        lines += [f"  FAILED: {reason}" for reason in self.failed]
        return lines


def _block(event: dict[str, Any]) -> str:
    for related in event.get("related", []):
        if related.get("prefect.resource.role") == "block":
            return str(related.get("prefect.resource.name", "?"))
    return "?"


def wait_for_actions(
    event_id: str, expected: int, since: datetime, timeout: float, poll_s: float = 0.5
) -> SmokeResult:
    """Wait (at most `timeout`) for the server's record of `expected` actions taken on the
    event `event_id` (`action.executed` or `.failed`); `since` bounds the query, wide enough
    for a runner whose clock is off by minutes."""
    started = time.monotonic()
    result = SmokeResult("")
    while True:
        reports = read_events(
            since, names=[EXECUTED, FAILED], related_ids=[f"prefect.event.{event_id}"]
        )
        result.seconds = time.monotonic() - started
        if len(reports) >= expected or time.monotonic() > started + timeout:
            break
        time.sleep(poll_s)
    for report in reports:
        if report["event"] == EXECUTED:
            result.delivered.append(_block(report))
        else:
            payload = report.get("payload", {})
            reason = reason_of(payload.get("notification_log")) or payload.get("reason") or "?"
            result.failed.append(f"{_block(report)}: {reason}")
    missing = expected - len(reports)
    if missing > 0:
        result.failed.append(
            f"{missing} of {expected} actions reported nothing within {timeout:.0f} s "
            "(is the server's triggers/actions service running?)"
        )
    return result


def _enabled(names: list[str]) -> list[Automation]:
    """The named automations, which must exist and be enabled."""
    found = []
    with get_client(sync_client=True) as client:
        for name in names:
            automations = client.read_automations_by_name(name)
            if not automations:
                raise SmokeError(
                    f"no automation {name!r} on this server: provision the stack first"
                )
            if not automations[0].enabled:
                raise SmokeError(f"automation {name!r} is disabled: nothing would be delivered")
            found.append(automations[0])
    return found


def run_smoke(environment: str, timeout: float = 60.0, poll_s: float = 0.5) -> SmokeResult:
    """Send the smoke signal on the server PREFECT_API_URL names and wait (at most
    `timeout`) until each action of the stack's automation reported back."""
    name = naming.automation_name(environment, SMOKE_RULE)
    [automation] = _enabled([name])
    since = datetime.now(UTC) - timedelta(minutes=10)
    event = send_signal(
        Signal.report_published,
        "smoke",
        {"smoke": True, "note": "deploy smoke test: nothing to do"},
    )
    result = wait_for_actions(str(event.id), len(automation.actions), since, timeout, poll_s)
    result.automation = name
    return result


def send_test(
    environment: str, channel: str, blocks: list[str], timeout: float = 60.0
) -> SmokeResult:
    """Send a test alert through each of `blocks` (the stack's blocks of `channel`), by the
    server's own send-test automations, and wait for the server's record of each action."""
    prefix = naming.block_prefix(environment)
    names = [
        naming.meta_automation_name(environment, f"send-test/{block.removeprefix(prefix)}")
        for block in blocks
    ]
    automations = _enabled(names)
    since = datetime.now(UTC) - timedelta(minutes=10)
    event = Event(
        event=naming.SEND_TEST_EVENT,
        resource={
            "prefect.resource.id": f"{naming.PROJECT}.send-test.{uuid4()}",
            "prefect.resource.name": f"send-test {channel}",
            naming.SEND_TEST_CHANNEL_LABEL: channel,
        },
        payload={"test": True, "note": "a test alert sent by pricecheck-alerts send-test"},
    )
    send_event(event)
    expected = sum(len(a.actions) for a in automations)
    result = wait_for_actions(str(event.id), expected, since, timeout)
    result.automation = ", ".join(names)
    result.kind = "send-test"
    return result
