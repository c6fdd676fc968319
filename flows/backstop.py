"""`alert_backstop`: re-emit the state event of a run that ended badly but whose event the
Prefect server lost, so the normal automations alert on it (every 10 minutes).

Why it exists: a Prefect 3.9 server publishes a run's `prefect.flow-run.<State>` event from
its orchestration code into its message broker, and everything after that (the event
history, the triggers that start the alert automations, their actions) lives in memory for
a moment. A server killed in that moment (OOM killer, SIGKILL, a node lost) has committed the
Failed state to the database but lost the event:

- in-memory messaging (the SQLite default): the event, the triggers' work and the queued
  notifications are all in the process; nothing is replayed after a restart;
- Redis messaging (the scale path): the triggers and actions consumers acknowledge a message
  only after handling it, so the alert still goes out after a restart (sometimes twice),
  but the event persister acknowledges on receipt and writes in batches (every
  PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL, 5 s, or 20 events): the event can
  be missing from the history.

What it does: list the runs that ended Failed / Crashed / TimedOut between `lookback_minutes`
and `settle_seconds` ago, look their state events up in the event history (a state event's
id is its state's id, so the lookup is exact), and emit each missing one again with the
same id, resource, related resources and payload the server would have built.

Why this does not double an alert that already went out: the re-emitted event keeps the
original id, and Prefect drops an event id it has already handled: the messaging cache
drops a second publication for 5 minutes, and the triggers skip an event they processed for
15 minutes (both in Redis on the scale path). Every 10 minutes, a run is first checked 1 to
11 minutes after it ended; a re-emission under 5 minutes is dropped and the next pass, under
15 minutes, writes it to the history while the triggers skip it. Only a backstop that did
not run for a quarter of an hour can re-alert such a run. On in-memory messaging both
records die with the process, so a run whose alerts went out before the crash but whose
event was not yet written is alerted once more (PagerDuty folds it into the same incident:
the dedup key is per deployment and rule). Once an event is in the history, the backstop
never emits it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
)
from prefect.client.schemas.objects import FlowRun, State
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.events.filters import EventFilter, EventIDFilter, EventOccurredFilter

ALERTED_STATES = ("Failed", "Crashed", "TimedOut")
# Prefect truncates a state message to this many characters in its state events.
STATE_MESSAGE_MAX = 100_000
# The label a re-emitted event carries on its resource, for whoever reads the history.
REPLAYED_BY_LABEL = "pricechecktn.replayed-by"
REPLAYED_BY = "alert-backstop"
EVENTS_PAGE = 50  # POST /events/filter answers at most 50 events
RUNS_PAGE = 200


@dataclass(frozen=True)
class EndedRun:
    """A run's current terminal state: its id is also the id of its state event."""

    flow_run_id: UUID
    state_id: UUID
    state_name: str
    ended: datetime


def runs_missing_state_event(
    runs: Iterable[EndedRun],
    stored_event_ids: frozenset[UUID] | set[UUID],
    now: datetime,
    settle: timedelta,
    lookback: timedelta,
    states: Sequence[str] = ALERTED_STATES,
) -> list[EndedRun]:
    """The runs whose `prefect.flow-run.<State>` event is not in the history, oldest first.

    Only states that alert (`states`), and only runs that ended between `lookback` and
    `settle` ago: younger runs may still have their event on its way to the database (the
    persister writes every 5 s), older ones are past the window in which a re-emitted event
    is still recognised as already handled."""
    earliest, latest = now - lookback, now - settle
    missing = [
        run
        for run in runs
        if run.state_name in states
        and earliest <= run.ended <= latest
        and run.state_id not in stored_event_ids
    ]
    return sorted(missing, key=lambda run: (run.ended, str(run.state_id)))


