"""Alert throughput on a real local Prefect server: pipeline signals pushed at fixed rates,
every resulting delivery counted at the local receivers.

For each rate (default 10, 25, 50 and 100 signals per second, 30 s each) it sends
`pricechecktn.model.degraded` signals (a critical rule: Slack, PagerDuty and e-mail, so every
transport is exercised), each about its own check so that each fires the automation once,
and prints: deliveries received / expected, duplicates, latency from signal to payload
(p50, p95, max), the backlog drain time (last delivery after the last signal), the server's
CPU seconds per alert (its whole process tree, from /proc) and whether the server stored an
`action.triggered` and an `action.executed` or `action.failed` event for every action.

Shorter runs: `--seconds 10 --rates 10,50`. `--package-src DIR` puts DIR first on the
server's PYTHONPATH (another checkout's `src`, to compare versions of the notification
blocks on the same machine); `--scale` runs the scale setup (PostgreSQL on 127.0.0.1:5432
with trust auth, a database per rate, and Redis messaging on 127.0.0.1:6379);
`--profile FILE` runs the server under cProfile and writes its stats next to FILE when it
stops. Each rate gets a fresh server, so a backlog left by one rate does not slow the next.
Run: `.venv/bin/python benchmarks/throughput.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.local_server import LocalPrefectServer, scale_backend  # noqa: E402
from devtools.receivers import Delivery, Receivers  # noqa: E402
from pricecheck_alerts.compile.compiler import compile_stack  # noqa: E402
from pricecheck_alerts.config.loader import load_catalog  # noqa: E402
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets  # noqa: E402
from pricecheck_alerts.events import read_events  # noqa: E402
from pricecheck_alerts.provision.apply import apply_stack  # noqa: E402
from pricecheck_alerts.signals import Signal  # noqa: E402

SIGNAL = Signal.model_degraded
CHECK = re.compile(r"bench-r(\d+)-s(\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and every descendant, from /proc (the server starts
    uvicorn and its services as children)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state(0) ppid(1) ... utime(11) stime(12)
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    return sum(times.get(p, 0.0) for p in family)


def expected_per_signal(resources: Any) -> int:
    """Notification actions of the automations that fire on SIGNAL."""
    return sum(
        len(a.body["actions"])
        for a in resources.automations
        if str(SIGNAL) in a.body["trigger"].get("expect", [])
    )


async def push(rate: int, seconds: float) -> dict[int, float]:
    """Send `rate` signals per second for `seconds`, on schedule (not back to back);
    returns seq → the time it was handed to the server."""
    from prefect.events import Event
    from prefect.events.clients import get_events_client

    sent: dict[int, float] = {}
    count = int(rate * seconds)
    async with get_events_client() as client:
        start = time.time()
        for seq in range(count):
            delay = start + seq / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            check = f"bench-r{rate}-s{seq}"
            event = Event(
                event=str(SIGNAL),
                resource={
                    "prefect.resource.id": f"pricechecktn.check.{check}",
                    "prefect.resource.name": check,
                },
                payload={"metric": "accuracy", "value": 0.5, "seq": seq},
            )
            sent[seq] = time.time()
            await client.emit(event)
    return sent


def key_of(delivery: Delivery) -> tuple[int, int] | None:
    found = CHECK.search(json.dumps(delivery.body))
    return (int(found.group(1)), int(found.group(2))) if found else None


@dataclass
class Result:
    rate: int
    sent: int
    expected: int
    delivered: int
    duplicates: int
    p50: float
    p95: float
    max: float
    drain_s: float | None
    cpu_per_alert: float
    triggered: int
    finished: int
    failed: int

    def row(self) -> str:
        drain = f"{self.drain_s:6.1f}" if self.drain_s is not None else "  n/a "
        stored = "yes" if self.triggered == self.finished == self.expected else "NO"
        return (
            f"{self.rate:>5} {self.delivered:>6}/{self.expected:<6} {self.duplicates:>5} "
            f"{self.p50:7.2f} {self.p95:7.2f} {self.max:7.2f} {drain} "
            f"{self.cpu_per_alert * 1000:9.1f} "
            f"{self.triggered:>6}/{self.finished:<6}/{self.failed:<4} {stored}"
        )


HEADER = (
    " rate delivered/expected dups   p50 s   p95 s   max s drain s cpu ms/alert "
    "trig/done/failed all stored"
)


def measure(
    rate: int, seconds: float, per_signal: int, receivers: Receivers, pid: int, drain_max: float
) -> Result:
    receivers.store.clear()
    began = datetime.now(UTC) - timedelta(seconds=1)
    cpu_before = tree_cpu_seconds(pid)
    sent = asyncio.run(push(rate, seconds))
    expected = len(sent) * per_signal
    last_sent = max(sent.values())

    def ours() -> list[Delivery]:
        return [d for d in receivers.store.all() if (key_of(d) or (0, 0))[0] == rate]

    deadline = time.time() + drain_max
    quiet_since = time.time()
    seen = 0
    while time.time() < deadline:
        count = len(ours())
        if count >= expected:
            break
        if count != seen:
            seen, quiet_since = count, time.time()
        elif time.time() - quiet_since > 30:  # nothing more is coming
            break
        time.sleep(0.5)
    deliveries = ours()
    cpu = tree_cpu_seconds(pid) - cpu_before
    per_key = Counter((d.channel, key_of(d)) for d in deliveries)
    latencies = [d.received_at - sent[k[1]] for d in deliveries if (k := key_of(d))]
    drained = len(per_key) >= expected
    time.sleep(3)  # the action events follow the deliveries
    ended = datetime.now(UTC) + timedelta(seconds=1)
    names = [
        "prefect.automation.action.triggered",
        "prefect.automation.action.executed",
        "prefect.automation.action.failed",
    ]
    events = read_events(began, ended, names=names, max_events=1_000_000)
    of_rule = [
        e
        for e in events
        if str(e["resource"].get("prefect.resource.name", "")).endswith("/model-degradation")
    ]
    kinds = Counter(e["event"].rsplit(".", 1)[1] for e in of_rule)
    return Result(
        rate=rate,
        sent=len(sent),
        expected=expected,
        delivered=len(per_key),
        duplicates=sum(n - 1 for n in per_key.values()),
        p50=statistics.median(latencies) if latencies else float("nan"),
        p95=percentile(latencies, 0.95) if latencies else float("nan"),
        max=max(latencies) if latencies else float("nan"),
        drain_s=max(d.received_at for d in deliveries) - last_sent if drained else None,
        cpu_per_alert=cpu / max(len(sent), 1),
        triggered=kinds["triggered"],
        finished=kinds["executed"] + kinds["failed"],
        failed=kinds["failed"],
    )


# `prefect server start` under cProfile: uvicorn serves and the services run on the main
# thread's loop, which is what cProfile sees. uvicorn re-raises SIGTERM once it has shut down
# gracefully, which would kill the process before the stats are written: not here.
PROFILED = """
import cProfile, runpy, signal, sys
signal.raise_signal = lambda sig: None
module, sys.argv = sys.argv[2], [sys.argv[2], *sys.argv[3:]]
profile = cProfile.Profile()
try:
    profile.runcall(runpy.run_module, module, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profile.dump_stats({out!r})
"""

SCALE_REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own: the tests use 7


@contextmanager
def running_server(args: argparse.Namespace, home: Path) -> Iterator[LocalPrefectServer]:
    """A fresh server for one rate: a rate's backlog must not spill into the next one."""
    extra_env: dict[str, str] = {}
    if args.package_src:
        extra_env["PYTHONPATH"] = str(args.package_src.resolve())
    database_url = None
    backend = ExitStack()
    if args.scale:
        database_url, messaging = backend.enter_context(
            scale_backend("prefect_bench", SCALE_REDIS_URL)
        )
        extra_env.update(messaging)
    server = LocalPrefectServer(home=home, database_url=database_url, extra_env=extra_env)
    if args.profile:
        home.mkdir(parents=True, exist_ok=True)
        out = args.profile.resolve().with_suffix(f".{home.name}.prof")
        script = home / "profiled.py"
        script.write_text(PROFILED.format(out=str(out)))
        wrapper = home / "profiled-python"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
        wrapper.chmod(0o755)
        server.python = str(wrapper)
    try:
        server.start(timeout=120)
        with server.as_current():
            yield server
    finally:
        server.stop()
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="10,25,50,100", help="signals/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="per rate (30)")
    parser.add_argument("--drain-max", type=float, default=180.0, help="wait for the backlog")
    parser.add_argument("--package-src", type=Path, help="put this first on the server's path")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis messaging on :6379",
    )
    parser.add_argument(
        "--profile", type=Path, help="cProfile stats of the server: FILE.<rate>.prof"
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]

    scratch = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    receivers = Receivers().start()
    results: list[Result] = []
    per_signal = 0
    try:
        for rate in rates:
            with running_server(args, scratch / f"rate{rate}") as server:
                environ = {**receivers.urls(), "PRICECHECK_PREFECT_UI_URL": server.url}
                resources = compile_stack(load_catalog(ROOT), load_stack(ROOT, "local", environ))
                apply_stack(resources, resolve_secrets(ROOT, "local", environ))
                per_signal = expected_per_signal(resources)
                time.sleep(5)  # the triggers service loads the automations
                assert server.process is not None
                result = measure(
                    rate, args.seconds, per_signal, receivers, server.process.pid, args.drain_max
                )
            results.append(result)
            print(result.row() if len(results) > 1 else f"{HEADER}\n{result.row()}", flush=True)
    finally:
        receivers.stop()
    setup = "PostgreSQL + Redis messaging" if args.scale else "SQLite, in-memory messaging"
    print(
        f"\n{setup}; a fresh server per rate; {args.seconds:g} s per rate; {per_signal} "
        f"deliveries per signal (Slack, PagerDuty, e-mail); servers under {scratch}"
    )


if __name__ == "__main__":
    main()
