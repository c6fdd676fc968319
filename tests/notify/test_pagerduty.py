"""PagerDuty: the Events API v2 event, and the block against a real local endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prefect.blocks.abstract import NotificationError

from pricecheck_alerts.notify import PagerDutyAlert
from pricecheck_alerts.notify.pagerduty import pagerduty_event
from tests.notify.rendering import ROUTING_KEY, body_template, render
from tests.notify.scripted import Scripted
from tests.notify.test_slack import FACTS


def test_pagerduty_trigger_fields(project_root: Path) -> None:
    facts = render(body_template(project_root, "pricechecktn/local/flow-run-failed"), "boom")
    event = pagerduty_event(facts, ROUTING_KEY)
    payload = event["payload"]
    assert event["event_action"] == "trigger"
    assert payload["severity"] == "critical"
    assert payload["source"] == "prefect/local"
    assert payload["class"] == "flow-run-failed"
    assert payload["timestamp"] == "2026-11-26T02:00:05.123000+00:00"
    assert payload["custom_details"]["message"].endswith("boom")
    assert [link["text"] for link in event["links"]] == ["Open flow run", "Runbook"]


def test_signal_facts_cannot_overwrite_pagerduty_details(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/model-degradation")
    facts = render(template, "m", payload={"rule": "spoofed", "accuracy": 0.71})
    details = pagerduty_event(facts, ROUTING_KEY)["payload"]["custom_details"]
    assert details["rule"] == "model-degradation"
    assert details["facts"] == {"rule": "spoofed", "accuracy": "0.71"}


@pytest.mark.parametrize("endpoint", [[(400, {})]], indirect=True)
def test_pagerduty_rejection_is_raised_once(endpoint: Scripted) -> None:
    block = PagerDutyAlert(events_url=endpoint.url, routing_key="K" * 32)
    with pytest.raises(NotificationError) as caught:
        asyncio.run(block.notify(FACTS))
    assert "HTTP 400" in caught.value.log
    assert endpoint.bodies[0]["routing_key"] == "K" * 32
    assert endpoint.bodies[0]["dedup_key"] == (
        "pricechecktn/test/pricechecktn-pipeline/flow-run-failed"
    )


def test_secret_fields_are_masked_in_the_block_itself() -> None:
    block = PagerDutyAlert(routing_key="K" * 32)
    assert "K" * 32 not in repr(block) and "K" * 32 not in block.model_dump_json()
