"""prefect.yaml deployed into the test server with `prefect deploy --all`, and deployments
run by a real process worker: the nightly pipeline, and retrain_model started by itself
from a drift event through the deployment trigger."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from flows.fixtures.generator import DataFaults
from flows.fixtures.shops import FixtureSites
from flows.pipeline import pricechecktn_pipeline
from tests.pipeline.conftest import FAST_ENV

ROOT = Path(__file__).resolve().parents[2]
ENV = "test"
POOL = f"pricechecktn-{ENV}"
EXPECTED = {
    "pricechecktn-pipeline",
    "data-validation",
    "model-monitoring",
    "retrain-model",
    "daily-report",
    "api-health-probe",
    "alert-redelivery",
    "alert-backstop",
}


def _cli_env(prefect_server: Any, flows_dir: Path = ROOT) -> dict[str, str]:
    return {
        **prefect_server.env,
        "PRICECHECK_ENV": ENV,
        "PRICECHECK_FLOWS_DIR": str(flows_dir),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def deployed(prefect_server: Any, project_root: Path, pipeline_env: Path) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=project_root,
        env=_cli_env(prefect_server),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments() if d.work_pool_name == POOL}
        # Keep our schedules from putting runs in front of the worker during the test.
        for deployment in deployments.values():
            client.pause_deployment(deployment.id)
        for run in client.read_flow_runs(
            deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[d.id for d in deployments.values()])
            ),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
        ):
            client.delete_flow_run(run.id)
    return deployments


def test_every_flow_is_deployed_per_environment(deployed: dict[str, Any]) -> None:
    assert set(deployed) >= EXPECTED
    for name in EXPECTED:
        assert deployed[name].work_pool_name == POOL
        assert set(deployed[name].tags) == {"pricechecktn", f"env:{ENV}"}
        assert deployed[name].job_variables == {"env": {"PRICECHECK_ENV": ENV}}
    [nightly] = deployed["pricechecktn-pipeline"].schedules
    assert nightly.schedule.cron == "0 2 * * *"
    assert nightly.schedule.timezone == "Africa/Tunis"
    [report] = deployed["daily-report"].schedules
    assert (report.schedule.cron, report.schedule.timezone) == ("0 8 * * *", "Africa/Tunis")
    [probe] = deployed["api-health-probe"].schedules
    assert probe.schedule.interval.total_seconds() == 300
    [sweep] = deployed["alert-redelivery"].schedules
    assert sweep.schedule.interval.total_seconds() == 60
    options = deployed["alert-redelivery"].concurrency_options
    assert options is not None and options.collision_strategy == "CANCEL_NEW"
    [backstop] = deployed["alert-backstop"].schedules
    assert backstop.schedule.interval.total_seconds() == 600


def run_worker_once(pool: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A real process worker that takes the pool's next run, runs it, and exits."""
    command = ["worker", "start", "--pool", pool, "--type", "process", "--run-once"]
    return subprocess.run(
        [sys.executable, "-m", "prefect", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _runs_of(deployment_id: Any) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def test_worker_runs_pipeline_and_drift_starts_retrain(
    deployed: dict[str, Any],
    prefect_server: Any,
    session_sites: FixtureSites,
    tmp_path: Path,
    project_root: Path,
) -> None:
    retrain = deployed["retrain-model"]
    # A drifted run in this environment: its drift event must start retrain-model.
    session_sites.set_all("ok", faults=DataFaults(price_drift=True))
    try:
        with tags(f"env:{ENV}"):
            summary = pricechecktn_pipeline.with_options(retries=0)(
                site_urls=session_sites.urls, rate_limit_s=0
            )
    finally:
        session_sites.reset()
    assert "pricechecktn.model.drift_detected" in summary["signals"]
    deadline = time.monotonic() + 30
    while not _runs_of(retrain.id) and time.monotonic() < deadline:
        time.sleep(0.5)
    [retrain_run] = _runs_of(retrain.id)

    job_env = {
        **FAST_ENV,
        "PRICECHECK_STATE_DIR": str(tmp_path / "worker-state"),
        "PRICECHECK_FLOW_RETRIES": "0",
    }
    with get_client(sync_client=True) as client:
        pipeline_run = client.create_flow_run_from_deployment(
            deployed["pricechecktn-pipeline"].id,
            parameters={"site_urls": session_sites.urls, "rate_limit_s": 0},
            job_variables={"env": job_env},
        )
    worker = run_worker_once(POOL, project_root, {**_cli_env(prefect_server), **job_env})
    assert worker.returncode == 0, worker.stderr[-3000:]
    with get_client(sync_client=True) as client:
        finished = client.read_flow_run(pipeline_run.id)
        retrained = client.read_flow_run(retrain_run.id)
    assert finished.state.is_completed(), (finished.state, worker.stderr[-3000:])
    assert set(finished.tags) >= {f"env:{ENV}", "pricechecktn"}
    assert retrained.state.is_completed(), (retrained.state, worker.stderr[-3000:])
    assert retrained.parameters == {"reason": "drift event"}
    # Both ran in the worker's state folder: the retrained model and its baseline are there.
    assert {p.name for p in (tmp_path / "worker-state").iterdir()} >= {
        "fake_review_model.pkl",
        "drift_baseline.json",
        "latest_snapshot.json",
    }


def test_a_worker_runs_the_flows_from_where_the_image_puts_them(
    prefect_server: Any, project_root: Path, tmp_path: Path
) -> None:
    """staging/prod deploy with PRICECHECK_FLOWS_DIR=/opt/pricechecktn (the image's copy of
    the flows): the pull step moves the run there, whatever the worker's own folder. Here
    the copy sits at another path and the worker runs from a third, unrelated folder."""
    image = tmp_path / "opt" / "pricechecktn"
    image.mkdir(parents=True)
    for part in ("flows", "automations"):
        shutil.copytree(project_root / part, image / part)
    marker = tmp_path / "loaded-from.txt"
    with (image / "flows" / "probe.py").open("a") as probe:
        probe.write(f"\n__import__('pathlib').Path({str(marker)!r}).write_text(__file__)\n")
    env = {**_cli_env(prefect_server, flows_dir=image), "PRICECHECK_ENV": "image"}
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="pricechecktn-image", type="process"))
    deploy = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", "api-health-probe"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("api-health-probe/api-health-probe")
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(image)}}
        ]
        client.create_flow_run_from_deployment(deployment.id)
    elsewhere = tmp_path / "worker-home"
    elsewhere.mkdir()
    worker_env = {
        **env,
        "PRICECHECK_API_URL": "http://127.0.0.1:9/",
        "PRICECHECK_FLOW_RETRIES": "0",
    }
    worker = run_worker_once("pricechecktn-image", elsewhere, worker_env)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert marker.read_text() == str(image / "flows" / "probe.py")
