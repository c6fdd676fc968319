"""Deploy flows and execute their runs the way a process worker does.

A run is created from its deployment on the server and executed by `python -m
prefect.engine` in a subprocess (what a process worker spawns), so a crash or timeout
happens in a real separate process and the server sees real state events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments.runner import RunnerDeployment


def deploy(
    flow: Flow[..., Any], name: str, work_pool: str, root: Path, tags: tuple[str, ...] = ()
) -> UUID:
    """Register `flow` as deployment `name` (entrypoint relative to `root`)."""
    cwd = Path.cwd()
    os.chdir(root)  # the entrypoint is recorded relative to the working directory
    try:
        # Both are sync here (no event loop); their async-dispatch signatures say maybe not.
        deployment = cast(RunnerDeployment, flow.to_deployment(name=name, tags=list(tags)))
        return cast(UUID, deployment.apply(work_pool_name=work_pool))
    finally:
        os.chdir(cwd)


def create_run(deployment_name: str, parameters: Mapping[str, Any] | None = None) -> FlowRun:
    """A scheduled flow run of `flow-name/deployment-name`, to be executed by `execute`."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_name)
        return client.create_flow_run_from_deployment(
            deployment.id, parameters=dict(parameters or {})
        )


def execute(
    flow_run_id: UUID, root: Path, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[bytes]:
    """Run one flow run to its end in a subprocess, as a process worker would."""
    return subprocess.run(
        [sys.executable, "-m", "prefect.engine", str(flow_run_id)],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def start(
    flow_run_id: UUID,
    root: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Like `execute`, without waiting: for runs that must overlap (SLA overruns)."""
    return subprocess.Popen(
        [sys.executable, "-m", "prefect.engine", str(flow_run_id)],
        cwd=root,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
