"""Session-wide real parts: one local Prefect server and one set of receivers per session.

A Prefect server costs ~10-20 s to start, so every test that needs one shares this one.
Tests that use the server get its API URL through the environment, like any Prefect client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.logging.handlers import APILogWorker

from devtools.local_server import LocalPrefectServer
from devtools.receivers import Receivers
from pricecheck_alerts.config.loader import copy_config

ROOT = Path(__file__).resolve().parents[1]
# Fixtures that start or use a real Prefect server: the open session one, and the server
# with basic auth of tests/auth (one per module).
SERVER_FIXTURES = frozenset({"prefect_server", "auth_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the Prefect server (directly or through another fixture) is an
    integration test; the rest are the fast pure ones (`make test-fast`)."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    """A real `prefect server start` (SQLite), with this process pointed at it."""
    server = LocalPrefectServer(home=tmp_path_factory.mktemp("prefect-home")).start()
    try:
        with server.as_current():
            yield server
            # Ship the logs this process still holds while the server can take them (as
            # Prefect's own test harness does before it stops its server).
            with contextlib.suppress(RuntimeError):
                APILogWorker.instance().drain()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def receivers() -> Iterator[Receivers]:
    """Local Slack / PagerDuty / SMTP receivers shared by the session."""
    running = Receivers().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def tree(tmp_path: Path, project_root: Path) -> Path:
    """A copy of what the config loaders read (automations/, the stack files, prefect.yaml,
    the flows and the runbooks) to break."""
    copy_config(project_root, tmp_path)
    return tmp_path
