"""PagerDuty: the Events API v2 event of an alert and the block that sends it.

Triggers and resolves share one dedup key (environment + what is broken + rule, see
`naming.dedup_key`), so the deployment's next success resolves the incident its failure
opened. Limits: summary 1024, dedup_key 255, event 512 KB.
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.abstract import NotificationBlock
from pydantic import Field, SecretStr, field_validator

from pricecheck_alerts import naming
from pricecheck_alerts.notify.facts import (
    AlertFacts,
    headline,
    links,
    run_fields,
    signal_fields,
)
from pricecheck_alerts.notify.slack import http_url
from pricecheck_alerts.notify.text import clip, one_line
from pricecheck_alerts.notify.transport import (
    DEFAULT_POLICY,
    RetryPolicy,
    delivery,
    post_json,
)

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PD_SUMMARY_MAX = 1024
PD_DETAIL_MAX = 2000
PD_EVENT_MAX_BYTES = 512 * 1024
PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def pagerduty_event(facts: AlertFacts, routing_key: str) -> dict[str, Any]:
    """An Events API v2 trigger or resolve with a stable dedup key."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": facts.static.action,
        "dedup_key": facts.dedup_key,
    }
    if facts.static.action == "resolve":
        return event
    details: dict[str, Any] = {
        "rule": facts.static.rule,
        "description": facts.static.description,
        **{label: clip(value, PD_DETAIL_MAX) for label, value in run_fields(facts)},
    }
    if facts.event_facts:  # under their own key: a fact named "rule" overwrites nothing
        details["facts"] = {k: clip(v, PD_DETAIL_MAX) for k, v in signal_fields(facts)}
    if facts.run_message:
        details["message"] = clip(facts.run_message, 4 * PD_DETAIL_MAX)
    if facts.advice:
        details["cause"], details["what_to_do"] = facts.advice
    summary = headline(facts)
    if facts.run_message:
        summary += f" — {one_line(facts.run_message)}"
    event["payload"] = {
        "summary": clip(summary, PD_SUMMARY_MAX),
        "source": f"prefect/{facts.static.environment}",
        "severity": PD_SEVERITY[facts.static.severity],
        "component": clip(facts.subject, 255),
        "group": clip(facts.flow_name or facts.subject, 255),
        "class": facts.static.rule,
        "custom_details": details,
    }
    if facts.occurred:
        event["payload"]["timestamp"] = facts.occurred
    event["links"] = [{"href": url, "text": label} for label, url in links(facts)]
    event["client"] = "PriceCheckTN alerts (Prefect)"
    if facts.static.ui_url:
        event["client_url"] = facts.static.ui_url
    return event


class PagerDutyAlert(NotificationBlock):
    """Sends PagerDuty Events API v2 triggers and resolves with stable dedup keys."""

    _block_type_name = "PriceCheckTN PagerDuty Alert"
    _block_type_slug = naming.block_type_slug("pagerduty")
    _description = "PagerDuty Events API v2 integration for PriceCheckTN alert automations."

    events_url: str = Field(default=EVENTS_URL)
    routing_key: SecretStr = Field(description="The integration (routing) key, 32 chars.")

    _check_url = field_validator("events_url", mode="before")(http_url)

    async def send(self, facts: AlertFacts, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        event = pagerduty_event(facts, self.routing_key.get_secret_value())
        await post_json(self.events_url, event, policy)

    async def notify(self, body: str, subject: str | None = None) -> None:
        with delivery("PagerDuty delivery", self.routing_key, body=body, subject=subject):
            await self.send(AlertFacts.parse(body))
