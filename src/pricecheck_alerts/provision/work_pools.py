"""Work pools (where the flows run)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound

from pricecheck_alerts.provision.base import PrefectResource


class WorkPools(PrefectResource):
    """Inputs: name, type, description, concurrency_limit, base_job_template."""

    kind = "work_pool"

    def replace_keys(self) -> tuple[str, ...]:
        return ("name", "type")

    def create(self, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            pool = client.create_work_pool(
                WorkPoolCreate(
                    name=inputs["name"],
                    type=inputs["type"],
                    description=inputs["description"],
                    concurrency_limit=inputs.get("concurrency_limit"),
                    base_job_template=inputs["base_job_template"],
                )
            )
            return str(pool.name)

    def read(self, resource_id: str) -> dict[str, Any] | None:
        with self.client() as client:
            try:
                pool = client.read_work_pool(resource_id)
            except ObjectNotFound:
                return None
        return {
            "name": pool.name,
            "type": pool.type,
            "description": pool.description,
            "concurrency_limit": pool.concurrency_limit,
            "base_job_template": pool.base_job_template,
        }

    def update(self, resource_id: str, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            client.update_work_pool(
                resource_id,
                WorkPoolUpdate(
                    description=inputs["description"],
                    concurrency_limit=inputs.get("concurrency_limit"),
                    base_job_template=inputs["base_job_template"],
                ),
            )
        return resource_id

    def delete(self, resource_id: str) -> None:
        with self.client() as client, suppress(ObjectNotFound):
            client.delete_work_pool(resource_id)

    def find(self, name: str) -> str | None:
        return name if self.read(name) is not None else None
