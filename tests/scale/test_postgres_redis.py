"""The scale path for real: a Prefect server on PostgreSQL with Redis messaging (the setup
several server replicas share) runs the same rules and delivers the same alerts.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379, so it is not
part of `make test` (which must pass on a laptop without them): `make test-scale` runs it,
and CI runs both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devtools import runs
from devtools.local_server import LocalPrefectServer, scale_backend
from devtools.receivers import Receivers
from devtools.scenarios import (
    CRITICAL,
    RESOLVED,
    Expected,
    deploy_drills,
    identify,
    wait_for_alerts,
)
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack

pytestmark = pytest.mark.scale
ROUTING_KEY = "scale0routing0key000000000000000"
REDIS_URL = "redis://127.0.0.1:6379/7"


@pytest.fixture(scope="module")
def scale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    with scale_backend("prefect_scale", REDIS_URL) as (database_url, messaging):
        server = LocalPrefectServer(
            home=tmp_path_factory.mktemp("prefect-scale"),
            database_url=database_url,
            extra_env=messaging,
        )
        try:
            server.start(timeout=120)
            with server.as_current():
                yield server
        finally:
            server.stop()


def test_failure_and_recovery_alert_on_postgres_and_redis(
    scale_server: LocalPrefectServer,
    receivers: Receivers,
    project_root: Path,
) -> None:
    environ = {
        **receivers.urls(),
        "PRICECHECK_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PRICECHECK_PREFECT_UI_URL": scale_server.url,
    }
    resources = compile_stack(
        load_catalog(project_root), load_stack(project_root, "local", environ)
    )
    apply_stack(resources, resolve_secrets(project_root, "local", environ))
    deploy_drills(project_root, resources.work_pools[0].name)
    receivers.store.clear()

    for parameters in (
        {"fail": True, "message": "disk full on the PostgreSQL path"},
        {"fail": False},
    ):
        runs.execute(runs.create_run("drill-flaky/drill-flaky", parameters).id, project_root)
    expected = Counter(
        [Expected(c, "flow-run-failed") for c in CRITICAL]
        + [Expected(c, "flow-run-failed", "resolve") for c in RESOLVED]
    )
    # Every expected alert, then a quiet spell in which a duplicate would show up.
    arrived = wait_for_alerts(receivers.store.all, expected, timeout=90, settle=3)
    assert Counter(identify(d) for d in arrived) == expected
    pages = [d.body for d in arrived if d.channel == "pagerduty"]
    assert {p["event_action"] for p in pages} == {"trigger", "resolve"}
    assert len({p["dedup_key"] for p in pages}) == 1
    assert "disk full on the PostgreSQL path" in pages[0]["payload"]["summary"]
    # the events went through Redis: the triggers service recorded them there
    assert redis.Redis.from_url(REDIS_URL).keys("triggers:seen:*")
