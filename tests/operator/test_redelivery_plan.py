"""Which lost alerts a redelivery sweep sends again, when, and which it gives up on; pure,
on event JSON shaped as the server and the flow write it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pricecheck_alerts.redelivery import (
    DELAYS_S,
    HORIZON,
    LOST,
    REDELIVERED,
    RETRY_FAILED,
    Envelope,
    late_body,
    lost_deliveries,
    minutes,
    plan,
    progress,
    reason_of,
    split_log,
    with_envelope,
)

T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
BODY = json.dumps({"v": 1, "static": {"rule": "flow-run-failed"}})


def failed(
    event_id: str,
    at: datetime,
    log: str | None,
    automation: str = "pricechecktn/prod/flow-run-failed",
) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "prefect.automation.action.failed",
        "occurred": at.isoformat(),
        "resource": {
            "prefect.resource.id": "prefect.automation.a",
            "prefect.resource.name": automation,
        },
        "related": [
            {
                "prefect.resource.id": "prefect.block-document.b",
                "prefect.resource.role": "block",
                "prefect.resource.name": "pricechecktn-prod-slack-critical",
            },
            {
                "prefect.resource.id": "prefect.block-type.pricechecktn-slack-alert",
                "prefect.resource.role": "block-type",
            },
        ],
        "payload": {"reason": "Notification failed", "notification_log": log},
    }


def record(name: str, failed_id: str, at: datetime) -> dict[str, Any]:
    return {
        "event": name,
        "occurred": at.isoformat(),
        "resource": {"prefect.resource.id": f"pricechecktn.delivery.{failed_id}"},
        "payload": {},
    }


RETRYABLE = with_envelope("HTTP 503: down", Envelope(True, BODY, "subject"))
PERMANENT = with_envelope("HTTP 404: no_service", Envelope(False, BODY))


def test_the_envelope_round_trips_and_people_read_only_the_reason() -> None:
    reason, envelope = split_log(RETRYABLE)
    assert (reason, envelope) == ("HTTP 503: down", Envelope(True, BODY, "subject"))
    assert reason_of(PERMANENT) == "HTTP 404: no_service"
    assert split_log("HTTP 500: plain") == ("HTTP 500: plain", None)
    assert split_log(None) == ("", None)
    broken = "HTTP 503\n-- pricecheck redelivery --\n{not json"
    assert split_log(broken) == ("HTTP 503", None)


def test_a_retryable_loss_is_retried_on_the_backoff_schedule() -> None:
    events = [failed("f1", T0, RETRYABLE)]
    [lost] = lost_deliveries(events, "prod")
    assert (lost.block, lost.block_type, lost.channel) == (
        "pricechecktn-prod-slack-critical",
        "pricechecktn-slack-alert",
        "slack-critical",
    )
    first = T0 + timedelta(seconds=DELAYS_S[0])
    assert plan([lost], progress(events), first - timedelta(seconds=1)).retry == []
    assert plan([lost], progress(events), first).retry == [lost]
    # one failed try at `first`: the next one waits DELAYS_S[1] more
    events.append(record(RETRY_FAILED, "f1", first))
    state = progress(events)
    assert state["f1"].attempts == 1
    second = first + timedelta(seconds=DELAYS_S[1])
    assert plan([lost], state, second - timedelta(seconds=1)).retry == []
    assert plan([lost], state, second).retry == [lost]
    # delivered: never again
    events.append(record(REDELIVERED, "f1", second))
    assert plan([lost], progress(events), second + timedelta(hours=1)).retry == []


def test_permanent_refusals_and_the_horizon_give_up_once() -> None:
    events = [
        failed("revoked", T0, PERMANENT),
        failed("old", T0 - HORIZON - timedelta(minutes=1), RETRYABLE),
        failed("no-envelope", T0, "HTTP 503: from an older version"),
    ]
    work = plan(lost_deliveries(events, "prod"), progress(events), T0 + timedelta(seconds=40))
    # past the horizon but never tried (no sweep ran meanwhile): one more try first
    assert [lost.failed_event_id for lost in work.retry] == ["old"]
    reasons = {lost.failed_event_id: why for lost, why in work.give_up}
    assert reasons["revoked"] == "not retryable: HTTP 404: no_service"
    assert "no alert to send again" in reasons["no-envelope"]
    events.append(record(RETRY_FAILED, "old", T0 + timedelta(seconds=40)))
    work = plan(lost_deliveries(events, "prod"), progress(events), T0 + timedelta(seconds=41))
    reasons = {lost.failed_event_id: why for lost, why in work.give_up}
    assert reasons["old"] == "still failing after 2 h: HTTP 503: down"
    # declared lost: not again at the next sweep
    events += [record(LOST, key, T0 + timedelta(seconds=40)) for key in reasons]
    again = plan(lost_deliveries(events, "prod"), progress(events), T0 + timedelta(minutes=5))
    assert again.give_up == [] and again.retry == []


def test_other_stacks_and_the_report_rule_itself_are_left_alone() -> None:
    events = [
        failed("staging", T0, RETRYABLE, "pricechecktn/staging/flow-run-failed"),
        failed("meta", T0, RETRYABLE, "pricechecktn-meta/prod/delivery-failed"),
        failed("report", T0, RETRYABLE, "pricechecktn/prod/alerts-delivered-late"),
    ]
    lost = lost_deliveries(events, "prod")
    assert [item.failed_event_id for item in lost] == ["report"]
    work = plan(lost, progress(events), T0 + timedelta(minutes=10))
    assert work.retry == [] and work.give_up == []  # no report about the report: no loop


def test_late_copies_carry_how_late_they_are() -> None:
    assert json.loads(late_body(BODY, 241.6))["late_s"] == 242
    assert late_body("not json", 5) == "not json"
    assert [minutes(s) for s in (12, 89.6, 240, 3900)] == ["12 s", "90 s", "4 min", "1 h 5 min"]


def page(action: str) -> str:
    facts = {
        "v": 1,
        "static": {
            "rule": "flow-run-failed",
            "title": "t",
            "description": "d",
            "severity": "critical",
            "runbook": "https://x",
            "environment": "prod",
            "action": action,
        },
        "deployment": {"name": "pricechecktn-pipeline"},
    }
    return with_envelope("HTTP 503: down", Envelope(True, json.dumps(facts)))


def test_a_lost_pagerduty_trigger_is_superseded_by_its_later_lost_resolve() -> None:
    """Sent late in any order, the pair would leave an incident open: the resolve goes,
    the trigger is dropped."""
    events = [
        failed("trigger", T0, page("trigger")),
        failed("resolve", T0 + timedelta(minutes=5), page("resolve")),
    ]
    for event in events:
        event["related"][0]["prefect.resource.name"] = "pricechecktn-prod-pagerduty-pipeline"
        event["related"][1]["prefect.resource.id"] = (
            "prefect.block-type.pricechecktn-pagerduty-alert"
        )
    work = plan(lost_deliveries(events, "prod"), progress(events), T0 + timedelta(minutes=6))
    assert [lost.failed_event_id for lost in work.retry] == ["resolve"]
    assert [(lost.failed_event_id, why) for lost, why in work.give_up] == [
        ("trigger", "superseded: its resolve followed (PagerDuty)")
    ]
    # a trigger alone is sent again as usual
    alone = plan(lost_deliveries(events[:1], "prod"), {}, T0 + timedelta(minutes=6))
    assert [lost.failed_event_id for lost in alone.retry] == ["trigger"]
