"""The second half of `make demo`: the real pipeline, deployed and run by a process worker.

The fixture shops (`flows.fixtures.shops`) are switched between runs to tell the story: a
healthy night, a shop answering 403, a volume drop, slow shops overrunning the SLA, every
shop down (the run fails and pages), recovery (the page resolves), price drift (retraining
starts by itself) and the daily report. Each step says which alerts it must produce; the
demo checks them with the alert drills' in one table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
from prefect.client.schemas.objects import FlowRun

from devtools import runs
from devtools.scenarios import CRITICAL, RESOLVED, Expected

SHOPS = ("mytek", "tunisianet", "jumia")
PIPELINE = "pricechecktn-pipeline/pricechecktn-pipeline"
REPORT = "daily-report/daily-report"
RETRAIN_DEPLOYMENT = "retrain-model"
RUN_TIMEOUT_S = 240


@dataclass(frozen=True)
class StoryPlace:
    """Where the story's parts listen and keep state (fixed for the demo, free in tests)."""

    folder: Path  # pid files, logs and the flows' state
    control_port: int = 8700  # the fixture shops' control API; the shops take the next 3
    smtp_port: int = 9125

    def shop_urls(self) -> dict[str, str]:
        return {
            site: f"http://127.0.0.1:{self.control_port + 1 + i}" for i, site in enumerate(SHOPS)
        }

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"


@dataclass(frozen=True)
class Step:
    """Set the shops, run `deployment`, expect its final state and these alerts."""

    name: str
    shops: dict[str, dict[str, Any]]
    alerts: tuple[Expected, ...] = ()
    state: str = "Completed"
    deployment: str = PIPELINE
    parameters: dict[str, Any] = field(default_factory=lambda: {"rate_limit_s": 0})
    starts_retraining: bool = False


def _warn(rule: str, count: int = 1) -> tuple[Expected, ...]:
    return (Expected("slack-warnings", rule),) * count


HEALTHY = {"all": {"mode": "ok", "faults": {}}}
STORY: tuple[Step, ...] = (
    Step("a healthy nightly run", HEALTHY),
    Step(
        "Mytek answers 403",
        {**HEALTHY, "mytek": {"mode": "forbidden"}},
        _warn("task-run-failed") + _warn("scraping-success-low"),
    ),
    Step(
        "Jumia's listing drops to a third",
        {**HEALTHY, "jumia": {"faults": {"volume_drop": True}}},
        _warn("data-volume-anomaly"),
    ),
    Step(
        "the shops answer slowly: the run overruns its SLA",
        {"all": {"mode": "slow", "delay_s": 4, "faults": {}}},
        _warn("run-duration-sla"),
    ),
    Step(
        "every shop refuses connections: the run fails and pages",
        {"all": {"mode": "refused", "faults": {}}},
        _warn("task-run-failed", len(SHOPS))
        + _warn("scraping-success-low")
        + tuple(Expected(c, "flow-run-failed") for c in CRITICAL),
        state="Failed",
    ),
    Step(
        "the shops are back: recovery resolves the page",
        HEALTHY,
        tuple(Expected(c, "flow-run-failed", "resolve") for c in RESOLVED),
    ),
    Step(
        "prices drift: retraining starts by itself",
        {"all": {"mode": "ok", "faults": {"price_drift": True}}},
        _warn("model-drift"),
        starts_retraining=True,
    ),
    Step(
        "the daily report",
        {},
        (Expected("slack-info", "daily-report"), Expected("email", "daily-report", "report")),
        deployment=REPORT,
        parameters={},
    ),
)


def _start(command: list[str], folder: Path, name: str, env: dict[str, str]) -> None:
    """Start a background process for the demo, replacing one an earlier demo left."""
    pid_file = folder / f"{name}.pid"
    stop_process(pid_file)
    log = (folder / f"{name}.log").open("ab")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    pid_file.write_text(str(process.pid))


def stop_process(pid_file: Path) -> bool:
    """Stop the process group a pid file names; False if there was none running."""
    import signal

    if not pid_file.exists():
        return False
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        stopped = True
    except ProcessLookupError:
        stopped = False
    pid_file.unlink()
    return stopped


