"""The Pulumi program: compile the rules for this stack, then provision what they need.

What gets provisioned is `compile_stack`'s output, the same one `render` prints and
`apply --stack local` provisions. Settings come from `infra/Pulumi.<stack>.yaml` (through
`load_stack`, without PRICECHECK_* environment overrides, so a deployment depends on the
stack file only); secret values come from Pulumi secret config and, for PagerDuty-managed
stacks, from the integrations created here.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import BlockDocumentSpec
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import NAMESPACE, StackConfig, load_stack, pagerduty_key
from pricecheck_infra.pagerduty import DOMAINS, PagerDutyOnCall
from pricecheck_infra.prefect import (
    Automations,
    NotificationChannels,
    PrefectConnection,
    Settings,
    WorkPool,
)

ROOT = Path(__file__).resolve().parents[2]


def stack_config(root: Path, stack: str) -> StackConfig:
    return load_stack(root, stack, {})


def block_secrets(
    blocks: tuple[BlockDocumentSpec, ...],
    config: pulumi.Config,
    routing_keys: dict[str, pulumi.Output[str]] | None,
) -> dict[str, pulumi.Output[str]]:
    """A secret Output for every secret key the blocks name. PagerDuty routing keys come
    from the stack's own integrations when PagerDuty is managed, else from config."""
    by_domain = {pagerduty_key(domain): domain for domain in DOMAINS}
    values: dict[str, pulumi.Output[str]] = {}
    for key in sorted({k for block in blocks for k in block.secret_inputs.values()}):
        if key in by_domain and routing_keys is not None:
            values[key] = routing_keys[by_domain[key]]
        elif key in by_domain:
            values[key] = config.require_secret("pagerdutyRoutingKey")
        else:
            values[key] = config.require_secret(key)
    return values


def main(root: Path = ROOT) -> None:
    config = pulumi.Config(NAMESPACE)
    stack = stack_config(root, pulumi.get_stack())
    resources = compile_stack(load_catalog(root), stack)
    connection = PrefectConnection(str(stack.prefect_api_url), config.get_secret("prefectApiKey"))

    oncall: PagerDutyOnCall | None = None
    if stack.pagerduty.enabled:
        oncall = PagerDutyOnCall(
            "pagerduty", stack.environment, stack.pagerduty, config.require_secret("pagerdutyToken")
        )
    pools = [WorkPool(f"work-pool-{p.name}", p, connection) for p in resources.work_pools]
    channels = NotificationChannels(
        "channels",
        resources.blocks,
        block_secrets(resources.blocks, config, oncall.routing_keys if oncall else None),
        connection,
    )
    Settings("settings", resources.variables, resources.concurrency_limits, connection)
    automations = Automations("automations", resources.automations, channels, connection)

    pulumi.export("prefectUiUrl", str(stack.prefect_ui_url))
    pulumi.export("prefectApiUrl", str(stack.prefect_api_url))  # for `prefect deploy`
    pulumi.export("workPoolName", pools[0].pool_name)
    pulumi.export("automationNames", automations.names)
    pulumi.export("pagerdutyServiceIds", oncall.service_ids if oncall else {})
