"""Fixtures for the alert-engine tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def tree(tmp_path: Path, project_root: Path) -> Path:
    """A copy of the real alerting config (automations/ and the stack files) to break."""
    shutil.copytree(project_root / "automations", tmp_path / "automations")
    (tmp_path / "infra").mkdir()
    for stack_file in (project_root / "infra").glob("Pulumi.*.yaml"):
        shutil.copy(stack_file, tmp_path / "infra" / stack_file.name)
    return tmp_path
