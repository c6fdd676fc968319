"""`history` from the server's automation events: grouping and outcomes, on event JSON
shaped as Prefect 3.9 writes it (the end-to-end test reads real ones)."""

from __future__ import annotations

from typing import Any

from pricecheck_alerts.history import summarize, table


def triggered(
    event_id: str, automation: str, at: str, triggering: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "prefect.automation.triggered",
        "occurred": at,
        "resource": {
            "prefect.resource.id": f"prefect.automation.{event_id}",
            "prefect.resource.name": automation,
        },
        "related": [],
        "payload": {"triggering_labels": {}, "triggering_event": triggering},
    }


def action(cause: str, block: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
    return {
        "id": f"{cause}-{block}",
        "event": "prefect.automation.action." + ("executed" if ok else "failed"),
        "occurred": "2026-11-27T02:00:01Z",
        "resource": {"prefect.resource.id": "prefect.automation.x"},
        "related": [
            {
                "prefect.resource.id": f"prefect.block-document.{block}",
                "prefect.resource.role": "block",
                "prefect.resource.name": block,
            },
            {
                "prefect.resource.id": f"prefect.event.{cause}",
                "prefect.resource.role": "automation-triggered-event",
            },
        ],
        "payload": {
            "action_index": 0,
            **({"reason": "Notification failed", "notification_log": reason} if reason else {}),
        },
    }


FAILED_RUN = {
    "event": "prefect.flow-run.Failed",
    "resource": {"prefect.resource.id": "prefect.flow-run.1", "prefect.resource.name": "brave-fox"},
    "related": [
        {"prefect.resource.role": "deployment", "prefect.resource.name": "pricechecktn-pipeline"}
    ],
}


def test_firings_are_grouped_with_their_outcomes_and_other_stacks_left_out() -> None:
    events = [
        triggered("e1", "pricechecktn/prod/flow-run-failed", "2026-11-27T02:00:00Z", FAILED_RUN),
        triggered("e2", "pricechecktn/staging/flow-run-failed", "2026-11-27T02:00:00Z", FAILED_RUN),
        triggered(
            "e3", "pricechecktn/prod/flow-run-failed/resolve", "2026-11-27T03:00:00Z", FAILED_RUN
        ),
        triggered("e4", "someone-elses-automation", "2026-11-27T03:00:00Z", None),
        action("e1", "pricechecktn-prod-slack-critical", True),
        action(
            "e1", "pricechecktn-prod-pagerduty-pipeline", False, "HTTP 400: invalid routing key"
        ),
        action("e2", "pricechecktn-staging-slack-critical", True),
        action("e3", "pricechecktn-prod-pagerduty-pipeline", True),
    ]
    events.append(
        {
            "event": "pricechecktn.alerting.redelivered",
            "occurred": "2026-11-27T02:06:00Z",
            "resource": {
                "prefect.resource.id": "pricechecktn.delivery."
                + "e1-pricechecktn-prod-pagerduty-pipeline"
            },
            "payload": {"late": "6 min"},
        }
    )
    firings = summarize(events, "prod")
    assert [(f.rule, f.kind) for f in firings] == [
        ("flow-run-failed", "alert"),
        ("flow-run-failed", "resolve"),
    ]
    first = firings[0]
    assert first.about == "pricechecktn-pipeline/brave-fox"
    assert first.event == "prefect.flow-run.Failed"
    assert [(d.channel, d.delivered, d.reason, d.later) for d in first.deliveries] == [
        ("slack-critical", True, None, None),
        ("pagerduty-pipeline", False, "HTTP 400: invalid routing key", "delivered 6 min late"),
    ]
    assert first.failed and not firings[1].failed
    lines = table(firings)
    assert (
        "pagerduty-pipeline FAILED (HTTP 400: invalid routing key), then delivered 6 min late"
        in lines[1]
    )
    assert lines[-1] == "2 firings, 1 with a failed delivery"
    assert summarize(events, "prod", rule="model-drift") == []
    assert table([]) == ["nothing fired in this window"]


def test_meta_rules_and_proactive_firings_are_named() -> None:
    events = [
        triggered("m1", "pricechecktn-meta/prod/delivery-failed", "2026-11-27T04:00:00Z", None)
    ]
    [firing] = summarize(events, "prod")
    assert (firing.rule, firing.kind, firing.about, firing.event) == (
        "delivery-failed",
        "alert",
        "-",
        "-",
    )
    assert firing.deliveries == []
    assert "no action reported" in table([firing])[1]
