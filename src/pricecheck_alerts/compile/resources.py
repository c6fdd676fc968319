"""The Prefect resources a stack consists of, as plain data.

The compiler produces these; `render` prints them, `apply` and the Pulumi program provision
them. Each spec turns itself into the inputs Prefect's API takes (`inputs`), once, for
both `apply` and the Pulumi components. Automations reference blocks by *name*
(`{"$block": name}`) because ids exist only once the block is created; `bind_block_ids`
swaps names for ids at provisioning time.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from prefect.workers.process import ProcessWorker

BLOCK_REF_KEY = "$block"
REDACTED = "**redacted**"


@dataclass(frozen=True)
class BlockDocumentSpec:
    """A block document; `secret_inputs` maps a block field to the secret config key
    that supplies it, so the spec itself never holds a secret."""

    name: str
    block_type_slug: str
    data: dict[str, Any]
    secret_inputs: dict[str, str] = field(default_factory=dict)

    def with_secrets(self, secrets: Mapping[str, str]) -> dict[str, Any]:
        """The full block data, secrets filled in; raises KeyError naming a missing one."""
        data = dict(self.data)
        for block_field, key in self.secret_inputs.items():
            if key not in secrets:
                raise KeyError(key)
            data[block_field] = secrets[key]
        return data

    def inputs(self, secrets: Mapping[str, str]) -> dict[str, Any]:
        """API inputs of the block document (secret values included: mark them secret)."""
        return {
            "name": self.name,
            "block_type_slug": self.block_type_slug,
            "data": self.with_secrets(secrets),
        }


@dataclass(frozen=True)
class AutomationSpec:
    """An automation body as Prefect's API takes it, with `{"$block": name}` references."""

    name: str
    body: dict[str, Any]

    @property
    def block_names(self) -> list[str]:
        """The blocks this automation notifies, sorted, each once."""
        return sorted(set(referenced_blocks(self.body)))

    def inputs(self, block_ids: Mapping[str, str]) -> dict[str, Any]:
        """API inputs: the body with its block references bound to ids."""
        return bind_block_ids(self.body, block_ids)


@dataclass(frozen=True)
class WorkPoolSpec:
    name: str
    type: str
    description: str
    concurrency_limit: int | None = None
    job_variables: dict[str, Any] = field(default_factory=dict)
    # None: the process worker's default template (docker/kubernetes pools bring their own).
    base_job_template: dict[str, Any] | None = None

    def inputs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "concurrency_limit": self.concurrency_limit,
            "base_job_template": base_job_template(
                self.type, self.job_variables, copy.deepcopy(self.base_job_template)
            ),
        }


@dataclass(frozen=True)
class VariableSpec:
    name: str
    value: Any
    tags: tuple[str, ...] = ()

    def inputs(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "tags": list(self.tags)}


@dataclass(frozen=True)
class ConcurrencyLimitSpec:
    name: str
    limit: int
    slot_decay_per_second: float = 0.0

    def inputs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "limit": self.limit,
            "slot_decay_per_second": self.slot_decay_per_second,
        }


@dataclass(frozen=True)
class StackResources:
    stack: str
    environment: str
    blocks: tuple[BlockDocumentSpec, ...]
    automations: tuple[AutomationSpec, ...]
    work_pools: tuple[WorkPoolSpec, ...]
    variables: tuple[VariableSpec, ...] = ()
    concurrency_limits: tuple[ConcurrencyLimitSpec, ...] = ()

    def to_document(self) -> dict[str, Any]:
        """A deterministic, secret-free document for review and diff (`render`)."""
        blocks = []
        for block in self.blocks:
            data = dict(block.data)
            data.update({name: REDACTED for name in block.secret_inputs})
            blocks.append(
                {
                    "name": block.name,
                    "block_type_slug": block.block_type_slug,
                    "data": dict(sorted(data.items())),
                    "secret_inputs": dict(sorted(block.secret_inputs.items())),
                }
            )
        return {
            "stack": self.stack,
            "environment": self.environment,
            "work_pools": [asdict(p) for p in self.work_pools],
            "blocks": blocks,
            "variables": [asdict(v) | {"tags": list(v.tags)} for v in self.variables],
            "concurrency_limits": [asdict(c) for c in self.concurrency_limits],
            "automations": [a.body for a in self.automations],
        }


def block_ref(name: str) -> dict[str, str]:
    return {BLOCK_REF_KEY: name}


def referenced_blocks(body: dict[str, Any]) -> list[str]:
    return [
        a["block_document_id"][BLOCK_REF_KEY]
        for a in _actions(body)
        if isinstance(a.get("block_document_id"), dict)
    ]


def _actions(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *body.get("actions", []),
        *body.get("actions_on_trigger", []),
        *body.get("actions_on_resolve", []),
    ]


def bind_block_ids(body: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `body` with every `{"$block": name}` replaced by that block's id."""
    bound = copy.deepcopy(body)
    for action in _actions(bound):
        ref = action.get("block_document_id")
        if isinstance(ref, dict):
            action["block_document_id"] = str(ids[ref[BLOCK_REF_KEY]])
    return bound


def base_job_template(
    pool_type: str, job_variables: Mapping[str, Any], template: dict[str, Any] | None = None
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
