"""`alert_redelivery`: send again the alerts a destination did not take, every minute.

The server records each alert it could not deliver (`prefect.automation.action.failed`,
with the alert itself in the block's failure log: see `pricecheck_alerts.redelivery`).
This flow reads those records back, sends each retryable one again through the same
notification block on a backoff schedule, marked late by how much, until it is delivered
or two hours have passed, and declares the rest lost for good. It writes what it did as
events, which is all the state it keeps, and reports (at most every 15 minutes) what was
delivered late and what was lost, through the `alerts-delivered-late` rule.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.blocks.abstract import NotificationError
from prefect.blocks.core import Block
from prefect.events import emit_event

from pricecheck_alerts import naming, notify  # noqa: F401  (registers the alert blocks)
from pricecheck_alerts.events import read_events
from pricecheck_alerts.redelivery import (
    FAILED,
    HORIZON,
    LOST,
    RECORDS,
    REDELIVERED,
    REPORT,
    RETRY_FAILED,
    LostDelivery,
    late_body,
    lost_deliveries,
    minutes,
    plan,
    progress,
    split_log,
)
from pricecheck_alerts.signals import emit_signal

READ_MARGIN = timedelta(hours=1)
"""Read this far past the horizon: a failure that ages out while no sweep runs (no worker
for a while) is still found, tried once more and declared, not silently forgotten."""

REPORT_EVERY = timedelta(minutes=15)
"""One report per period at most: a dead channel behind a storm is one follow-up, not one
per alert (the first loss of a period already alerted through `delivery-failed`)."""


def _record(name: str, lost: LostDelivery, **facts: Any) -> None:
    emit_event(
        event=name,
        resource={
            "prefect.resource.id": f"{naming.PROJECT}.delivery.{lost.failed_event_id}",
            "prefect.resource.name": lost.block,
        },
        payload={"automation": lost.automation, "channel": lost.channel, **facts},
    )


async def _send(lost: LostDelivery, now: datetime) -> tuple[str, bool] | None:
    """Send one lost alert again through its block; None when delivered, else why not and
    whether trying again can help."""
    assert lost.envelope is not None
    try:
        block = await Block.aload(f"{lost.block_type}/{lost.block}")
        late_s = (now - lost.failed_at).total_seconds()
        await block.notify(late_body(lost.envelope.body, late_s), lost.envelope.subject)  # type: ignore[attr-defined]
    except NotificationError as exc:
        reason, envelope = split_log(exc.log)
        return reason, envelope is None or envelope.retry
    except Exception as exc:  # a deleted block, a server that refuses the read
        return f"{type(exc).__name__}: {exc}", True
    return None


def _report_due(events: list[dict[str, Any]], now: datetime) -> datetime | None:
    """Since when to report, or None when the last report is too recent."""
    reports = [e for e in events if e["event"] == REPORT]
    if not reports:
        return now - HORIZON
    last = datetime.fromisoformat(reports[-1]["occurred"].replace("Z", "+00:00"))
    return last if now - last >= REPORT_EVERY else None


def report_facts(events: list[dict[str, Any]], since: datetime) -> dict[str, Any] | None:
    """What was redelivered late and what was lost since `since`, per channel."""
    late: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    worst = 0.0
    reasons: dict[str, str] = {}
    for event in events:
        occurred = datetime.fromisoformat(event["occurred"].replace("Z", "+00:00"))
        if occurred <= since:
            continue
        payload = event.get("payload", {})
        channel = str(payload.get("channel", "?"))
        if event["event"] == REDELIVERED:
            late[channel] += 1
            worst = max(worst, float(payload.get("late_s", 0)))
        elif event["event"] == LOST:
            lost[channel] += 1
            reasons[channel] = str(payload.get("reason", ""))[:200]
    if not late and not lost:
        return None
    summary = [f"{n} alerts to {c} delivered late" for c, n in sorted(late.items())]
    summary += [f"{n} alerts to {c} lost ({reasons[c]})" for c, n in sorted(lost.items())]
    return {
        "metric": "delivery",
        "redelivered": sum(late.values()),
        "lost": sum(lost.values()),
        "late_max": minutes(worst) if late else None,
        "summary": "; ".join(summary),
    }


@flow(name="alert-redelivery")
async def alert_redelivery(env: str | None = None) -> dict[str, Any]:
    """One sweep over the failed deliveries of `env` (default: PRICECHECK_ENV) within the
    horizon, and those that aged past it since the last sweep."""
    logger = get_run_logger()
    environment = env or os.environ.get("PRICECHECK_ENV", "local")
    now = datetime.now(UTC)
    events = await asyncio.to_thread(
        read_events,
        now - HORIZON - READ_MARGIN,
        names=[FAILED, *RECORDS, REPORT],
        max_events=50_000,
    )
    work = plan(lost_deliveries(events, environment), progress(events), now)
    # This sweep's records, as they will be stored: the report counts them right away.
    done: list[dict[str, Any]] = []
    # One probe per block and sweep: behind a destination that is still down, the rest
    # wait for the next sweep instead of each spending the block's quick retries.
    still_down: set[str] = set()
    tried = 0
    for lost in work.retry:
        if lost.block in still_down:
            continue
        tried += 1
        failure = await _send(lost, now)
        if failure is None:
            late_s = round((now - lost.failed_at).total_seconds())
            facts = {"channel": lost.channel, "late_s": late_s, "late": minutes(late_s)}
            _record(REDELIVERED, lost, **facts)
            done.append({"event": REDELIVERED, "occurred": now.isoformat(), "payload": facts})
            logger.info("redelivered %s to %s, %s late", lost.automation, lost.block, facts["late"])
        elif not failure[1]:  # refused for good meanwhile (an archived webhook)
            work.give_up.append((lost, f"not retryable: {failure[0]}"))
        else:
            still_down.add(lost.block)
            _record(RETRY_FAILED, lost, reason=failure[0][:500])
            logger.warning("redelivery to %s failed again: %s", lost.block, failure[0][:200])
    for lost, why in work.give_up:
        _record(LOST, lost, reason=why[:500])
        facts = {"channel": lost.channel, "reason": why[:500]}
        done.append({"event": LOST, "occurred": now.isoformat(), "payload": facts})
        logger.error("alert %s to %s lost for good: %s", lost.automation, lost.block, why[:200])

    since = _report_due(events, now)
    reported = report_facts([*events, *done], since) if since is not None else None
    if reported:
        emit_signal(REPORT, "alerting:redelivery", reported)
    return {
        "env": environment,
        "tried": tried,
        "waiting": len(work.retry) - tried,
        "redelivered": sum(1 for d in done if d["event"] == REDELIVERED),
        "lost": len(work.give_up),
        "report": reported,
    }
