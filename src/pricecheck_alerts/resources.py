"""The Prefect resources a stack consists of, as plain data.

The compiler produces these; `render` prints them, `apply` and the Pulumi program provision
them. Automations reference blocks by *name* (`BlockRef`) because ids exist only once the
block is created; `bind_block_ids` swaps names for ids at provisioning time.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

MANAGED_TAG = "managed-by:pricecheck-alerts"
BLOCK_REF_KEY = "$block"
REDACTED = "**redacted**"


def stack_tag(stack: str) -> str:
    return f"stack:{stack}"


@dataclass(frozen=True)
class BlockDocumentSpec:
    """A block document; `secret_inputs` maps a block field to the secret config key
    that supplies it, so the spec itself never holds a secret."""

    name: str
    block_type_slug: str
    data: dict[str, Any]
    secret_inputs: dict[str, str] = field(default_factory=dict)

    def with_secrets(self, secrets: dict[str, str]) -> dict[str, Any]:
        """The full block data, secrets filled in; raises KeyError naming a missing one."""
        data = dict(self.data)
        for block_field, key in self.secret_inputs.items():
            if key not in secrets:
                raise KeyError(key)
            data[block_field] = secrets[key]
        return data


@dataclass(frozen=True)
class AutomationSpec:
    """An automation body as Prefect's API takes it, with `{"$block": name}` references."""

    name: str
    body: dict[str, Any]


@dataclass(frozen=True)
class WorkPoolSpec:
    name: str
    type: str
    description: str
    concurrency_limit: int | None = None
    job_variables: dict[str, Any] = field(default_factory=dict)
    # None: the process worker's default template (docker/kubernetes pools bring their own).
    base_job_template: dict[str, Any] | None = None


@dataclass(frozen=True)
class VariableSpec:
    name: str
    value: Any
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConcurrencyLimitSpec:
    name: str
    limit: int
    slot_decay_per_second: float = 0.0


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


def bind_block_ids(body: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """A copy of `body` with every `{"$block": name}` replaced by that block's id."""
    bound = copy.deepcopy(body)
    for action in _actions(bound):
        ref = action.get("block_document_id")
        if isinstance(ref, dict):
            action["block_document_id"] = str(ids[ref[BLOCK_REF_KEY]])
    return bound
