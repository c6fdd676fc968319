"""An apply killed half-way (after some writes) converges on the next one: what was
written is kept, the rest is written, nothing is duplicated, and a third apply writes
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devtools.receivers import Receivers
from devtools.stack_tree import add_stack
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision import Automations
from pricecheck_alerts.provision.apply import Change, apply_stack, managed_automations

STACK = "crashtest"


class Killed(Exception):
    """Stands for the process dying between two writes."""


def test_a_crash_mid_apply_converges_on_the_next_apply(
    tree: Path, prefect_server: Any, receivers: Receivers
) -> None:
    environ = {**add_stack(tree, tree, STACK), **receivers.urls()}
    environ["PRICECHECK_PAGERDUTY_ROUTING_KEY"] = "c" * 32
    resources = compile_stack(load_catalog(tree), load_stack(tree, STACK, environ))
    secrets = resolve_secrets(tree, STACK, environ)
    written: list[Change] = []

    def die_after_ten(change: Change) -> None:
        written.append(change)
        if len(written) == 10:
            raise Killed

    try:
        with pytest.raises(Killed):
            apply_stack(resources, secrets, on_change=die_after_ten)
        half = managed_automations(STACK)
        assert len(half) < len(resources.automations)

        again = apply_stack(resources, secrets)
        managed = managed_automations(STACK)
        assert set(managed) == {a.name for a in resources.automations}
        assert all(len(ids) == 1 for ids in managed.values())  # no duplicate
        created = again.counts[("automation", "created")]
        assert created == len(resources.automations) - len(half)
        assert apply_stack(resources, secrets).writes == 0
    finally:
        automations = Automations()
        for ids in managed_automations(STACK).values():
            for automation_id in ids:
                automations.delete(automation_id)
