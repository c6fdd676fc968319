"""The Jinja template every alert automation sends to its notification blocks.

The server renders it when an automation fires; the result is one JSON document of *facts*
(rule, environment, run, event payload). The notification blocks in `notify/` turn facts
into each destination's payload in Python, where limits and escaping are testable. Every
interpolated value goes through `tojson`, so quotes, newlines or Arabic text in a run
message cannot break the JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

FACTS_VERSION = 1

# Facts read when the automation fires. What identifies the problem (flow and deployment
# names, task attempts) comes from the event itself, which the server always has; the API
# objects (`flow_run`, ...) add detail and may be missing (a custom event outside a run has
# no flow_run, and a failed API read gives none): each value falls back to null.
_DYNAMIC = {
    "event": {
        "id": "(event.id|string) if event.id else none",
        "name": "event.event",
        "occurred": "(event.occurred|string) if event.occurred else none",
        "resource_name": "event.resource.name if event.resource else none",
        "flow": "event.resource_in_role.flow.name if event.resource_in_role.flow else none",
        "deployment": (
            "event.resource_in_role.deployment.name if event.resource_in_role.deployment else none"
        ),
        # where a run waits for a worker: what a Late run's alert points at
        "work_pool": (
            "event.resource_in_role['work-pool'].name "
            "if event.resource_in_role['work-pool'] else none"
        ),
    },
    # The facts a pipeline signal (or a failed delivery) carries.
    "signal": {"payload": "event.payload if event.payload else none"},
    "flow_run": {
        "id": "(flow_run.id|string) if flow_run.id else none",
        "name": "flow_run.name if flow_run.name else none",
        "state": "flow_run.state.name if flow_run.state else none",
        "message": "flow_run.state.message if flow_run.state else none",
        "tags": "flow_run.tags if flow_run.tags else []",
        "start_time": "(flow_run.start_time|string) if flow_run.start_time else none",
        "expected_start_time": (
            "(flow_run.expected_start_time|string) if flow_run.expected_start_time else none"
        ),
    },
    "flow": {"name": "flow.name if flow.name else none"},
    "deployment": {
        "id": "(deployment.id|string) if deployment.id else none",
        "name": "deployment.name if deployment.name else none",
    },
    "task_run": {
        "id": "(task_run.id|string) if task_run.id else none",
        "name": "task_run.name if task_run.name else none",
        "state": "task_run.state.name if task_run.state else none",
        "message": "task_run.state.message if task_run.state else none",
        # the event's own count: the API's may lag behind the final attempt
        "run_count": (
            "(event.resource['prefect.run-count']|int) "
            "if event.resource['prefect.run-count'] else none"
        ),
        "retries": (
            "event.payload.task_run.empirical_policy.retries if event.payload.task_run else none"
        ),
        "tags": "event.payload.task_run.tags if event.payload.task_run else []",
    },
    # Which notification block failed, for `delivery-failed` rules.
    "delivery": {
        "automation": "event.resource.name if event.resource else none",
        "block": "event.resource_in_role.block.name if event.resource_in_role.block else none",
    },
}


def escape_jinja(text: str) -> str:
    """Make JSON text inert for Jinja: `{{`, `{%` and `{#` only occur inside JSON strings,
    where `\\u007b` decodes to the same `{`."""
    return re.sub(r"\{(?=[{%#])", r"\\u007b", text)


def _object_template(fields: dict[str, str]) -> str:
    parts = [f'"{key}": {{{{ ({expression})|tojson }}}}' for key, expression in fields.items()]
    return "{" + ", ".join(parts) + "}"


def facts_template(static: dict[str, Any], objects: tuple[str, ...]) -> str:
    """A Jinja template rendering `static` facts plus the named server objects as JSON.

    Only the objects a rule can have are asked for (`objects`), because each one costs the
    server an API read when the automation fires.
    """
    static_json = escape_jinja(json.dumps(static, ensure_ascii=False, sort_keys=True))
    dynamic = ", ".join(f'"{name}": {_object_template(_DYNAMIC[name])}' for name in objects)
    return f'{{"v": {FACTS_VERSION}, "static": {static_json}, {dynamic}}}'
