"""Fixtures for the pipeline tests: fixture sites, an isolated state folder, short retries.

The Prefect server is the session's shared one (tests/conftest.py); this process is pointed
at it with `temporary_settings` so Prefect's settings context sees it whatever was imported
first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.fixtures.shops import FixtureSites
from pricecheck_alerts.events import read_events

FAST_ENV = {
    "PRICECHECK_SCRAPE_RETRIES": "1",
    "PRICECHECK_SCRAPE_RETRY_DELAY_S": "0",
    "PRICECHECK_SITE_TIMEOUT_S": "1",
}


@pytest.fixture(scope="session")
def prefect_api(prefect_server: Any) -> Iterator[str]:
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server.api_url


@pytest.fixture(scope="session")
def pipeline_env(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Short retries/timeouts and a private state folder for the whole session."""
    state = tmp_path_factory.mktemp("pipeline-state")
    updates = {**FAST_ENV, "PRICECHECK_STATE_DIR": str(state)}
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield state
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def session_sites() -> Iterator[FixtureSites]:
    sites = FixtureSites(seed=1, products=400).start()
    try:
        yield sites
    finally:
        sites.stop()


@pytest.fixture
def sites(session_sites: FixtureSites) -> Iterator[FixtureSites]:
    """The fixture sites, healthy at the start and the end of each test."""
    session_sites.reset()
    yield session_sites
    session_sites.reset()


@pytest.fixture
def tight_slas(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A copy of automations/slas.yaml under a temporary config root the flows will read;
    tests change values in the returned dict and call `write()`."""
    data = yaml.safe_load((project_root / "automations" / "slas.yaml").read_text())
    path = tmp_path / "automations" / "slas.yaml"
    path.parent.mkdir()

    def write() -> None:
        path.write_text(yaml.safe_dump(data))

    write()
    monkeypatch.setenv("PRICECHECK_CONFIG_ROOT", str(tmp_path))
    return {"data": data, "write": write}


def signals_of_run(
    flow_run_id: UUID, since: datetime, sentinel_task: str | None, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The `pricechecktn.*` events related to a flow run.

    Waits until the Completed event of `sentinel_task` (the run's last checking task)
    is on the server: events from one client arrive in order, so every signal emitted
    before it has arrived too.
    """
    related = [f"prefect.flow-run.{flow_run_id}"]
    deadline = time.monotonic() + timeout
    if sentinel_task:
        while time.monotonic() < deadline:
            done = read_events(since, names=["prefect.task-run.Completed"], related_ids=related)
            names = [e["resource"].get("prefect.resource.name", "") for e in done]
            if any(n.startswith(sentinel_task) for n in names):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"no Completed event for {sentinel_task} within {timeout}s")
    return read_events(since, prefixes=["pricechecktn."], related_ids=related)


def wait_for_events(
    since: datetime, names: list[str], count: int = 1, timeout: float = 20.0, **filters: Any
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = read_events(since, names=names, **filters)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def task_runs_of(flow_run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )


def just_before() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=2)
