"""Global concurrency limits (for example how many sites are scraped at once)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.exceptions import ObjectNotFound

from pricecheck_alerts.provision.base import PrefectResource


class ConcurrencyLimits(PrefectResource):
    """Global concurrency limits. Inputs: name, limit, slot_decay_per_second, active."""

    kind = "concurrency_limit"

    def create(self, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=inputs["name"],
                    limit=inputs["limit"],
                    slot_decay_per_second=inputs.get("slot_decay_per_second", 0.0),
                    active=inputs.get("active", True),
                )
            )
        return str(inputs["name"])

    def read(self, resource_id: str) -> dict[str, Any] | None:
        with self.client() as client:
            try:
                limit = client.read_global_concurrency_limit_by_name(resource_id)
            except ObjectNotFound:
                return None
        return {
            "name": limit.name,
            "limit": limit.limit,
            "active": limit.active,
            "slot_decay_per_second": limit.slot_decay_per_second,
        }

    def normalize(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"active": True, "slot_decay_per_second": 0.0, **inputs}

    def update(self, resource_id: str, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            client.update_global_concurrency_limit(
                resource_id,
                GlobalConcurrencyLimitUpdate(
                    limit=inputs["limit"],
                    active=inputs.get("active", True),
                    slot_decay_per_second=inputs.get("slot_decay_per_second", 0.0),
                ),
            )
        return resource_id

    def delete(self, resource_id: str) -> None:
        with self.client() as client, suppress(ObjectNotFound):
            client.delete_global_concurrency_limit_by_name(resource_id)

    def find(self, name: str) -> str | None:
        return name if self.read(name) is not None else None
