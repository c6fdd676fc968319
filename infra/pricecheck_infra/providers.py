"""Pulumi dynamic providers for Prefect resources, one generic provider parametrized by kind.

The CRUD calls are `pricecheck_alerts.provision` (shared with `pricecheck-alerts
apply`); this module only maps Pulumi's provider protocol onto them:

- The provider object is pickled (dill) into the Pulumi state and unpickled by the dynamic
  provider host (`python -m pulumi.dynamic`). It holds nothing but the kind name: clients are
  built inside each method, and the Prefect API URL and credentials arrive with every call as
  inputs (`api_url`; `api_key` for Prefect Cloud, `auth_string` for a self-hosted server with
  basic auth), never as globals, so rotating a credential is an ordinary update, not a
  replacement. Both credentials are secret outputs (`_PrefectResource.SECRET_OUTPUTS`).
- `diff` compares the desired inputs with what the server has *now* (not with the last
  state), so an automation edited in the UI shows as a diff and `pulumi up` puts it back;
  `read` (`pulumi refresh`) returns the live server state too.
- Names are unique on the server, so a replacement deletes before it creates.

This module must stay import-safe in the provider host: it registers no resources.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime import rpc
from pydantic import ValidationError

from pricecheck_alerts.provision import KINDS, PrefectResource

# Inputs every Prefect resource carries besides its own fields.
CONNECTION_KEYS = ("api_url", "api_key", "auth_string")
# The connection inputs that are credentials: secret, and a change is only an update.
CREDENTIAL_KEYS = ("api_key", "auth_string")
# Informational inputs for policies (e.g. which channels an automation routes to): they are
# kept in state but never sent to Prefect.
META_KEYS = ("routes",)

REQUIRED: dict[str, tuple[str, ...]] = {
    "work_pool": ("name", "type", "description", "base_job_template"),
    "block_document": ("name", "block_type_slug", "data"),
    "automation": ("name", "trigger", "actions"),
    "variable": ("name", "value"),
    "concurrency_limit": ("name", "limit"),
}
# What the dynamic provider host passes for values not known yet (preview).
UNKNOWN = rpc.UNKNOWN


def resource_inputs(props: dict[str, Any]) -> dict[str, Any]:
    """The inputs the Prefect API sees: connection, meta and Pulumi's own keys removed."""
    dropped = {*CONNECTION_KEYS, *META_KEYS}
    return {k: v for k, v in props.items() if k not in dropped and not k.startswith("__")}


def has_unknowns(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_unknowns(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknowns(v) for v in value)
    return bool(value == UNKNOWN)


def strip_nulls(value: Any) -> Any:
    """`value` without null map entries: Pulumi's property encoding drops them, so a value
    that went through the engine and the same value read from Prefect differ only there."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def changed_keys(
    resource: PrefectResource, desired: dict[str, Any], live: dict[str, Any] | None
) -> list[str]:
    """`PrefectResource.differs`, blind to null map entries (see `strip_nulls`)."""
    changed = resource.differs(desired, live)
    if live is None:
        return changed
    wanted = resource.normalize(desired)
    return [k for k in changed if strip_nulls(wanted.get(k)) != strip_nulls(live.get(k))]


class PrefectProvider(ResourceProvider):
    """One kind of Prefect resource (`KINDS`) behind Pulumi's dynamic-provider protocol."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown Prefect resource kind {kind!r}")
        self.kind = kind

    def _resource(self, props: dict[str, Any]) -> PrefectResource:
        return KINDS[self.kind](
            props["api_url"],
            props.get("api_key") or None,
            auth_string=props.get("auth_string") or None,
        )

    def _outs(self, props: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        """State to keep: connection and meta inputs plus the resource's fields."""
        kept = {k: props[k] for k in (*CONNECTION_KEYS, *META_KEYS) if k in props}
        return {**kept, **state}

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            CheckFailure(key, f"{self.kind} needs '{key}'")
            for key in ("api_url", *REQUIRED[self.kind])
            if news.get(key) is None
        ]
        if not failures and self.kind == "automation" and not has_unknowns(news):
            try:
                self._resource(news).normalize(resource_inputs(news))
            except ValidationError as error:
                failures.append(CheckFailure("trigger", f"invalid automation: {error}"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = resource_inputs(props)
        resource_id = self._resource(props).create(inputs)
        return CreateResult(resource_id, self._outs(props, inputs))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        live = self._resource(props).read(id_)
        if live is None:
            return ReadResult("", {})  # gone: Pulumi drops it from state on refresh
        return ReadResult(id_, self._outs(props, live))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if has_unknowns(news):
            return DiffResult(changes=True, replaces=[], delete_before_replace=True)
        if olds.get("api_url") != news.get("api_url"):
            # Another server: the resource there does not exist yet.
            return DiffResult(changes=True, replaces=["api_url"], delete_before_replace=False)
        resource = self._resource(news)
        live = resource.read(id_)
        desired = resource_inputs(news)
        if live is None:
            return DiffResult(changes=True, replaces=sorted(desired), delete_before_replace=True)
        changed = changed_keys(resource, desired, live)
        replaces = sorted(set(changed) & set(resource.replace_keys()))
        # A rotated credential changes no resource on the server: an update (which stores
        # the new value in state), never a replacement.
        credentials = any(olds.get(k) != news.get(k) for k in CREDENTIAL_KEYS)
        meta = any(olds.get(k) != news.get(k) for k in META_KEYS)
        return DiffResult(
            changes=bool(changed) or credentials or meta,
            replaces=replaces,
            delete_before_replace=True,
        )

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = resource_inputs(news)
        self._resource(news).update(id_, inputs)
        return UpdateResult(self._outs(news, inputs))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self._resource(props).delete(id_)  # 404 is success (pricecheck_alerts.provision)


class _PrefectResource(Resource):
    """A dynamic resource of one kind; the credentials (and `SECRET_OUTPUTS`) stay secret."""

    KIND: ClassVar[str]
    SECRET_OUTPUTS: ClassVar[tuple[str, ...]] = CREDENTIAL_KEYS

    def __init__(
        self,
        name: str,
        props: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=list(self.SECRET_OUTPUTS))
        super().__init__(
            PrefectProvider(self.KIND), name, props, pulumi.ResourceOptions.merge(opts, secret)
        )


class PrefectWorkPool(_PrefectResource, module="prefect", name="WorkPool"):
    KIND = "work_pool"


class PrefectBlockDocument(_PrefectResource, module="prefect", name="BlockDocument"):
    KIND = "block_document"
    # Block data holds webhook URLs, routing keys and passwords.
    SECRET_OUTPUTS = (*CREDENTIAL_KEYS, "data")


class PrefectAutomation(_PrefectResource, module="prefect", name="Automation"):
    KIND = "automation"


class PrefectVariable(_PrefectResource, module="prefect", name="Variable"):
    KIND = "variable"


class PrefectConcurrencyLimit(_PrefectResource, module="prefect", name="ConcurrencyLimit"):
    KIND = "concurrency_limit"
