"""`apply` with more managed automations than one page of Prefect's API (200), on a real
server: every listing reads all pages, so a re-apply writes nothing, prune removes exactly
the automations whose rules left, and duplicates left by an earlier version are removed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.events.schemas.automations import AutomationCore

from devtools.receivers import Receivers
from devtools.stack_tree import add_stack, write_generated_rules
from pricecheck_alerts import naming
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import copy_config, load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack, managed_automations
from pricecheck_alerts.provision.client import prefect_client

STACK = "scaletest"
GENERATED = 450  # with the real rules: well over two pages of 200


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, project_root: Path) -> Path:
    """The real config plus a stack `scaletest` (the local stack's settings under another
    environment, so its automations never meet the other tests' ones)."""
    root = tmp_path_factory.mktemp("scale-tree")
    copy_config(project_root, root)
    add_stack(project_root, root, STACK)  # its secrets come from `destinations`
    return root


def destinations(receivers: Receivers) -> dict[str, str]:
    """The stack's destinations and secrets, from the environment as `apply` reads them."""
    return {**receivers.urls(), "PRICECHECK_PAGERDUTY_ROUTING_KEY": "s" * 32}


def compiled(tree: Path, receivers: Receivers) -> StackResources:
    return compile_stack(load_catalog(tree), load_stack(tree, STACK, destinations(receivers)))


@pytest.fixture(scope="module")
def secrets(tree: Path, receivers: Receivers) -> dict[str, str]:
    return resolve_secrets(tree, STACK, destinations(receivers))


@pytest.fixture(scope="module")
def provisioned(
    tree: Path, receivers: Receivers, secrets: dict[str, str], prefect_server: object
) -> Iterator[StackResources]:
    write_generated_rules(tree, GENERATED, STACK)
    resources = compiled(tree, receivers)
    report = apply_stack(resources, secrets)
    assert report.counts[("automation", "created")] == len(resources.automations)
    yield resources
    write_generated_rules(tree, 0, STACK)
    apply_stack(compiled(tree, receivers), secrets)


def test_every_managed_automation_is_seen(provisioned: StackResources) -> None:
    managed = managed_automations(STACK)
    assert len(provisioned.automations) > 2 * 200
    assert set(managed) == {a.name for a in provisioned.automations}
    assert all(len(ids) == 1 for ids in managed.values())


def test_reapply_writes_nothing_and_creates_no_duplicate(
    provisioned: StackResources, secrets: dict[str, str]
) -> None:
    report = apply_stack(provisioned, secrets)
    assert report.writes == 0, report.lines()
    assert len(managed_automations(STACK)) == len(provisioned.automations)


def test_duplicates_from_an_earlier_version_are_removed(
    provisioned: StackResources, secrets: dict[str, str]
) -> None:
    """The earlier one-page apply created copies under the same managed name: apply keeps
    one of each and says so."""
    victims = [a.name for a in provisioned.automations][-3:]  # on the last page
    ids = managed_automations(STACK)
    with prefect_client() as client:
        for name in victims:
            [automation_id] = ids[name]
            copy = client.read_automation(automation_id)
            assert copy is not None
            fields = AutomationCore.model_fields
            client.create_automation(
                AutomationCore.model_validate(
                    {k: v for k, v in copy.model_dump().items() if k in fields}
                )
            )
    assert sum(len(v) for v in managed_automations(STACK).values()) == len(ids) + 3
    report = apply_stack(provisioned, secrets)
    assert report.counts[("automation", "duplicate deleted")] == 3
    assert report.writes == 3
    after = managed_automations(STACK)
    assert all(len(v) == 1 for v in after.values()) and len(after) == len(ids)


def test_prune_removes_exactly_what_left(
    provisioned: StackResources,
    tree: Path,
    receivers: Receivers,
    secrets: dict[str, str],
) -> None:
    write_generated_rules(tree, GENERATED - 120, STACK)
    fewer = compiled(tree, receivers)
    report = apply_stack(fewer, secrets)
    assert report.counts[("automation", "deleted")] == 120
    assert report.counts[("automation", "created")] == 0
    assert set(managed_automations(STACK)) == {a.name for a in fewer.automations}
    assert naming.automation_name(STACK, "generated-00449") not in managed_automations(STACK)
