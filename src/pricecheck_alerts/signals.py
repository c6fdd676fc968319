"""How pipeline checks report facts: Prefect events named `pricechecktn.<area>.<signal>`.

Flows never talk to Slack or PagerDuty: the server routes alerts. They emit one of these events
with a flat payload of facts; the alert rules in `automations/rules/pipeline-signals.yaml`
route them. Inside a flow or task run, Prefect attaches the run, flow, deployment and tags
as related resources by itself, which is what rule scopes and alert links use.
"""

from __future__ import annotations

import asyncio
import re
from enum import StrEnum
from typing import Any

from prefect.events import Event, emit_event
from prefect.events.clients import get_events_client

from pricecheck_alerts import naming


class Signal(StrEnum):
    """Every pipeline event an alert rule exists for (the rules' `trigger.event`)."""

    data_volume_anomaly = "pricechecktn.data.volume_anomaly"
    data_quality_low = "pricechecktn.data.quality_low"
    model_drift = "pricechecktn.model.drift_detected"
    model_degraded = "pricechecktn.model.degraded"
    prediction_anomaly = "pricechecktn.model.prediction_anomaly"
    matching_quality_low = "pricechecktn.matching.quality_low"
    scraping_success_low = "pricechecktn.scraping.success_rate_low"
    slow_task = "pricechecktn.performance.slow_task"
    api_degraded = "pricechecktn.api.degraded"
    report_published = "pricechecktn.report.published"


_SCALAR = (str, int, float, bool, type(None))


def _checked(signal: Signal | str, facts: dict[str, Any]) -> str:
    name = str(signal)
    if not re.match(naming.EVENT_NAME, name):
        raise ValueError(f"event name {name!r} is not pricechecktn.<area>.<signal>")
    for key, value in facts.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _SCALAR) for v in values):
            raise TypeError(f"fact {key!r} must be a scalar or a list of scalars")
    return name


def _resource(check: str) -> dict[str, str]:
    return {"prefect.resource.id": naming.check_resource_id(check), "prefect.resource.name": check}


def emit_signal(signal: Signal | str, check: str, facts: dict[str, Any]) -> Event | None:
    """Emit a pipeline signal about `check` (e.g. "volume:mytek") with flat `facts`, from
    inside a flow or task run (the run is attached as a related resource).

    Facts must be scalars (or lists of scalars) so every channel can show them as fields.
    """
    name = _checked(signal, facts)
    return emit_event(event=name, resource=_resource(check), payload=facts)


def send_signal(signal: Signal | str, check: str, facts: dict[str, Any]) -> Event:
    """Send a pipeline signal from outside any run (an operator, a drill) and return once
    the server has it: `emit_signal` hands events to a background worker instead."""
    event = Event(event=_checked(signal, facts), resource=_resource(check), payload=facts)
    send_event(event)
    return event


def send_event(event: Event) -> None:
    """Send one event to the server PREFECT_API_URL names and return once it has it."""

    async def _send() -> None:
        async with get_events_client() as client:
            await client.emit(event)

    asyncio.run(_send())