@dataclass(frozen=True)
class RunContext:
    """What the server's event names about a run besides the run itself (each a plain
    mapping of id, name, tags, and the work pool's type), read through the API."""

    flow: dict[str, Any]
    deployment: dict[str, Any] = field(default_factory=dict)
    work_queue: dict[str, Any] = field(default_factory=dict)
    work_pool: dict[str, Any] = field(default_factory=dict)
    task_run: dict[str, Any] = field(default_factory=dict)
    creator: dict[str, str] = field(default_factory=dict)


def _state_payload(state: State | None) -> dict[str, str] | None:
    if state is None:
        return None
    payload = {"type": state.type.value}
    if state.name:
        payload["name"] = state.name
    if state.message:
        payload["message"] = state.message[:STATE_MESSAGE_MAX]
    if state.is_paused():
        payload["pause_reschedule"] = str(state.state_details.pause_reschedule).lower()
    return payload


def state_event(run: FlowRun, state: State, previous: State | None, context: RunContext) -> Event:
    """The `prefect.flow-run.<State>` event the server built when `run` entered `state`
    (prefect.server.models.events.flow_run_state_change_event), rebuilt from the API's view
    of the run, so the same automations match it and their templates find the same run,
    flow, deployment and tags. Same id as the state; no `follows` (the run is minutes old,
    so causal ordering has nothing to wait for)."""
    related: list[dict[str, str]] = []
    tags: set[str] = set(run.tags or [])
    for kind, data in (
        ("flow", context.flow),
        ("deployment", context.deployment),
        ("work-queue", context.work_queue),
        ("work-pool", context.work_pool),
        ("task-run", context.task_run),
    ):
        if not data:
            continue
        tags |= set(data.get("tags", []))
        resource = {
            "prefect.resource.id": f"prefect.{kind}.{data['id']}",
            "prefect.resource.role": kind,
            "prefect.resource.name": data["name"],
        }
        if kind == "work-pool":
            resource["prefect.work-pool.type"] = data["type"]
        related.append(resource)
    related += [
        {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        for tag in sorted(tags)
    ]
    if context.creator:
        related.append(dict(context.creator))
    return Event(
        id=state.id,
        occurred=state.timestamp,
        event=f"prefect.flow-run.{state.name}",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run.id}",
            "prefect.resource.name": run.name,
            "prefect.run-count": str(run.run_count),
            "prefect.state-message": (state.message or "")[:STATE_MESSAGE_MAX],
            "prefect.state-name": state.name or "",
            "prefect.state-timestamp": state.timestamp.isoformat(),
            "prefect.state-type": state.type.value,
            REPLAYED_BY_LABEL: REPLAYED_BY,
        },
        related=related,
        payload={
            "intended": {
                "from": previous.type.value if previous else None,
                "to": state.type.value,
            },
            "initial_state": _state_payload(previous),
            "validated_state": _state_payload(state),
        },
    )


def ended_run(run: FlowRun) -> EndedRun | None:
    state = run.state
    if state is None or state.name is None:
        return None
    return EndedRun(run.id, state.id, state.name, state.timestamp)


async def read_ended_runs(
    client: PrefectClient, since: datetime, states: Sequence[str]
) -> list[FlowRun]:
    """Runs in one of `states` that ended after `since`, every page."""
    found: list[FlowRun] = []
    while True:
        page = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(name=FlowRunFilterStateName(any_=list(states))),
                end_time=FlowRunFilterEndTime(after_=since),
            ),
            sort=FlowRunSort.END_TIME_DESC,
            limit=RUNS_PAGE,
            offset=len(found),
        )
        found += page
        if len(page) < RUNS_PAGE:
            return found


async def read_stored_event_ids(
    client: PrefectClient, ids: Sequence[UUID], since: datetime
) -> set[UUID]:
    """Which of `ids` the event history holds."""
    stored: set[UUID] = set()
    for start in range(0, len(ids), EVENTS_PAGE):
        page = await client.read_events(
            EventFilter(
                id=EventIDFilter(id=list(ids[start : start + EVENTS_PAGE])),
                occurred=EventOccurredFilter(since=since),
            ),
            limit=EVENTS_PAGE,
        )
        stored.update(event.id for event in page.events)
    return stored


