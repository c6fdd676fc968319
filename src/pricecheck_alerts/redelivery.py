"""Alerts a destination did not take are delivered later, and every loss is seen.

A notification block retries for a few seconds (`notify.transport.RetryPolicy`); when it
gives up, the server records `prefect.automation.action.failed`, whose payload carries the
block's failure log. The block appends an *envelope* to that log: the rendered alert (the
facts JSON the server sent it, never a secret: the webhook URL or key stays in the block)
and whether trying again can help (a 503, 429 or a timeout can; a 404 archived webhook, a
400 revoked key or a refused SMTP login cannot).

The `alert-redelivery` flow (flows/redelivery.py, every minute) reads those events back and
sends each retryable alert again through the same block, on a backoff schedule, until it
is delivered or the horizon passes. Its own records are events too
(`pricechecktn.alerting.redelivered`, `.redelivery_failed`, `.delivery_lost`), so the
state survives restarts of the server and of the flow, and every operator sees the same
history. It sends through the block directly, not through an automation, so a failed
redelivery cannot start another: no loops.

Everything here is pure: the flow does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pricecheck_alerts import naming

ENVELOPE_MARK = "\n-- pricecheck redelivery --\n"
"""Separates the human-readable reason from the envelope in a failure log."""

DELAYS_S = (30, 60, 120, 240, 300)
"""Wait before each redelivery attempt, counted from the previous one; the last repeats
until the horizon. Five minutes at most between tries keeps the lateness after a
destination comes back under the sweep interval plus five minutes."""

HORIZON = timedelta(hours=2)
"""How long a lost alert is retried before it is declared lost for good (and said so)."""

FAILED = "prefect.automation.action.failed"
REDELIVERED = f"{naming.PROJECT}.alerting.redelivered"
RETRY_FAILED = f"{naming.PROJECT}.alerting.redelivery_failed"
LOST = f"{naming.PROJECT}.alerting.delivery_lost"
RECORDS = (REDELIVERED, RETRY_FAILED, LOST)
REPORT = f"{naming.PROJECT}.alerting.redelivery_report"
"""The signal a sweep sends when it redelivered or gave up on something."""
REPORT_RULE = "alerts-delivered-late"
"""The rule that routes the report. Its own lost deliveries are not redelivered: a dead
channel would otherwise feed the report back into itself forever."""


@dataclass(frozen=True)
class Envelope:
    """What a block needs to send an alert again: the server-rendered body and subject."""

    retry: bool
    body: str
    subject: str | None = None


def with_envelope(log: str, envelope: Envelope) -> str:
    """`log` followed by the envelope, for the server's `action.failed` record."""
    data = {"v": 1, "retry": envelope.retry, "subject": envelope.subject, "body": envelope.body}
    return log + ENVELOPE_MARK + json.dumps(data, ensure_ascii=False)


def split_log(log: str | None) -> tuple[str, Envelope | None]:
    """The human-readable reason, and the envelope when the log carries one."""
    if not log:
        return "", None
    reason, mark, rest = log.partition(ENVELOPE_MARK)
    if not mark:
        return log, None
    try:
        data = json.loads(rest)
        envelope = Envelope(bool(data["retry"]), str(data["body"]), data.get("subject"))
    except (ValueError, KeyError, TypeError):
        return reason, None
    return reason, envelope


def reason_of(log: str | None) -> str:
    """What went wrong, without the envelope (what people read)."""
    return split_log(log)[0]


@dataclass(frozen=True)
class LostDelivery:
    """One failed action of an alert automation, as the server recorded it."""

    failed_event_id: str
    failed_at: datetime
    automation: str
    block: str
    block_type: str
    reason: str
    envelope: Envelope | None

    @property
    def channel(self) -> str:
        return self.block.split("-", 2)[-1] if self.block.count("-") >= 2 else self.block


def _related(event: dict[str, Any], role: str) -> dict[str, Any]:
    for related in event.get("related", []):
        if related.get("prefect.resource.role") == role:
            return dict(related)
    return {}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def lost_deliveries(events: Iterable[dict[str, Any]], environment: str) -> list[LostDelivery]:
    """The failed deliveries of `environment`'s alert automations, oldest first."""
    prefix = naming.automation_prefix(environment)
    found = []
    for event in events:
        if event.get("event") != FAILED:
            continue
        automation = str(event.get("resource", {}).get("prefect.resource.name", ""))
        if not automation.startswith(prefix):
            continue
        block = _related(event, "block")
        block_type = _related(event, "block-type")
        reason, envelope = split_log(event.get("payload", {}).get("notification_log"))
        found.append(
            LostDelivery(
                failed_event_id=str(event["id"]),
                failed_at=_when(event["occurred"]),
                automation=automation,
                block=str(block.get("prefect.resource.name", "")),
                block_type=str(block_type.get("prefect.resource.id", "")).removeprefix(
                    "prefect.block-type."
                ),
                reason=reason or str(event.get("payload", {}).get("reason", "unknown")),
                envelope=envelope,
            )
        )
    return sorted(found, key=lambda lost: lost.failed_at)


