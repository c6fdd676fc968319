"""Block documents (the notification blocks of a stack)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from uuid import UUID

from prefect.blocks.core import Block
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import BlockDocumentCreate, BlockDocumentUpdate
from prefect.exceptions import ObjectNotFound

from pricecheck_alerts.provision.base import PrefectResource
from pricecheck_alerts.provision.client import all_pages


class BlockDocuments(PrefectResource):
    """Inputs: name, block_type_slug, data (secrets included; the caller marks them)."""

    kind = "block_document"

    def replace_keys(self) -> tuple[str, ...]:
        return ("name", "block_type_slug")

    def _schema(self, client: SyncPrefectClient, slug: str) -> tuple[UUID, UUID]:
        block_class = Block.get_block_class_from_key(slug)
        # Registering is idempotent and makes the server know our block types' schemas.
        block_class.register_type_and_schema(client=client)  # type: ignore[arg-type]
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
                documents = all_pages(
                    lambda offset, limit: client.read_block_documents_by_type(
                        block_type_slug, offset=offset, limit=limit, include_secrets=False
                    )
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