def set_shops(place: StoryPlace, changes: dict[str, dict[str, Any]]) -> None:
    for target, body in changes.items():
        response = httpx.post(f"{place.control_url}/sites/{target}", json=body, timeout=10)
        response.raise_for_status()


def worker_env(place: StoryPlace) -> dict[str, str]:
    """What the process worker (and the flow runs it spawns) needs for the local stack.
    The server's URL and, for a server with basic auth, PREFECT_API_AUTH_STRING come from
    this process's environment, which `LocalPrefectServer.as_current` sets: the worker,
    `prefect deploy` and every run log in as this process does."""
    return {
        **os.environ,
        "PRICECHECK_ENV": "local",
        "PRICECHECK_SITE_URLS": json.dumps(place.shop_urls()),
        "PRICECHECK_SCRAPE_RETRIES": "1",
        "PRICECHECK_SCRAPE_RETRY_DELAY_S": "1",
        "PRICECHECK_FLOW_RETRIES": "0",
        "PRICECHECK_API_URL": f"{place.control_url}/health",
        "PRICECHECK_SMTP_HOST": "127.0.0.1",
        "PRICECHECK_SMTP_PORT": str(place.smtp_port),
        "PRICECHECK_EMAIL_TO": "oncall@pricechecktn.local",
        "PRICECHECK_STATE_DIR": str(place.folder / "state"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }


def start_pipeline(root: Path, place: StoryPlace, work_pool: str) -> None:
    """Fixture shops, `prefect deploy --all` for the local environment, a process worker."""
    env = worker_env(place)
    shops = [
        sys.executable,
        "-m",
        "flows.fixtures.shops",
        "--control-port",
        str(place.control_port),
        "--first-site-port",
        str(place.control_port + 1),
    ]
    _start(shops, place.folder, "shops", env)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{place.control_url}/health", timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                log = place.folder / "shops.log"
                raise RuntimeError(f"fixture shops did not start; see {log}") from None
            time.sleep(0.3)
    deployed = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=root,
        env={**env, "PRICECHECK_FLOWS_DIR": str(root)},  # local runs from the checkout
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if deployed.returncode:
        raise RuntimeError(f"prefect deploy --all failed:\n{deployed.stdout}{deployed.stderr}")
    print("Deployed prefect.yaml (prefect deploy --all) for environment 'local'")
    worker = [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        work_pool,
        "--type",
        "process",
    ]
    _start(worker, place.folder, "worker", env)


def stop_pipeline(place: StoryPlace) -> None:
    for name in ("worker", "shops"):
        stop_process(place.folder / f"{name}.pid")


def wait_final(flow_run_id: Any, timeout: float = RUN_TIMEOUT_S) -> FlowRun:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state and flow_run.state.is_final():
                return flow_run
            if time.monotonic() > deadline:
                raise TimeoutError(f"flow run {flow_run.name} not finished in {timeout:.0f}s")
            time.sleep(1)


def wait_for_retraining(since: FlowRun) -> FlowRun:
    """The retrain run the drift event started (a deployment trigger), once it ended."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            found = client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=[RETRAIN_DEPLOYMENT])
                ),
                flow_run_filter=FlowRunFilter(),
            )
            started = [
                r for r in found if r.created and since.created and r.created > since.created
            ]
            if started:
                return wait_final(started[0].id)
            time.sleep(1)
    raise TimeoutError("no retrain-model run was started by the drift event")


def play_story(place: StoryPlace) -> tuple[Counter[Expected], bool]:
    """Run every step; returns the alerts they must produce and whether every run ended
    in the state its step expects."""
    expected: Counter[Expected] = Counter()
    states_ok = True
    for step in STORY:
        set_shops(place, step.shops)
        flow_run = wait_final(runs.create_run(step.deployment, step.parameters).id)
        state = flow_run.state.name if flow_run.state else "?"
        line = f"- {step.name}: {step.deployment.split('/')[0]} run {flow_run.name} {state}"
        if state != step.state:
            line += f"   <-- expected {step.state}"
            states_ok = False
        if step.starts_retraining:
            retrain = wait_for_retraining(flow_run)
            line += f"; retrain-model run {retrain.name} {retrain.state.name}"  # type: ignore[union-attr]
        print(line)
        expected.update(step.alerts)
    set_shops(place, HEALTHY)
    return expected, states_ok
