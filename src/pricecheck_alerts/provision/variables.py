"""Variables (the SLAs and thresholds the flows read)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.exceptions import ObjectNotFound

from pricecheck_alerts.provision.base import PrefectResource
from pricecheck_alerts.provision.client import all_pages


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

    def tagged(self, tags: list[str]) -> dict[str, dict[str, Any]]:
        """Name → inputs of every variable carrying all `tags`, every page read in one
        listing: a stack has a variable per deployment SLA, and reading them one by one
        would cost a request each."""
        with self.client() as client:

            def page(offset: int, limit: int) -> list[dict[str, Any]]:
                response = client.request(
                    "POST",
                    "/variables/filter",
                    json={
                        "offset": offset,
                        "limit": limit,
                        "sort": "NAME_ASC",
                        "variables": {"tags": {"all_": tags}},
                    },
                )
                response.raise_for_status()
                return list(response.json())

            return {
                v["name"]: {"name": v["name"], "value": v["value"], "tags": sorted(v["tags"])}
                for v in all_pages(page)
            }
