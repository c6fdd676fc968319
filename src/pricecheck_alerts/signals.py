"""How pipeline checks report facts: Prefect events named `pricechecktn.<area>.<signal>`.

Flows never talk to Slack or PagerDuty (DESIGN principle 1). They emit one of these events
with a flat payload of facts; the alert rules in `automations/rules/pipeline-signals.yaml`
route them. Inside a flow or task run, Prefect attaches the run, flow, deployment and tags
as related resources by itself, which is what rule scopes and alert links use.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from prefect.events import Event, emit_event

from pricecheck_alerts.models import EVENT_NAME


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


def emit_signal(signal: Signal | str, check: str, facts: dict[str, Any]) -> Event | None:
    """Emit a pipeline signal about `check` (e.g. "volume:mytek") with flat `facts`.

    Facts must be scalars (or lists of scalars) so every channel can show them as fields.
    """
    name = str(signal)
    if not re.match(EVENT_NAME, name):
        raise ValueError(f"event name {name!r} is not pricechecktn.<area>.<signal>")
    for key, value in facts.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _SCALAR) for v in values):
            raise TypeError(f"fact {key!r} must be a scalar or a list of scalars")
    return emit_event(
        event=name,
        resource={
            "prefect.resource.id": f"pricechecktn.check.{check}",
            "prefect.resource.name": check,
        },
        payload=facts,
    )