@dataclass
class Progress:
    """What the redelivery flow already did for one lost delivery (from its own events)."""

    attempts: int = 0
    last_attempt: datetime | None = None
    done: bool = False  # delivered, or declared lost


def progress(events: Iterable[dict[str, Any]]) -> dict[str, Progress]:
    """Progress per failed-event id, from the flow's `pricechecktn.alerting.*` records
    (resource `pricechecktn.delivery.<failed event id>`)."""
    found: dict[str, Progress] = {}
    for event in sorted(events, key=lambda e: e["occurred"]):
        if event.get("event") not in RECORDS:
            continue
        resource_id = str(event.get("resource", {}).get("prefect.resource.id", ""))
        failed_id = resource_id.removeprefix(f"{naming.PROJECT}.delivery.")
        state = found.setdefault(failed_id, Progress())
        if event["event"] == RETRY_FAILED:
            state.attempts += 1
            state.last_attempt = _when(event["occurred"])
        else:
            state.done = True
    return found


def next_attempt_at(lost: LostDelivery, state: Progress) -> datetime:
    """When the next try is due: `DELAYS_S[k]` after the previous try (or the failure)."""
    delay = DELAYS_S[min(state.attempts, len(DELAYS_S) - 1)]
    return (state.last_attempt or lost.failed_at) + timedelta(seconds=delay)


@dataclass
class Plan:
    """What one sweep does."""

    retry: list[LostDelivery] = field(default_factory=list)
    give_up: list[tuple[LostDelivery, str]] = field(default_factory=list)


def page_of(lost: LostDelivery) -> tuple[str, str] | None:
    """(dedup key, "trigger" or "resolve") of a lost PagerDuty alert, else None."""
    if lost.envelope is None or "pagerduty" not in lost.block_type:
        return None
    from pricecheck_alerts.notify.facts import AlertFacts  # notify imports this module

    try:
        facts = AlertFacts.parse(lost.envelope.body)
    except ValueError:
        return None
    return facts.dedup_key, facts.static.action


def plan(
    lost: Iterable[LostDelivery],
    done: dict[str, Progress],
    now: datetime,
    horizon: timedelta = HORIZON,
) -> Plan:
    """Which lost deliveries to send again now, and which to declare lost for good (not
    retryable, no envelope, or past the horizon after at least one more try); the rest
    wait for their turn.

    A lost PagerDuty trigger whose resolve (same dedup key) was lost after it is dropped
    as superseded: sent late, in either order, it would open an incident nothing closes.
    """
    items = list(lost)
    resolved_at: dict[str, datetime] = {}
    for item in items:
        page = page_of(item)
        if page and page[1] == "resolve":
            resolved_at[page[0]] = max(item.failed_at, resolved_at.get(page[0], item.failed_at))
    result = Plan()
    for item in items:
        state = done.get(item.failed_event_id, Progress())
        if state.done or item.automation.endswith(f"/{REPORT_RULE}"):
            continue
        page = page_of(item)
        if item.envelope is None:
            result.give_up.append((item, "the failure log carries no alert to send again"))
        elif not item.envelope.retry:
            result.give_up.append((item, f"not retryable: {item.reason}"))
        elif (
            page
            and page[1] == "trigger"
            and resolved_at.get(page[0], item.failed_at) > (item.failed_at)
        ):
            result.give_up.append((item, "superseded: its resolve followed (PagerDuty)"))
        elif now - item.failed_at > horizon and state.attempts > 0:
            hours = horizon.total_seconds() / 3600
            result.give_up.append((item, f"still failing after {hours:g} h: {item.reason}"))
        elif next_attempt_at(item, state) <= now:
            result.retry.append(item)
    return result


def late_body(body: str, late_s: float) -> str:
    """The alert's facts with how late this copy is, which each channel shows."""
    try:
        facts = json.loads(body)
    except ValueError:
        return body
    if not isinstance(facts, dict):
        return body
    facts["late_s"] = round(late_s)
    return json.dumps(facts, ensure_ascii=False)


def minutes(seconds: float) -> str:
    """`45 s`, `4 min`, `2 h 5 min`: lateness as people say it."""
    if seconds < 90:
        return f"{round(seconds)} s"
    total = round(seconds / 60)
    return f"{total // 60} h {total % 60} min" if total >= 60 else f"{total} min"
