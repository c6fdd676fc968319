"""The Pulumi program: compile the rules for this stack, then provision what they need.

What gets provisioned is `compile_stack`'s output, the same one `render` prints and
`apply --stack local` provisions. Settings come from Pulumi's config (`pricechecktn:*`), read
through the engine, so whatever feeds it works: the stack file, `pulumi config set --path`,
`--config-file`, ESC `environment:` imports, project-level defaults. They are validated by
the same typed models as the files `check` reads, with no PRICECHECK_* environment
overrides (a deployment depends on its config only). Secret values come from Pulumi secret
config and, for PagerDuty-managed stacks, from the integrations created here.

The engine runs this program with `infra/` as working directory (from `runpy.run_path` of
`__main__.py`); the rules are found by searching upwards from there for `automations/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.config import get_config, is_config_secret

from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import BlockDocumentSpec
from pricecheck_alerts.config.loader import ConfigError, find_project_root, load_catalog
from pricecheck_alerts.config.stacks import (
    LOCAL_STACK,
    NAMESPACE,
    SECRET_KEYS,
    SETTING_KEYS,
    StackConfig,
    pagerduty_key,
    stack_settings,
)
from pricecheck_infra.pagerduty import DOMAINS, PagerDutyOnCall
from pricecheck_infra.prefect import (
    Automations,
    NotificationChannels,
    PrefectConnection,
    Settings,
    WorkPool,
)

AUTH_STRING_KEY = "prefectAuthString"
"""The basic auth (`user:password`) of a self-hosted Prefect server, the value its
PREFECT_SERVER_API_AUTH_STRING holds. A secret like `prefectApiKey`, the Prefect Cloud key."""


def config_value(config: pulumi.Config, key: str) -> Any:
    """A setting as Pulumi holds it: structured values are JSON text (`get_object`), plain
    strings are not JSON (`get`)."""
    try:
        return config.get_object(key)
    except pulumi.ConfigTypeError:
        return config.get(key)


def stack_config(config: pulumi.Config, stack: str) -> StackConfig:
    """The stack's validated settings from Pulumi config. Outside `local`, a secret
    setting must be a Pulumi secret: plain text would sit unencrypted in the stack file."""
    raw = {key: value for key in SETTING_KEYS if (value := config_value(config, key)) is not None}
    display = f"Pulumi config of stack '{stack}' (pricechecktn:*)"
    if stack != LOCAL_STACK:
        plain = [
            key
            for key in SECRET_KEYS
            # the raw lookup: `config.get` on a secret would log a warning per key
            if get_config(f"{NAMESPACE}:{key}") is not None
            and not is_config_secret(f"{NAMESPACE}:{key}")
        ]
        if plain:
            raise ConfigError(
                [
                    f"{display}: field '{key}': a secret in plain text; set it with "
                    f"`pulumi config set --secret {NAMESPACE}:{key} ...`"
                    for key in plain
                ]
            )
    return stack_settings(raw, stack, display)


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


def main(root: Path | None = None) -> None:
    config = pulumi.Config(NAMESPACE)
    stack = stack_config(config, pulumi.get_stack())
    resources = compile_stack(load_catalog(root or find_project_root()), stack)
    connection = PrefectConnection(
        str(stack.prefect_api_url),
        config.get_secret("prefectApiKey"),
        config.get_secret(AUTH_STRING_KEY),
    )

    oncall: PagerDutyOnCall | None = None
    if stack.pagerduty.enabled:
        oncall = PagerDutyOnCall(
            "pagerduty",
            stack.environment,
            stack.pagerduty,
            config.require_secret("pagerdutyToken"),
            protect=stack.protect,
        )
    pools = [
        WorkPool(f"work-pool-{p.name}", p, connection, protect=stack.protect)
        for p in resources.work_pools
    ]
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
