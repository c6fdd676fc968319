"""Component resources for the Prefect side of a stack, built from the compiler's output.

Each component takes `StackResources` specs (the same objects `render` and `apply` use) and
turns them into dynamic resources; nothing here decides *what* to provision.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from operator import itemgetter
from typing import Any

import pulumi

from pricecheck_alerts.compile.resources import (
    AutomationSpec,
    BlockDocumentSpec,
    ConcurrencyLimitSpec,
    VariableSpec,
    WorkPoolSpec,
)
from pricecheck_infra.providers import (
    PrefectAutomation,
    PrefectBlockDocument,
    PrefectConcurrencyLimit,
    PrefectVariable,
    PrefectWorkPool,
)

ACTION_KEYS = ("actions", "actions_on_trigger", "actions_on_resolve")


class PrefectConnection:
    """Where the Prefect API is and how to log in: passed to every resource as inputs (never
    a global), so the provider host needs no environment and a rotated credential reaches
    every resource through an ordinary `pulumi up`.

    `api_key` is a Prefect Cloud key; `auth_string` (`user:password`) is the basic auth of a
    self-hosted server (PREFECT_SERVER_API_AUTH_STRING). Both are wrapped as secrets here
    whatever the caller passed, so they are encrypted in state and masked in previews."""

    def __init__(
        self,
        api_url: str,
        api_key: pulumi.Output[str] | None = None,
        auth_string: pulumi.Output[str] | None = None,
    ) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self.auth_string = auth_string

    def props(self) -> dict[str, Any]:
        props: dict[str, Any] = {"api_url": self.api_url}
        if self.api_key is not None:
            props["api_key"] = pulumi.Output.secret(self.api_key)
        if self.auth_string is not None:
            props["auth_string"] = pulumi.Output.secret(self.auth_string)
        return props


class WorkPool(pulumi.ComponentResource):
    """The stack's work pool (process locally; kubernetes/docker with a job template)."""

    def __init__(
        self,
        name: str,
        spec: WorkPoolSpec,
        connection: PrefectConnection,
        opts: pulumi.ResourceOptions | None = None,
        protect: bool = False,
    ) -> None:
        super().__init__("pricechecktn:prefect:WorkPool", name, None, opts)
        self.pool = PrefectWorkPool(
            spec.name,
            {**connection.props(), **spec.inputs()},
            pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.pool_name: pulumi.Output[str] = self.pool.id
        self.register_outputs({"name": self.pool_name})


def _block_data(spec: BlockDocumentSpec, secrets: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = spec.inputs(secrets)["data"]
    return data


class NotificationChannels(pulumi.ComponentResource):
    """One block document per channel (and PagerDuty domain) the rules route to.

    `secrets` maps each secret key a spec names (`BlockDocumentSpec.secret_inputs`) to a
    secret Output; the block's `data` output is secret in state.
    """

    def __init__(
        self,
        name: str,
        specs: tuple[BlockDocumentSpec, ...],
        secrets: Mapping[str, pulumi.Output[str]],
        connection: PrefectConnection,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pricechecktn:prefect:NotificationChannels", name, None, opts)
        self.blocks: dict[str, PrefectBlockDocument] = {}
        for spec in specs:
            values = {key: secrets[key] for key in spec.secret_inputs.values()}
            inputs = spec.inputs({key: "" for key in values})  # known fields, for previews
            data = pulumi.Output.all(**values).apply(partial(_block_data, spec))
            self.blocks[spec.name] = PrefectBlockDocument(
                spec.name,
                {
                    **connection.props(),
                    **inputs,
                    "data": pulumi.Output.secret(data) if values else data,
                },
                pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"blocks": sorted(self.blocks)})


class Settings(pulumi.ComponentResource):
    """Variables (the SLAs the flows read) and global concurrency limits."""

    def __init__(
        self,
        name: str,
        variables: tuple[VariableSpec, ...],
        limits: tuple[ConcurrencyLimitSpec, ...],
        connection: PrefectConnection,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pricechecktn:prefect:Settings", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.variables = [
            PrefectVariable(v.name, {**connection.props(), **v.inputs()}, child) for v in variables
        ]
        self.limits = [
            PrefectConcurrencyLimit(c.name, {**connection.props(), **c.inputs()}, child)
            for c in limits
        ]
        self.register_outputs({})


class Automations(pulumi.ComponentResource):
    """The alert automations, their block references bound to the blocks' ids (which also
    makes each automation depend on the blocks it notifies)."""

    def __init__(
        self,
        name: str,
        specs: tuple[AutomationSpec, ...],
        channels: NotificationChannels,
        connection: PrefectConnection,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pricechecktn:prefect:Automations", name, None, opts)
        self.automations: dict[str, PrefectAutomation] = {}
        for spec in specs:
            routes = spec.block_names
            ids = {block: channels.blocks[block].id for block in routes}
            bound: pulumi.Output[dict[str, Any]] = pulumi.Output.all(**ids).apply(spec.inputs)
            props = {
                **connection.props(),
                # Known fields stay known in previews (policies read name, tags, trigger);
                # only the actions wait for block ids, which records the dependencies.
                **{k: v for k, v in spec.body.items() if k not in ACTION_KEYS},
                **{k: bound.apply(itemgetter(k)) for k in ACTION_KEYS if k in spec.body},
                "routes": routes,
            }
            self.automations[spec.name] = PrefectAutomation(
                spec.name, props, pulumi.ResourceOptions(parent=self)
            )
        self.names = sorted(self.automations)
        self.register_outputs({"names": self.names})
