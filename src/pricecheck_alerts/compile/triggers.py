"""Triggers and actions built through Prefect's own typed models.

`EventTrigger`, `Posture` and `SendNotification` validate what the server would (for example
a proactive `within` under 10 s), so an invalid automation fails when the rules are compiled,
not later inside `apply` or a Pulumi provider. The result is plain JSON, as the API takes it,
with set-valued fields sorted so that the compiled output is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from pricecheck_alerts.compile.resources import block_ref

# Trigger fields that are sets on the server: sorted in the compiled JSON.
SET_FIELDS = ("after", "expect", "for_each")
# Stands in for a block's id while the compiler only knows the block's name.
_PLACEHOLDER_ID = UUID(int=0)


def event_trigger(
    *,
    match: dict[str, Any],
    expect: Iterable[str],
    related: Sequence[dict[str, Any]] = (),
    for_each: Iterable[str] = ("prefect.resource.id",),
    after: Iterable[str] = (),
    posture: Posture = Posture.Reactive,
    threshold: int = 1,
    within: timedelta = timedelta(0),
) -> dict[str, Any]:
    """An `event` trigger as JSON, validated by Prefect's `EventTrigger`."""
    trigger = EventTrigger(
        match=match,
        match_related=list(related),
        after=set(after),
        expect=set(expect),
        for_each=set(for_each),
        posture=posture,
        threshold=threshold,
        within=within,
    )
    body = trigger.model_dump(mode="json")
    for key in SET_FIELDS:
        body[key] = sorted(body[key])
    return body


def send_notification(block: str, subject: str, body: str) -> dict[str, Any]:
    """A `send-notification` action to the block named `block` (bound to its id when the
    block exists: see `resources.bind_block_ids`)."""
    action = SendNotification(block_document_id=_PLACEHOLDER_ID, subject=subject, body=body)
    dumped = action.model_dump(mode="json")
    dumped["block_document_id"] = block_ref(block)
    return dumped


def validate_automation(body: dict[str, Any]) -> None:
    """Raise if Prefect would refuse this automation (block references stand in as ids)."""
    probe = {
        **body,
        "actions": [
            {**a, "block_document_id": str(_PLACEHOLDER_ID)}
            if isinstance(a.get("block_document_id"), dict)
            else a
            for a in body.get("actions", [])
        ],
    }
    AutomationCore.model_validate(probe)
