"""A Prefect server on PostgreSQL with Redis messaging killed (SIGKILL) right after runs
fail: every failure alert still arrives once the server is back, and the Failed events the
event persister had not yet written are put back in the history by the alert backstop
without alerting a second time.

Why both halves hold on this setup and not on the default one: the triggers and actions
consumers acknowledge a Redis stream message only after handling it, so a killed server's
unfinished work is claimed again after a restart; the event persister, though, acknowledges
on receipt and writes in batches every 5 s, so the history can miss what the alerts did not.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379: `make test-scale`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from devtools.crash import alerts_for, crash_after_failures, failure_alerts, stored_event_ids
from devtools.local_server import LocalPrefectServer, scale_backend
from devtools.receivers import Receivers
from devtools.scenarios import deploy_drills
from flows.backstop import find_and_replay
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack

pytestmark = pytest.mark.scale
ROUTING_KEY = "crash0routing0key000000000000000"
# Its own Redis database: test_postgres_redis flushes database 7 when it starts.
REDIS_URL = "redis://127.0.0.1:6379/8"
# Right after the Failed commit, inside the persister's 5 s flush interval, and past it.
DELAYS = (0.0, 1.0, 6.0)


@pytest.fixture(scope="module")
def crash_server(
    tmp_path_factory: pytest.TempPathFactory, receivers: Receivers, project_root: Path
) -> Iterator[LocalPrefectServer]:
    backend = ExitStack()
    database_url, messaging = backend.enter_context(scale_backend("prefect_crash", REDIS_URL))
    server = LocalPrefectServer(
        home=tmp_path_factory.mktemp("prefect-crash"),
        database_url=database_url,
        extra_env=messaging,
    )
    try:
        server.start(timeout=120)
        with server.as_current():
            environ = {
                **receivers.urls(),
                "PRICECHECK_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
                "PRICECHECK_PREFECT_UI_URL": server.url,
            }
            resources = compile_stack(
                load_catalog(project_root), load_stack(project_root, "local", environ)
            )
            apply_stack(resources, resolve_secrets(project_root, "local", environ))
            deploy_drills(project_root, resources.work_pools[0].name)
            yield server
    finally:
        server.stop()
        backend.close()


@pytest.mark.timeout(900)
def test_every_alert_arrives_after_a_sigkill_and_the_backstop_repairs_the_history(
    crash_server: LocalPrefectServer, receivers: Receivers
) -> None:
    failed = []
    for delay in DELAYS:
        outcome, runs = crash_after_failures(crash_server, receivers.store.all, delay)
        failed += runs
        # Every run alerted on every critical channel, whenever the server died.
        assert outcome.alerts_delivered >= outcome.alerts_expected, outcome
        assert all(run.alerts_delivered >= 3 for run in outcome.per_run), outcome

    # A server killed while its triggers handled an event handles it again once Prefect's
    # in-flight mark on it expires (16 s): the alert can come twice, never zero times.
    # Let those repeats land before counting, so the backstop is judged on its own.
    time.sleep(20)
    lost = [run for run in failed if run.state_id not in stored_event_ids([run.state_id])]
    alerts_before = failure_alerts(receivers.store.all())
    assert lost, "no Failed event was lost: every kill came after a persister flush"

    # The messaging cache's de-duplication keys live 5 minutes in Redis and would drop a
    # re-emission this early (the 10-minute schedule re-emits after them): expire them
    # now rather than wait. The triggers' record of processed events (15 minutes) stays.
    client = redis.Redis.from_url(REDIS_URL)
    for run in lost:
        client.delete(f"message:messaging-cache:{run.state_id}")
    replayed = asyncio.run(find_and_replay(settle=timedelta(0), lookback=timedelta(minutes=30)))
    assert {e.id for e in replayed} == {run.state_id for run in lost}

    deadline = time.monotonic() + 30
    ids = [run.state_id for run in failed]
    while time.monotonic() < deadline and len(stored_event_ids(ids)) < len(ids):
        time.sleep(1)
    assert stored_event_ids(ids) == set(ids), "the history still misses a Failed event"
    time.sleep(5)  # a second alert for a replayed run would arrive meanwhile
    assert failure_alerts(receivers.store.all()) == alerts_before
    assert all(alerts_for(run, receivers.store.all()) >= 3 for run in failed)
