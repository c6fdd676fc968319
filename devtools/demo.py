"""`make demo`: the alerting stack on the embedded default, end to end, with a verdict.

Starts a local Prefect server (SQLite under .local/, port 4200) and the local receivers
(HTTP 9101 for Slack/PagerDuty, SMTP 9125), provisions the `local` stack, plays the alert
drills, prints which alert reached which channel and exits 1 if an expected alert did not
arrive (or an unexpected one did). The server and receivers stay up for a look at the
Prefect UI until `make down`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from devtools.local_server import LocalPrefectServer
from devtools.pipeline_story import (
    StoryPlace,
    play_story,
    start_pipeline,
    stop_process,
)
from devtools.receivers import Delivery
from devtools.scenarios import (
    SCENARIOS,
    Expected,
    deploy_drills,
    identify,
    play,
    wait_for_alerts,
)
from pricecheck_alerts.cli import compile_for
from pricecheck_alerts.config.loader import find_project_root
from pricecheck_alerts.config.stacks import resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack

SERVER_PORT = 4200
HTTP_PORT = 9101
SMTP_PORT = 9125
ARRIVAL_TIMEOUT_S = 90


def state_dir(root: Path) -> Path:
    return root / ".local"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ours_or_free(port: int, pid_file: Path, what: str) -> bool:
    """True if `port` is held by what an earlier `make demo` started; False if free.
    Anything else on the port is someone else's: the demo must not provision into it."""
    if not _port_open(port):
        return False
    if not pid_file.exists():
        raise SystemExit(
            f"port {port} is in use by another process, not by an earlier `make demo`'s "
            f"{what}; stop it (or `make down` if it is ours) and try again"
        )
    return True


def _start_receivers(folder: Path) -> None:
    if _ours_or_free(HTTP_PORT, folder / "receivers.pid", "receivers"):
        httpx.delete(f"http://127.0.0.1:{HTTP_PORT}/_received", timeout=5)
        return
    log = (folder / "receivers.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.receivers",
            "--http-port",
            str(HTTP_PORT),
            "--smtp-port",
            str(SMTP_PORT),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (folder / "receivers.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 20
    while not _port_open(HTTP_PORT):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"receivers did not start; see {folder / 'receivers.log'}")
        time.sleep(0.2)


def _start_server(folder: Path) -> LocalPrefectServer:
    server = LocalPrefectServer(home=folder / "prefect", port=SERVER_PORT)
    if _ours_or_free(SERVER_PORT, server.home / "server.pid", "Prefect server"):
        server.wait_healthy(30)
        return server
    print(f"Starting Prefect server on {server.url} (state in {server.home}) ...")
    return server.start()


def received() -> list[Delivery]:
    response = httpx.get(f"http://127.0.0.1:{HTTP_PORT}/_received", timeout=5)
    return [Delivery(**item) for item in response.json()]


def report(expected: Counter[Expected], deliveries: list[Delivery]) -> bool:
    """Print the channel table; True when exactly the expected alerts arrived, all valid."""
    got = Counter(identify(d) for d in deliveries)
    rejected = [d for d in deliveries if d.status >= 300]
    print(f"\n{'rule':<22} {'action':<8} {'channel':<15} {'expected':>8} {'arrived':>8}")
    ok = not rejected
    for item in sorted(set(expected) | {g for g in got if g}, key=lambda e: (e.rule, e.channel)):
        mark = "" if got[item] == expected[item] else "   <-- MISMATCH"
        ok &= got[item] == expected[item]
        print(
            f"{item.rule:<22} {item.action:<8} {item.channel:<15} "
            f"{expected[item]:>8} {got[item]:>8}{mark}"
        )
    for delivery in rejected:
        print(f"REJECTED by {delivery.channel} receiver: {delivery.error}")
    return ok


def up(root: Path) -> int:
    folder = state_dir(root)
    folder.mkdir(exist_ok=True)
    server = _start_server(folder)
    _start_receivers(folder)
    with server.as_current():
        ok = play_all(root)
    print(f"\nPrefect UI: {server.url}  (automations, runs and events; `make down` stops it)")
    print(f"Alert payloads: http://127.0.0.1:{HTTP_PORT}/_received")
    print("All expected alerts arrived, nothing else." if ok else "DEMO FAILED: see above.")
    return 0 if ok else 1


def play_all(root: Path) -> bool:
    """Provision the local stack, play every scenario, report what arrived."""
    _, resources = compile_for(root, "local")
    result = apply_stack(resources, resolve_secrets(root, "local", os.environ))
    print(
        f"Provisioned stack 'local': {result.writes} writes "
        f"({len(resources.automations)} automations, {len(resources.blocks)} blocks)"
    )
    work_pool = resources.work_pools[0].name
    deploy_drills(root, work_pool)

    print("\nAlert drills (flows/fixtures/drills.py), each run as a process worker would:")
    expected: Counter[Expected] = Counter()
    background = []
    for scenario in SCENARIOS:
        print(f"- {scenario.name}")
        running = play(scenario, root)
        if running is not None:
            background.append(running)
        expected.update(scenario.alerts)
    for process in background:
        process.wait(timeout=60)

    print("\nThe PriceCheckTN pipeline (prefect.yaml), run by a process worker:")
    place = StoryPlace(state_dir(root), smtp_port=SMTP_PORT)
    start_pipeline(root, place, work_pool)
    story_alerts, states_ok = play_story(place)
    expected.update(story_alerts)
    deliveries = wait_for_alerts(received, expected, timeout=ARRIVAL_TIMEOUT_S)
    reports = sorted((state_dir(root) / "state" / "reports").glob("*.png"))
    if reports:
        print(
            f"\nDaily report: e-mailed to the local SMTP receiver, chart {reports[-1]}, "
            "artifacts 'pricechecktn-daily-report' in the Prefect UI (Artifacts)"
        )
    return report(expected, deliveries) and states_ok


def down(root: Path) -> int:
    """Stop the worker, the fixture shops, the receivers and the server, in that order."""
    for name in ("worker", "shops", "receivers", "prefect/server"):
        if stop_process(state_dir(root) / f"{name}.pid"):
            print(f"stopped {name.split('/')[0]}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--down", action="store_true", help="stop what `make demo` started")
    args = parser.parse_args()
    root = find_project_root()
    sys.exit(down(root) if args.down else up(root))


if __name__ == "__main__":
    main()
