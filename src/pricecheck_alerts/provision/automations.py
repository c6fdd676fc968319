"""Automations (the alert rules, compiled)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from uuid import UUID

from prefect.events.schemas.automations import Automation, AutomationCore
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from pricecheck_alerts.compile.triggers import SET_FIELDS
from pricecheck_alerts.provision.base import PrefectResource


def _raise_unless_404(error: PrefectHTTPStatusError) -> None:
    """The automations client raises the raw HTTP 404 (not ObjectNotFound) for a missing
    automation: that means gone, anything else is an error."""
    if error.response.status_code != 404:
        raise error


class Automations(PrefectResource):
    """Inputs: an automation body (`AutomationCore` fields) with block ids bound."""

    kind = "automation"

    def replace_keys(self) -> tuple[str, ...]:
        return ()  # everything, the name included, is updatable in place

    def normalize(self, inputs: dict[str, Any]) -> dict[str, Any]:
        core = AutomationCore.model_validate(inputs).model_dump(mode="json")
        trigger = core["trigger"]
        for key in SET_FIELDS:
            if isinstance(trigger.get(key), list):
                trigger[key] = sorted(trigger[key])
        core["tags"] = sorted(core.get("tags", []))
        return core

    def create(self, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            return str(client.create_automation(AutomationCore.model_validate(inputs)))

    def read(self, resource_id: str) -> dict[str, Any] | None:
        with self.client() as client:
            try:
                automation = client.read_automation(resource_id)
            except PrefectHTTPStatusError as error:
                _raise_unless_404(error)
                return None
        return None if automation is None else self.as_inputs(automation)

    def as_inputs(self, automation: Automation) -> dict[str, Any]:
        """A server automation (read or listed) in the shape of the inputs."""
        fields = AutomationCore.model_fields
        return self.normalize(
            {k: v for k, v in automation.model_dump(mode="json").items() if k in fields}
        )

    def update(self, resource_id: str, inputs: dict[str, Any]) -> str:
        """Update in place. The server gives the trigger a new id on every update, which
        drops its open windows (see `has_windows`)."""
        with self.client() as client:
            client.update_automation(UUID(resource_id), AutomationCore.model_validate(inputs))
        return resource_id

    @staticmethod
    def has_windows(inputs: dict[str, Any]) -> bool:
        """Whether the trigger keeps state between events (a failure waiting for its
        recovery, a running run inside its SLA window): an update restarts it."""
        trigger = inputs.get("trigger", {})
        return bool(trigger.get("after")) or trigger.get("posture") == "Proactive"

    def delete(self, resource_id: str) -> None:
        with self.client() as client, suppress(ObjectNotFound):
            try:
                client.delete_automation(UUID(resource_id))
            except PrefectHTTPStatusError as error:
                _raise_unless_404(error)

    def find(self, name: str) -> str | None:
        with self.client() as client:
            found = client.read_automations_by_name(name)
        return str(found[0].id) if found else None
