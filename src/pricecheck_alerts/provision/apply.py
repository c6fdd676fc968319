"""Reconcile a compiled stack against the Prefect server in PREFECT_API_URL, by name.

For the `local` stack (and quick experiments): `pulumi up` is how staging and prod are
provisioned, through the same `provision` code. Idempotent: a second apply writes
nothing. Managed automations (tagged `managed-by:pricecheck-alerts` and `stack:<name>`)
that left the rules are deleted; anything else on the server is never touched.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.sorting import AutomationSort
from prefect.events.schemas.automations import Automation

from pricecheck_alerts import naming
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import ConfigError
from pricecheck_alerts.config.stacks import secret_env_var
from pricecheck_alerts.notify import ALERT_BLOCKS
from pricecheck_alerts.provision import (
    Automations,
    BlockDocuments,
    ConcurrencyLimits,
    PrefectResource,
    Variables,
    WorkPools,
)
from pricecheck_alerts.provision.client import all_pages, prefect_client


@dataclass
class ApplyReport:
    """What an apply did, per kind and outcome: `counts[(kind, outcome)]`."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Updated automations whose open windows the server restarted (Automations.has_windows).
    restarted_windows: list[str] = field(default_factory=list)

    def record(self, kind: str, outcome: str) -> None:
        self.counts[(kind, outcome)] += 1

    @property
    def writes(self) -> int:
        return sum(n for (_, outcome), n in self.counts.items() if outcome != "unchanged")

    def lines(self) -> list[str]:
        return [
            f"{kind:<18} {outcome:<10} {n}" for (kind, outcome), n in sorted(self.counts.items())
        ]


def upsert(
    resource: PrefectResource,
    existing_id: str | None,
    inputs: dict[str, Any],
    report: ApplyReport,
    actual: dict[str, Any] | None = None,
) -> str:
    """Create, update or leave one resource so that the server holds `inputs`; `actual` is
    what the server has when the caller already listed it (saves a read)."""
    if existing_id is None:
        report.record(resource.kind, "created")
        return resource.create(inputs)
    changed = resource.differs(inputs, actual or resource.read(existing_id))
    if not changed:
        report.record(resource.kind, "unchanged")
        return existing_id
    if set(changed) & set(resource.replace_keys()):
        resource.delete(existing_id)
        report.record(resource.kind, "replaced")
        return resource.create(inputs)
    report.record(resource.kind, "updated")
    return resource.update(existing_id, inputs)


def apply_stack(
    resources: StackResources, secrets: dict[str, str], api_url: str | None = None
) -> ApplyReport:
    """Provision `resources`; `secrets` maps secret config keys to values. One client (one
    connection pool, one CSRF token) serves the whole run."""
    with prefect_client(api_url) as client:
        return _apply(resources, secrets, client)


def _apply(
    resources: StackResources, secrets: dict[str, str], client: SyncPrefectClient
) -> ApplyReport:
    report = ApplyReport()
    missing = sorted(
        {key for b in resources.blocks for key in b.secret_inputs.values()} - set(secrets)
    )
    if missing:
        raise ConfigError(
            [f"secret '{key}' has no value: set {secret_env_var(key)}" for key in missing]
        )

    pools = WorkPools(client=client)
    for pool in resources.work_pools:
        upsert(pools, pools.find(pool.name), pool.inputs(), report)

    blocks = BlockDocuments(client=client)
    block_ids: dict[str, str] = {}
    for block in resources.blocks:
        existing = blocks.find(block.name, block.block_type_slug)
        block_ids[block.name] = upsert(blocks, existing, block.inputs(secrets), report)

    variables = Variables(client=client)
    for variable in resources.variables:
        upsert(variables, variables.find(variable.name), variable.inputs(), report)

    limits = ConcurrencyLimits(client=client)
    for limit in resources.concurrency_limits:
        upsert(limits, limits.find(limit.name), limit.inputs(), report)

    automations = Automations(client=client)
    managed: dict[str, Automation] = {}
    for name, copies in _managed(client, resources.stack).items():
        managed[name] = copies[0]
        for duplicate in copies[1:]:  # each copy would send every alert once more
            automations.delete(str(duplicate.id))
            report.record(automations.kind, "duplicate deleted")
    for spec in resources.automations:
        body = spec.inputs(block_ids)
        found = managed.pop(spec.name, None)
        existing, actual = (str(found.id), automations.as_inputs(found)) if found else (None, None)
        before = report.counts[(automations.kind, "updated")]
        upsert(automations, existing, body, report, actual)
        if report.counts[(automations.kind, "updated")] > before and automations.has_windows(body):
            report.restarted_windows.append(spec.name)
    for stale in managed.values():
        automations.delete(str(stale.id))
        report.record(automations.kind, "deleted")
    # Blocks after automations: nothing may still point at a block that goes.
    for stale_id in stale_blocks(blocks, resources, block_ids):
        blocks.delete(stale_id)
        report.record(blocks.kind, "deleted")
    return report


def stale_blocks(
    blocks: BlockDocuments, resources: StackResources, kept: dict[str, str]
) -> list[str]:
    """Ids of this stack's alert blocks (our block types, named for its environment) that
    the rules no longer use: a removed channel's secret does not linger on the server."""
    prefix = naming.block_prefix(resources.environment)
    return [
        block_id
        for slug in (block.get_block_type_slug() for block in ALERT_BLOCKS)
        for name, block_id in blocks.of_type(slug).items()
        if name.startswith(prefix) and name not in kept
    ]


def managed_automations(stack: str, api_url: str | None = None) -> dict[str, list[str]]:
    """Name → ids of the automations this tool manages for `stack`, every page read. More
    than one id under a name is a duplicate (left by an earlier version's re-applies)."""
    with prefect_client(api_url) as client:
        return {
            name: [str(a.id) for a in copies] for name, copies in _managed(client, stack).items()
        }


def _managed(client: SyncPrefectClient, stack: str) -> dict[str, list[Automation]]:
    wanted = {naming.MANAGED_TAG, naming.stack_tag(stack)}
    automations = all_pages(
        lambda offset, limit: client.read_automations(
            sort=AutomationSort.NAME_ASC, offset=offset, limit=limit
        )
    )
    managed: dict[str, list[Automation]] = {}
    seen: set[str] = set()
    for automation in automations:
        # Pages are ordered by name only: copies under one name may straddle a page
        # boundary and be read twice. Count each id once, so a "duplicate" is never the
        # copy being kept.
        if wanted <= set(automation.tags) and str(automation.id) not in seen:
            seen.add(str(automation.id))
            managed.setdefault(automation.name, []).append(automation)
    return managed
