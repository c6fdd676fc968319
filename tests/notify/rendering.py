"""Render alert facts the way the Prefect server does, for the payload tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID, uuid4

from prefect.server.events.actions import JinjaTemplateAction
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.schemas.core import FlowRun
from prefect.server.schemas.states import State, StateType
from prefect.server.utilities.user_templates import render_user_template_sync

from devtools.scenarios import HOSTILE_MESSAGE
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack
from pricecheck_alerts.notify.facts import AlertFacts

HOSTILE = [
    "quotes \" and ' and \\ backslash",
    "new\nlines\r\nand\ttabs",
    "emoji 🚨🔥👩‍💻 " * 300,
    "عربي: فشل التشغيل " * 400,
    "français : échec du scraping — « réessayer »",
    "<script>alert('x')</script> & {{ not a template }} {% nor this %}",
    HOSTILE_MESSAGE,
    "x" * 20_000,
]
ROUTING_KEY = "R" * 32


def body_template(root: Path, automation: str) -> str:
    resources = compile_stack(load_catalog(root), load_stack(root, "local", {}))
    [spec] = [a for a in resources.automations if a.name == automation]
    return spec.body["actions"][0]["body"]


def render(
    template: str,
    message: str,
    payload: dict | None = None,
    task: bool = False,
    deployment: str = "pricechecktn-pipeline",
    missing_objects: bool = False,
) -> AlertFacts:
    """Render like the server does: its template environment and filters, its event and
    object models, and None for objects it could not read."""
    JinjaTemplateAction._register_filters_if_needed()
    state = State(type=StateType.FAILED, name="Failed", message=message)
    run_id = UUID("6f1c1c9e-0000-4000-8000-000000000001")
    if task:
        name, resource = (
            "prefect.task-run.Failed",
            {
                "prefect.resource.id": "prefect.task-run.7a0c",
                "prefect.resource.name": "scrape-mytek-0",
                "prefect.run-count": "4",
            },
        )
        payload = {"task_run": {"empirical_policy": {"retries": 3}, "tags": ["scraping"]}}
    elif payload:
        name, resource = (
            "pricechecktn.data.quality_low",
            {
                "prefect.resource.id": "pricechecktn.check.quality",
                "prefect.resource.name": "quality",
            },
        )
    else:
        name, resource = (
            "prefect.flow-run.Failed",
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.name": "brave-lynx",
            },
        )
    event = ReceivedEvent(
        occurred=datetime(2026, 11, 26, 2, 0, 5, 123000, tzinfo=UTC),
        event=name,
        resource=resource,
        payload=payload or {},
        id=uuid4(),
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": "brave-lynx",
            },
            {
                "prefect.resource.id": "prefect.flow.f1",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "pricechecktn-pipeline",
            },
            {
                "prefect.resource.id": "prefect.deployment.d1",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": deployment,
            },
        ],
    )
    objects = {
        "flow_run": FlowRun(
            id=run_id,
            flow_id=uuid4(),
            name="brave-lynx",
            state=state,
            tags=["scraping", message[:20]],
            run_count=1,
            start_time=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        ),
        "flow": SimpleNamespace(name="pricechecktn-pipeline"),
        "deployment": SimpleNamespace(id="d1", name=deployment),
        "task_run": SimpleNamespace(id="t1", name="scrape-mytek-0", state=state) if task else None,
    }
    if missing_objects:  # the API read failed or the objects do not exist
        objects = dict.fromkeys(objects)
    rendered = render_user_template_sync(template, {"event": event, **objects})
    json.loads(rendered)  # valid JSON whatever the message held
    return AlertFacts.parse(rendered)
