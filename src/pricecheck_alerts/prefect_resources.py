"""Create, read, update and delete Prefect resources: the one code path that provisions.

`pricecheck-alerts apply` and the Pulumi dynamic providers (infra/) both call these. Each
kind takes and returns plain JSON-able dicts (Pulumi state is JSON) and opens its own client
per call, so nothing here holds a connection between calls (providers are pickled into
Pulumi state). `read` returns what the server has *now*, in the same shape as the inputs,
so a UI edit shows up as a difference (drift). A 404 on delete counts as deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar
from uuid import UUID

from prefect.blocks.core import Block
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import (
    BlockDocumentCreate,
    BlockDocumentUpdate,
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    VariableCreate,
    VariableUpdate,
    WorkPoolCreate,
    WorkPoolUpdate,
)
from prefect.events.schemas.automations import AutomationCore
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.workers.process import ProcessWorker

# Trigger fields that are sets on the server: order is not meaningful.
_SET_FIELDS = ("after", "expect", "for_each")


@contextmanager
def prefect_client(
    api_url: str | None = None, api_key: str | None = None
) -> Iterator[SyncPrefectClient]:
    """A fresh sync client (for `api_url` and `api_key`, e.g. Prefect Cloud, or the server
    PREFECT_API_URL names)."""
    if api_url:
        from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL, temporary_settings

        wanted: dict[Any, Any] = {PREFECT_API_URL: api_url}
        if api_key:
            wanted[PREFECT_API_KEY] = api_key
        with temporary_settings(wanted), get_client(sync_client=True) as c:
            yield c
    else:
        with get_client(sync_client=True) as client:
            yield client


class PrefectResource:
    """One kind of resource. `inputs` are what we want; `read` gives what the server has."""

    kind: ClassVar[str]

    def __init__(self, api_url: str | None = None, api_key: str | None = None) -> None:
        self.api_url = api_url
        self.api_key = api_key

    def client(self) -> Any:
        return prefect_client(self.api_url, self.api_key)

    def create(self, inputs: dict[str, Any]) -> str:
        raise NotImplementedError

    def read(self, resource_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def update(self, resource_id: str, inputs: dict[str, Any]) -> str:
        """Update in place; returns the id (unchanged for every kind here)."""
        raise NotImplementedError

    def delete(self, resource_id: str) -> None:
        raise NotImplementedError

    def find(self, name: str) -> str | None:
        """The id of the resource with this name, for reconciling by name (`apply`)."""
        raise NotImplementedError

    def replace_keys(self) -> tuple[str, ...]:
        """Inputs the API cannot change in place: a change means delete + create."""
        return ("name",)

    def normalize(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Inputs in the shape `read` returns, for comparison."""
        return inputs

    def differs(self, desired: dict[str, Any], actual: dict[str, Any] | None) -> list[str]:
        """The input keys whose desired value is not what the server has."""
        if actual is None:
            return sorted(desired)
        wanted = self.normalize(desired)
        return sorted(k for k in wanted if wanted[k] != actual.get(k))


class BlockDocuments(PrefectResource):
    """Inputs: name, block_type_slug, data (secrets included; the caller marks them)."""

    kind = "block_document"

    def replace_keys(self) -> tuple[str, ...]:
        return ("name", "block_type_slug")

    def _schema(self, client: SyncPrefectClient, slug: str) -> tuple[UUID, UUID]:
        block_class = Block.get_block_class_from_key(slug)
        # Registering is idempotent and makes the server know our block types' schemas.
        block_class.register_type_and_schema(client=client)  # type: ignore[call-arg]
        block_type = client.read_block_type_by_slug(slug)
        schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
        assert schema is not None, f"no schema for block type {slug}"
        return block_type.id, schema.id

    def create(self, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            type_id, schema_id = self._schema(client, inputs["block_type_slug"])
            document = client.create_block_document(
                BlockDocumentCreate(
                    name=inputs["name"],
                    data=inputs["data"],
                    block_type_id=type_id,
                    block_schema_id=schema_id,
                )
            )
            return str(document.id)

    def read(self, resource_id: str) -> dict[str, Any] | None:
        with self.client() as client:
            try:
                document = client.read_block_document(UUID(resource_id), include_secrets=True)
            except ObjectNotFound:
                return None
        slug = document.block_type.slug if document.block_type else ""
        return {"name": document.name, "block_type_slug": slug, "data": _reveal(document.data)}

    def update(self, resource_id: str, inputs: dict[str, Any]) -> str:
        with self.client() as client:
            _, schema_id = self._schema(client, inputs["block_type_slug"])
            client.update_block_document(
                UUID(resource_id),
                BlockDocumentUpdate(
                    data=inputs["data"],
                    block_schema_id=schema_id,
                    merge_existing_data=False,
                ),
            )
        return resource_id

    def delete(self, resource_id: str) -> None:
        with self.client() as client, suppress(ObjectNotFound):
            client.delete_block_document(UUID(resource_id))

    def find(self, name: str, block_type_slug: str = "") -> str | None:
        with self.client() as client:
            try:
                document = client.read_block_document_by_name(name, block_type_slug)
            except ObjectNotFound:
                return None
            return str(document.id)

    def of_type(self, block_type_slug: str) -> dict[str, str]:
        """Name -> id of every document of one block type (none if the type is unknown)."""
        with self.client() as client:
            try:
                documents = client.read_block_documents_by_type(
                    block_type_slug, include_secrets=False
                )
            except ObjectNotFound:
                return {}
        return {d.name: str(d.id) for d in documents if d.name}


def _reveal(value: Any) -> Any:
    """Block data as plain JSON (SecretStr etc. unwrapped), for comparisons."""
    if hasattr(value, "get_secret_value"):
        return _reveal(value.get_secret_value())
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


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
        for key in _SET_FIELDS:
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
        if automation is None:
            return None
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


def base_job_template(
    pool_type: str, job_variables: dict[str, Any], template: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The pool's base job template: the given one (docker/kubernetes pools ship theirs in
    stack config) or the process worker's default, with `job_variables` as defaults."""
    if template is None:
        if pool_type != "process":
            raise ValueError(f"a {pool_type} work pool needs an explicit base job template")
        template = ProcessWorker.get_default_base_job_template()
    properties = template.get("variables", {}).get("properties", {})
    for key, value in job_variables.items():
        if key not in properties:
            raise ValueError(f"job variable {key!r} is not in the {pool_type} job template")
        properties[key]["default"] = value
    return template


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
            return pool.name

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
        return inputs["name"]

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
        return inputs["name"]

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
