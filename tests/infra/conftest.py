"""Fixtures of the infra tests: mocked program runs per stack (see `harness`)."""

from __future__ import annotations

import pytest

from .harness import StackRun, run_stack


@pytest.fixture(scope="module")
def stack_runs() -> dict[str, StackRun]:
    """Each stack's program run once per module (they are read-only for the tests)."""
    patch = pytest.MonkeyPatch()
    try:
        return {stack: run_stack(stack, patch) for stack in ("local", "staging", "prod")}
    finally:
        patch.undo()