async def read_context(client: PrefectClient, run: FlowRun) -> RunContext:
    """The flow, deployment, work queue and pool, parent task run and creator of `run`."""
    flow_ = await client.read_flow(run.flow_id)
    context: dict[str, Any] = {
        "flow": {"id": flow_.id, "name": flow_.name, "tags": flow_.tags or []}
    }
    if run.deployment_id:
        deployment = await client.read_deployment(run.deployment_id)
        context["deployment"] = {
            "id": deployment.id,
            "name": deployment.name,
            "tags": deployment.tags or [],
        }
    if run.work_queue_id:
        queue = await client.read_work_queue(run.work_queue_id)
        context["work_queue"] = {"id": queue.id, "name": queue.name, "tags": []}
        if queue.work_pool_name:
            pool = await client.read_work_pool(queue.work_pool_name)
            context["work_pool"] = {
                "id": pool.id,
                "name": pool.name,
                "tags": [],
                "type": pool.type,
            }
    if run.parent_task_run_id:
        task_run = await client.read_task_run(run.parent_task_run_id)
        context["task_run"] = {
            "id": task_run.id,
            "name": task_run.name,
            "tags": task_run.tags or [],
        }
    creator = run.created_by
    if creator is not None and creator.type in ("DEPLOYMENT", "AUTOMATION"):
        context["creator"] = {
            "prefect.resource.id": f"prefect.{creator.type.lower()}.{creator.id}",
            "prefect.resource.role": "creator",
            **({"prefect.resource.name": creator.display_value} if creator.display_value else {}),
        }
    return RunContext(**context)


async def previous_state(client: PrefectClient, run: FlowRun) -> State | None:
    """The state `run` left for its terminal one (the event's `initial_state`)."""
    assert run.state is not None
    history = sorted(await client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
    before = [s for s in history if s.id != run.state.id and s.timestamp <= run.state.timestamp]
    return before[-1] if before else None


async def find_and_replay(
    lookback: timedelta = timedelta(minutes=60),
    settle: timedelta = timedelta(seconds=60),
    states: Sequence[str] = ALERTED_STATES,
    now: datetime | None = None,
) -> list[Event]:
    """One backstop pass: the state events re-emitted (empty when nothing was lost)."""
    now = now or datetime.now(UTC)
    since = now - lookback
    async with get_client() as client:
        runs = await read_ended_runs(client, since, states)
        by_id = {run.id: run for run in runs}
        ended = [e for e in map(ended_run, runs) if e is not None]
        stored = await read_stored_event_ids(
            client, [e.state_id for e in ended], since - timedelta(minutes=5)
        )
        missing = runs_missing_state_event(ended, stored, now, settle, lookback, states)
        events = []
        for lost in missing:
            run = by_id[lost.flow_run_id]
            assert run.state is not None
            events.append(
                state_event(
                    run,
                    run.state,
                    await previous_state(client, run),
                    await read_context(client, run),
                )
            )
    if events:
        # Straight through the events websocket and awaited, not the background worker:
        # the flow run must not end before the server has them.
        async with get_events_client() as events_client:
            for event in events:
                await events_client.emit(event)
    return events


@flow(name="alert-backstop")
async def alert_backstop(
    lookback_minutes: float = 60.0,
    settle_seconds: float = 60.0,
    states: list[str] | None = None,
) -> int:
    """Re-emit the state events a crashed Prefect server lost; returns how many."""
    logger = get_run_logger()
    replayed = await find_and_replay(
        lookback=timedelta(minutes=lookback_minutes),
        settle=timedelta(seconds=settle_seconds),
        states=tuple(states or ALERTED_STATES),
    )
    for event in replayed:
        logger.warning(
            "Re-emitted %s (%s) for %s: the server had lost it",
            event.event,
            event.id,
            event.resource.get("prefect.resource.name"),
        )
    if not replayed:
        logger.info("Every alerting state event of the last %s min is stored", lookback_minutes)
    return len(replayed)
