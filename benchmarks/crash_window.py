"""How long a Prefect server holds a run's Failed event only in memory: SIGKILL it right
after failures and count what survived a restart on the same database.

For each delay d, fail 3 runs (Running → Failed through the API, which emits the same
`prefect.flow-run.Failed` event as a failing flow), SIGKILL the server d seconds after the
last Failed state is committed, restart it on the same database, and print how many of the
3 Failed events the event history holds and how many of the 9 failure alerts (3 runs x Slack
critical, PagerDuty, e-mail) reached the receivers.

    .venv/bin/python benchmarks/crash_window.py --setup sqlite
    .venv/bin/python benchmarks/crash_window.py --setup postgres-redis   # needs both services

`sqlite` is the default setup (SQLite, in-memory messaging); `postgres-redis` is the scale
path of the deploy guide (PostgreSQL on 127.0.0.1:5432 with trust auth, Redis messaging on
127.0.0.1:6379; a scratch database is created and dropped, the Redis database of
`--redis-url` is flushed: give it one no other Prefect server uses, or their consumers of
the same groups take this server's messages).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.crash import (  # noqa: E402
    FAILURE_ALERTS,
    CrashOutcome,
    alerts_for,
    crash_after_failures,
)
from devtools.local_server import LocalPrefectServer, scale_backend  # noqa: E402
from devtools.receivers import Receivers  # noqa: E402
from devtools.scenarios import deploy_drills  # noqa: E402
from pricecheck_alerts.compile.compiler import compile_stack  # noqa: E402
from pricecheck_alerts.config.loader import load_catalog  # noqa: E402
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets  # noqa: E402
from pricecheck_alerts.provision.apply import apply_stack  # noqa: E402

DELAYS = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 8.0)
REDIS_URL = "redis://127.0.0.1:6379/12"
LATE_REPEATS_S = 25.0
ROUTING_KEY = "crash0routing0key000000000000000"


@contextmanager
def server_for(setup: str, home: Path, redis_url: str) -> Iterator[LocalPrefectServer]:
    """The server for `setup` (not started); on the scale path, its database and Redis."""
    if setup == "sqlite":
        yield LocalPrefectServer(home=home)
        return
    with scale_backend("prefect_crash", redis_url) as (database_url, messaging):
        yield LocalPrefectServer(home=home, database_url=database_url, extra_env=messaging)


HEADER = (
    " delay | events stored | alerts before restart | alerts after restart | "
    "per run: age of its Failed state at the kill → event, alerts"
)


def row(outcome: CrashOutcome) -> str:
    runs = "; ".join(
        f"{r.age_at_kill:.2f}s → {'stored' if r.event_stored else 'LOST'}, {r.alerts_delivered}/3"
        for r in outcome.per_run
    )
    return (
        f"{outcome.delay:>6.1f} | {outcome.events_stored}/{outcome.runs:<11} | "
        f"{outcome.alerts_before_restart}/{outcome.alerts_expected:<19} | "
        f"{outcome.alerts_delivered}/{outcome.alerts_expected:<18} | {runs}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", choices=("sqlite", "postgres-redis"), default="sqlite")
    parser.add_argument("--delays", type=float, nargs="+", default=list(DELAYS))
    parser.add_argument("--runs", type=int, default=3, help="failed runs per delay")
    parser.add_argument("--repeat", type=int, default=1, help="trials per delay")
    parser.add_argument("--redis-url", default=REDIS_URL, help="postgres-redis: flushed first")
    args = parser.parse_args()

    receivers = Receivers().start()
    backend = ExitStack()
    server = backend.enter_context(
        server_for(args.setup, Path(tempfile.mkdtemp(prefix="crash-prefect-")), args.redis_url)
    )
    server.start(timeout=120)
    try:
        with server.as_current():
            environ = {
                **receivers.urls(),
                "PRICECHECK_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
                "PRICECHECK_PREFECT_UI_URL": server.url,
            }
            resources = compile_stack(load_catalog(ROOT), load_stack(ROOT, "local", environ))
            apply_stack(resources, resolve_secrets(ROOT, "local", environ))
            deploy_drills(ROOT, resources.work_pools[0].name)
            print(f"setup: {args.setup}; {args.runs} runs failed, then SIGKILL after d s")
            print(HEADER)
            drills = []
            for delay in args.delays:
                for _ in range(args.repeat):
                    outcome, failed = crash_after_failures(
                        server, receivers.store.all, delay, runs=args.runs
                    )
                    drills.append((outcome, failed))
                    print(row(outcome), flush=True)
            # A server killed while its triggers handled an event may handle it again once
            # the event's in-flight mark expires (16 s on Redis): count the repeats last.
            time.sleep(LATE_REPEATS_S)
            repeats = [
                f"d={outcome.delay} run {index}: {count} alerts"
                for outcome, failed in drills
                for index, run in enumerate(failed)
                if (count := alerts_for(run, receivers.store.all())) > len(FAILURE_ALERTS)
            ]
            print(f"alerts delivered more than once: {'; '.join(repeats) or 'none'}")
    finally:
        server.stop()
        receivers.stop()
        backend.close()


if __name__ == "__main__":
    main()
