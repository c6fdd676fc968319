"""Reconcile a compiled stack against the Prefect server in PREFECT_API_URL, by name.

For the `local` stack (and quick experiments): `pulumi up` is how staging and prod are
provisioned, through the same `provision` code. Idempotent: a second apply writes
nothing. Managed automations and variables (tagged `managed-by:pricecheck-alerts` and
`stack:<name>`) that left the rules or the SLAs are deleted; anything else on the server is
never touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
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


@dataclass(frozen=True)
class Change:
    """One write an apply made (or, dry, would make): names and changed fields, never
    values (a block's fields hold secrets)."""

    kind: str
    name: str
    outcome: str
    fields: tuple[str, ...] = ()
    restarts_windows: bool = False

    def line(self) -> str:
        text = f"{self.outcome:<17} {self.kind:<18} {self.name}"
        if self.fields:
            text += f" ({', '.join(self.fields)})"
        if self.restarts_windows:
            text += "  ! restarts its open windows"
        return text


@dataclass
class ApplyReport:
    """What an apply did (or, with `dry_run`, would do), per kind and outcome:
    `counts[(kind, outcome)]`, and each write by name in `changes`."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Updated automations whose open windows the server restarted (Automations.has_windows).
    restarted_windows: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False
    # Called with each write as it happens: progress for a long apply.
    on_change: Callable[[Change], None] | None = None

    def record(
        self,
        kind: str,
        outcome: str,
        name: str = "",
        fields: tuple[str, ...] = (),
        restarts_windows: bool = False,
    ) -> None:
        self.counts[(kind, outcome)] += 1
        if outcome == "unchanged":
            return
        change = Change(kind, name, outcome, fields, restarts_windows)
        self.changes.append(change)
        if restarts_windows:
            self.restarted_windows.append(name)
        if self.on_change is not None:
            self.on_change(change)

    @property
    def writes(self) -> int:
        return sum(n for (_, outcome), n in self.counts.items() if outcome != "unchanged")

    def lines(self) -> list[str]:
        return [
            f"{kind:<18} {outcome:<10} {n}" for (kind, outcome), n in sorted(self.counts.items())
        ]


def upsert(
    resource: PrefectResource,
    name: str,
    existing_id: str | None,
    inputs: dict[str, Any],
    report: ApplyReport,
    actual: dict[str, Any] | None = None,
    windows: bool = False,
) -> str:
    """Create, update or leave one resource so that the server holds `inputs`; `actual` is
    what the server has when the caller already listed it (saves a read). `windows`: an
    update restarts the resource's open windows (flagged). A dry run records and writes
    nothing (a resource it would create gets a placeholder id)."""
    if existing_id is None:
        report.record(resource.kind, "created", name)
        return f"(new {name})" if report.dry_run else resource.create(inputs)
    changed = tuple(resource.differs(inputs, actual or resource.read(existing_id)))
    if not changed:
        report.record(resource.kind, "unchanged", name)
        return existing_id
    if set(changed) & set(resource.replace_keys()):
        report.record(resource.kind, "replaced", name, changed)
        if report.dry_run:
            return existing_id
        resource.delete(existing_id)
        return resource.create(inputs)
    report.record(resource.kind, "updated", name, changed, restarts_windows=windows)
    return existing_id if report.dry_run else resource.update(existing_id, inputs)


def _delete(
    resource: PrefectResource,
    name: str,
    resource_id: str,
    report: ApplyReport,
    outcome: str = "deleted",
) -> None:
    report.record(resource.kind, outcome, name)
    if not report.dry_run:
        resource.delete(resource_id)


def apply_stack(
    resources: StackResources,
    secrets: dict[str, str],
    api_url: str | None = None,
    dry_run: bool = False,
    on_change: Callable[[Change], None] | None = None,
) -> ApplyReport:
    """Provision `resources` (with `dry_run`, only say what that would change); `secrets`
    maps secret config keys to values. One client (one connection pool, one CSRF token)
    serves the whole run."""
    report = ApplyReport(dry_run=dry_run, on_change=on_change)
    with prefect_client(api_url) as client:
        return _apply(resources, secrets, client, report)


def _apply(
    resources: StackResources,
    secrets: dict[str, str],
    client: SyncPrefectClient,
    report: ApplyReport,
) -> ApplyReport:
    missing = sorted(
        {key for b in resources.blocks for key in b.secret_inputs.values()} - set(secrets)
    )
    if missing:
        raise ConfigError(
            [f"secret '{key}' has no value: set {secret_env_var(key)}" for key in missing]
        )

    pools = WorkPools(client=client)
    for pool in resources.work_pools:
        upsert(pools, pool.name, pools.find(pool.name), pool.inputs(), report)

    blocks = BlockDocuments(client=client)
    block_ids: dict[str, str] = {}
    for block in resources.blocks:
        existing = blocks.find(block.name, block.block_type_slug)
        block_ids[block.name] = upsert(blocks, block.name, existing, block.inputs(secrets), report)

    variables = Variables(client=client)
    held = variables.tagged([naming.MANAGED_TAG, naming.stack_tag(resources.stack)])
    for variable in resources.variables:
        actual = held.pop(variable.name, None)
        # Not listed under our tags (created by hand, or before they were set): by name.
        existing = variable.name if actual is not None else variables.find(variable.name)
        upsert(variables, variable.name, existing, variable.inputs(), report, actual)
    for gone in held:  # the SLA of a deployment that left slas.yaml
        _delete(variables, gone, gone, report)

    limits = ConcurrencyLimits(client=client)
    for limit in resources.concurrency_limits:
        upsert(limits, limit.name, limits.find(limit.name), limit.inputs(), report)

    automations = Automations(client=client)
    managed: dict[str, Automation] = {}
    for name, copies in _managed(client, resources.stack).items():
        managed[name] = copies[0]
        for duplicate in copies[1:]:  # each copy would send every alert once more
            _delete(automations, name, str(duplicate.id), report, "duplicate deleted")
    for spec in resources.automations:
        body = spec.inputs(block_ids)
        found = managed.pop(spec.name, None)
        existing, actual = (str(found.id), automations.as_inputs(found)) if found else (None, None)
        windows = automations.has_windows(body)
        upsert(automations, spec.name, existing, body, report, actual, windows)
    for stale in managed.values():
        _delete(automations, stale.name, str(stale.id), report)
    # Blocks after automations: nothing may still point at a block that goes.
    for stale_name, stale_id in stale_blocks(blocks, resources, block_ids):
        _delete(blocks, stale_name, stale_id, report)
    return report


def stale_blocks(
    blocks: BlockDocuments, resources: StackResources, kept: dict[str, str]
) -> list[tuple[str, str]]:
    """(name, id) of this stack's alert blocks (our block types, named for its environment)
    that the rules no longer use: a removed channel's secret does not linger on the server."""
    prefix = naming.block_prefix(resources.environment)
    return [
        (name, block_id)
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
