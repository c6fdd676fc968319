"""Crash drills: fail runs, SIGKILL the Prefect server, restart it on the same database and
count what survived (the `prefect.flow-run.Failed` events in the event history and the
alerts that reached the receivers).

Shared by `benchmarks/crash_window.py` (the measured table) and
`tests/scale/test_crash_recovery.py` (the proof on PostgreSQL + Redis), so the test asserts
on exactly what the benchmark measures.

Runs are failed with `set_flow_run_state` from a client: the server's orchestration emits
the same `prefect.flow-run.Failed` event (its id is the Failed state's id) as a flow whose
process failed, and the timing of the kill is then exact, with no subprocess in between.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import OrchestrationResult
from prefect.events.filters import EventFilter, EventIDFilter
from prefect.states import Failed, Running

from devtools.local_server import LocalPrefectServer
from devtools.receivers import Delivery
from devtools.scenarios import CRITICAL, Expected, identify

DRILL_DEPLOYMENT = "drill-flaky/drill-flaky"
FAILURE_ALERTS = tuple(Expected(channel, "flow-run-failed") for channel in CRITICAL)


@dataclass(frozen=True)
class FailedRun:
    """A run failed on purpose; `state_id` is also the id of its Failed event."""

    flow_run_id: UUID
    state_id: UUID
    name: str
    # time.monotonic() when the server answered the Failed transition (state committed)
    committed_at: float


def fail_runs(count: int, label: str) -> list[FailedRun]:
    """Create `count` runs of the drill deployment and move each Running → Failed through
    the API, one after the other, as fast as the server accepts them."""
    failed = []
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DRILL_DEPLOYMENT)
        for index in range(count):
            run = client.create_flow_run_from_deployment(deployment.id)
            client.set_flow_run_state(run.id, Running(), force=True)
            result: OrchestrationResult[Any] = client.set_flow_run_state(
                run.id, Failed(message=f"crash drill {label} #{index}"), force=True
            )
            assert result.state is not None and result.state.name == "Failed", result
            failed.append(FailedRun(run.id, result.state.id, run.name, time.monotonic()))
    return failed


def sigkill(server: LocalPrefectServer) -> None:
    """SIGKILL the server's whole process group: no shutdown hook, no final flush."""
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def stored_event_ids(ids: Sequence[UUID]) -> set[UUID]:
    """Which of `ids` the server's event history holds (the API answers 50 at most)."""
    found: set[UUID] = set()
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), 50):
            chunk = list(ids[start : start + 50])
            page = client.read_events(EventFilter(id=EventIDFilter(id=chunk)), limit=50)
            found.update(event.id for event in page.events)
    return found


def failure_alerts(deliveries: Sequence[Delivery]) -> int:
    """How many flow-run-failed trigger payloads arrived, on every critical channel."""
    wanted = set(FAILURE_ALERTS)
    return sum(1 for d in deliveries if identify(d) in wanted)


def alerts_for(run: FailedRun, deliveries: Sequence[Delivery]) -> int:
    """The failure alerts that name `run` (its id is in every payload's run link)."""
    wanted = set(FAILURE_ALERTS)
    return sum(
        1
        for d in deliveries
        if identify(d) in wanted and str(run.flow_run_id) in json.dumps(d.body)
    )


def wait_for_count(count: Callable[[], int], expected: int, timeout: float, settle: float) -> int:
    """Poll `count` until it reaches `expected` (or `timeout`), then wait `settle` more
    seconds so a late or duplicate one shows up, and return the final count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and count() < expected:
        time.sleep(0.5)
    time.sleep(settle)
    return count()


@dataclass(frozen=True)
class RunOutcome:
    """One run: how old its Failed state was when the server died, what survived."""

    age_at_kill: float
    event_stored: bool
    alerts_before_restart: int
    alerts_delivered: int


@dataclass(frozen=True)
class CrashOutcome:
    delay: float
    runs: int
    events_stored: int
    alerts_expected: int
    alerts_before_restart: int
    alerts_delivered: int
    by_channel: dict[str, int]
    per_run: tuple[RunOutcome, ...]


def crash_after_failures(
    server: LocalPrefectServer,
    deliveries: Callable[[], list[Delivery]],
    delay: float,
    runs: int = 3,
    after_restart: float = 25.0,
    settle: float = 3.0,
) -> tuple[CrashOutcome, list[FailedRun]]:
    """Fail `runs` runs, SIGKILL the server `delay` seconds after the last one is Failed in
    the database, restart it on the same database (and the same Redis, if any), and count
    the Failed events stored and the failure alerts delivered.

    `after_restart` bounds the wait for alerts after the restart: on Redis the messages a
    killed consumer had not acknowledged are claimed again once idle for 5 s
    (PREFECT_REDIS_MESSAGING_CONSUMER_MIN_IDLE_TIME)."""
    before = len(deliveries())
    failed = fail_runs(runs, f"d={delay}")
    time.sleep(delay)
    sigkill(server)
    killed_at = time.monotonic()
    before_restart = deliveries()[before:]
    alerts_before_restart = sum(alerts_for(run, before_restart) for run in failed)
    server.start(timeout=120)
    expected = runs * len(FAILURE_ALERTS)
    # Only this drill's runs: a late repeat for an earlier drill's run is not ours.
    delivered = wait_for_count(
        lambda: sum(alerts_for(run, deliveries()[before:]) for run in failed),
        expected,
        after_restart,
        settle,
    )
    # The persister of the new server writes what it received within its flush interval.
    time.sleep(max(0.0, 6.0 - settle))
    stored = stored_event_ids([f.state_id for f in failed])
    arrived = deliveries()[before:]
    ours = [d for d in arrived if any(alerts_for(run, [d]) for run in failed)]
    by_channel = Counter(d.channel for d in ours)
    return (
        CrashOutcome(
            delay=delay,
            runs=runs,
            events_stored=len(stored),
            alerts_expected=expected,
            alerts_before_restart=alerts_before_restart,
            alerts_delivered=delivered,
            by_channel=dict(by_channel),
            per_run=tuple(
                RunOutcome(
                    age_at_kill=killed_at - run.committed_at,
                    event_stored=run.state_id in stored,
                    alerts_before_restart=alerts_for(run, before_restart),
                    alerts_delivered=alerts_for(run, arrived),
                )
                for run in failed
            ),
        ),
        failed,
    )
