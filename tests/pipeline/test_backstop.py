"""The alert backstop (flows/backstop.py): which runs lost their state event, the event it
rebuilds, and, on the session's real server, a run whose Failed state was written while the
event path was down is found, re-emitted once and alerted on every critical channel."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import EventFilter, EventIDFilter
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings
from prefect.states import Failed, Running

from devtools.crash import FailedRun, alerts_for, stored_event_ids
from devtools.local_server import LocalPrefectServer
from devtools.receivers import Receivers
from devtools.scenarios import deploy_drills
from flows.backstop import (
    REPLAYED_BY,
    REPLAYED_BY_LABEL,
    STATE_MESSAGE_MAX,
    EndedRun,
    RunContext,
    alert_backstop,
    find_and_replay,
    runs_missing_state_event,
    state_event,
)
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=60)
LOOKBACK = timedelta(minutes=60)
# The same key as the end-to-end module: both provision the local stack on the session server.
ROUTING_KEY = "e2e0routing0key00000000000000000"


def ended(minutes_ago: float, state: str = "Failed") -> EndedRun:
    return EndedRun(uuid4(), uuid4(), state, NOW - timedelta(minutes=minutes_ago))


# --- which runs lost their event (pure) ---------------------------------------------------


def test_only_runs_whose_event_is_absent_are_missing() -> None:
    lost, kept = ended(5), ended(6)
    missing = runs_missing_state_event([lost, kept], {kept.state_id}, NOW, SETTLE, LOOKBACK)
    assert missing == [lost]


def test_every_alerting_state_counts_and_no_other() -> None:
    runs = [ended(5, s) for s in ("Failed", "Crashed", "TimedOut", "Cancelled", "Completed")]
    missing = runs_missing_state_event(runs, set(), NOW, SETTLE, LOOKBACK)
    assert sorted(r.state_name for r in missing) == ["Crashed", "Failed", "TimedOut"]


def test_a_run_too_young_or_too_old_is_left_alone() -> None:
    """Younger than `settle`: its event may still be on its way to the database. Older than
    `lookback`: a re-emission would no longer be recognised as already handled."""
    edges = [ended(0.5), ended(1), ended(60), ended(61)]
    missing = runs_missing_state_event(edges, set(), NOW, SETTLE, LOOKBACK)
    assert missing == [edges[2], edges[1]]  # both bounds inclusive, oldest first


def test_nothing_is_missing_when_every_event_is_stored() -> None:
    runs = [ended(m) for m in (2, 10, 30)]
    stored = {r.state_id for r in runs}
    assert runs_missing_state_event(runs, stored, NOW, SETTLE, LOOKBACK) == []


def test_the_states_to_check_can_be_narrowed() -> None:
    runs = [ended(5, "Failed"), ended(5, "Crashed")]
    missing = runs_missing_state_event(runs, set(), NOW, SETTLE, LOOKBACK, states=("Crashed",))
    assert [r.state_name for r in missing] == ["Crashed"]


# --- the rebuilt event (pure) --------------------------------------------------------------


def _run(tags: list[str]) -> tuple[FlowRun, Running, Failed]:
    running = Running()
    failed = Failed(message="x" * (STATE_MESSAGE_MAX + 10))
    run = FlowRun(id=uuid4(), name="brave-otter", flow_id=uuid4(), tags=tags, run_count=2)
    return run, running, failed


def test_the_rebuilt_event_is_the_servers_state_event() -> None:
    run, running, failed = _run(["env:local", "pricechecktn"])
    flow_id, deployment_id, pool_id, queue_id = uuid4(), uuid4(), uuid4(), uuid4()
    context = RunContext(
        flow={"id": flow_id, "name": "drill-flaky", "tags": []},
        deployment={"id": deployment_id, "name": "drill-flaky", "tags": ["pricechecktn"]},
        work_queue={"id": queue_id, "name": "default", "tags": []},
        work_pool={"id": pool_id, "name": "pricechecktn-local", "tags": [], "type": "process"},
        creator={
            "prefect.resource.id": f"prefect.deployment.{deployment_id}",
            "prefect.resource.role": "creator",
        },
    )
    event = state_event(run, failed, running, context)

    assert event.id == failed.id  # the id Prefect de-duplicates on
    assert event.occurred == failed.timestamp
    assert event.event == "prefect.flow-run.Failed"
    assert event.follows is None
    labels = dict(event.resource.items())
    assert labels["prefect.resource.id"] == f"prefect.flow-run.{run.id}"
    assert labels["prefect.state-name"] == "Failed"
    assert labels["prefect.state-type"] == "FAILED"
    assert labels["prefect.run-count"] == "2"
    assert len(labels["prefect.state-message"]) == STATE_MESSAGE_MAX
    assert labels[REPLAYED_BY_LABEL] == REPLAYED_BY
    related = [dict(r.items()) for r in event.related]
    by_role = {
        r["prefect.resource.role"]: r for r in related if r["prefect.resource.role"] != "tag"
    }
    assert by_role["deployment"]["prefect.resource.id"] == f"prefect.deployment.{deployment_id}"
    assert by_role["work-pool"]["prefect.work-pool.type"] == "process"
    assert by_role["creator"]["prefect.resource.id"] == f"prefect.deployment.{deployment_id}"
    assert [r["prefect.resource.id"] for r in related if r["prefect.resource.role"] == "tag"] == [
        "prefect.tag.env:local",
        "prefect.tag.pricechecktn",
    ]
    assert event.payload["intended"] == {"from": "RUNNING", "to": "FAILED"}
    assert event.payload["initial_state"] == {"type": "RUNNING", "name": "Running"}


def test_a_run_without_deployment_or_previous_state_still_gets_an_event() -> None:
    run, _, failed = _run([])
    event = state_event(run, failed, None, RunContext(flow={"id": uuid4(), "name": "f"}))
    assert [r.role for r in event.related] == ["flow"]
    assert event.payload["intended"] == {"from": None, "to": "FAILED"}
    assert event.payload["initial_state"] is None


# --- on the session's real server ----------------------------------------------------------


@pytest.fixture(scope="module")
def provisioned(
    prefect_server: LocalPrefectServer, receivers: Receivers, project_root: Path
) -> LocalPrefectServer:
    environ = {
        **receivers.urls(),
        "PRICECHECK_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PRICECHECK_PREFECT_UI_URL": prefect_server.url,
    }
    resources = compile_stack(
        load_catalog(project_root), load_stack(project_root, "local", environ)
    )
    apply_stack(resources, resolve_secrets(project_root, "local", environ))
    deploy_drills(project_root, resources.work_pools[0].name)
    return prefect_server


def _running_drill_run() -> FlowRun:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("drill-flaky/drill-flaky")
        run = client.create_flow_run_from_deployment(deployment.id)
        client.set_flow_run_state(run.id, Running(), force=True)
        return client.read_flow_run(run.id)


async def _fail_with_event_path_down(database_url: str, flow_run_id: UUID, message: str) -> UUID:
    """Write the Failed state the way the server does (its orchestration, on its database),
    from this process, whose in-memory broker has no consumer: the state is committed and
    its event goes nowhere, as when the server dies before its event path runs."""
    from prefect.server import models
    from prefect.server.database import provide_database_interface
    from prefect.server.schemas.states import Failed as ServerFailed

    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: database_url}):
        db = provide_database_interface()
        async with db.session_context(begin_transaction=True) as session:
            result = await models.flow_runs.set_flow_run_state(
                session=session,
                flow_run_id=flow_run_id,
                state=ServerFailed(message=message),
                force=True,
            )
        await (await db.engine()).dispose()
    assert result.state is not None
    return result.state.id


def test_a_failure_whose_event_was_lost_is_replayed_once_and_alerted(
    provisioned: LocalPrefectServer, receivers: Receivers
) -> None:
    run = _running_drill_run()
    state_id = asyncio.run(
        _fail_with_event_path_down(
            provisioned.env["PREFECT_API_DATABASE_CONNECTION_URL"], run.id, "lost in a crash"
        )
    )
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run.id).state_name == "Failed"
    failed = FailedRun(run.id, state_id, run.name, time.monotonic())
    time.sleep(6)  # longer than the persister's flush interval: the event is not coming
    assert stored_event_ids([state_id]) == set()
    assert alerts_for(failed, receivers.store.all()) == 0

    replayed = asyncio.run(find_and_replay(settle=timedelta(0), lookback=timedelta(minutes=10)))
    assert [e.id for e in replayed if e.resource.id == f"prefect.flow-run.{run.id}"] == [state_id]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and alerts_for(failed, receivers.store.all()) < 3:
        time.sleep(0.5)
    while time.monotonic() < deadline and not stored_event_ids([state_id]):
        time.sleep(0.5)
    assert stored_event_ids([state_id]) == {state_id}

    # Stored now: the next pass (here the flow itself) leaves it alone.
    again = asyncio.run(find_and_replay(settle=timedelta(0), lookback=timedelta(minutes=10)))
    assert state_id not in {e.id for e in again}
    assert isinstance(asyncio.run(alert_backstop(lookback_minutes=10, settle_seconds=0)), int)

    time.sleep(3)  # a duplicate would show up meanwhile
    deliveries = [d for d in receivers.store.all() if str(run.id) in str(d.body)]
    assert sorted(d.channel for d in deliveries) == ["email", "pagerduty", "slack-critical"]
    assert alerts_for(failed, deliveries) == 3
    page = next(d.body for d in deliveries if d.channel == "pagerduty")
    assert "lost in a crash" in page["payload"]["summary"]


def test_the_rebuilt_event_matches_what_the_server_emitted(provisioned: LocalPrefectServer) -> None:
    """A failure through the normal path: the backstop's event for it equals the server's
    own stored event, label for label (the replay label aside), so the same automations
    match it and their templates see the same run, flow, deployment and tags."""
    run = _running_drill_run()
    with get_client(sync_client=True) as client:
        result = client.set_flow_run_state(run.id, Failed(message="normal path"), force=True)
        assert result.state is not None
        deadline = time.monotonic() + 30
        stored = []
        while time.monotonic() < deadline and not stored:
            stored = client.read_events(
                EventFilter(id=EventIDFilter(id=[result.state.id])), limit=1
            ).events
            time.sleep(0.5)
        assert stored, "the server never stored the Failed event"
        fresh = client.read_flow_run(run.id)

    async def rebuild() -> object:
        from flows.backstop import previous_state, read_context

        async with get_client() as async_client:
            assert fresh.state is not None
            return state_event(
                fresh,
                fresh.state,
                await previous_state(async_client, fresh),
                await read_context(async_client, fresh),
            )

    rebuilt = asyncio.run(rebuild())
    original = stored[0]
    assert rebuilt.id == original.id  # type: ignore[attr-defined]
    assert rebuilt.event == original.event  # type: ignore[attr-defined]
    labels = dict(rebuilt.resource.items())  # type: ignore[attr-defined]
    labels.pop(REPLAYED_BY_LABEL)
    assert labels == dict(original.resource.items())
    assert [dict(r.items()) for r in rebuilt.related] == [  # type: ignore[attr-defined]
        dict(r.items()) for r in original.related
    ]
    assert rebuilt.payload == original.payload  # type: ignore[attr-defined]
