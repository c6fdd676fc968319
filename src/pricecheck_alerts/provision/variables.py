"""Variables (the SLAs and thresholds the flows read)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.exceptions import ObjectNotFound

from pricecheck_alerts.provision.base import PrefectResource


class Variables(PrefectResource):
    """Inputs: name, value (any JSON), tags. The id is the name."""

    kind = "variable"

    def create(self, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            client.create_variable(
                VariableCreate(
                    name=inputs["name"],
                    value=inputs["value"],
                    tags=list(inputs.get("tags", [])),
                )
            )
        return str(inputs["name"])

    def read(self, resource_id: str) -> dict[str, Any] | None:
        with self.client() as client:
            variable = client.read_variable_by_name(resource_id)
        if variable is None:
            return None
        return {"name": variable.name, "value": variable.value, "tags": sorted(variable.tags)}

    def normalize(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {**inputs, "tags": sorted(inputs.get("tags", []))}

    def update(self, resource_id: str, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            client.update_variable(
                VariableUpdate(
                    name=resource_id,
                    value=inputs["value"],
                    tags=list(inputs.get("tags", [])),
                )
            )
        return resource_id

    def delete(self, resource_id: str) -> None:
        with self.client() as client, suppress(ObjectNotFound):
            client.delete_variable_by_name(resource_id)

    def find(self, name: str) -> str | None:
        return name if self.read(name) is not None else None
