"""Alerts still travel when the server is closed: on a Prefect server with basic auth and CSRF
protection, a failing flow run (executed in its own process, as a worker runs it) and a
pipeline signal (sent through the events websocket) each reach the local receivers.

Every hop authenticates: provisioning and the run's client with PREFECT_API_AUTH_STRING
(inherited from this process's environment, as a worker's runs inherit the worker's), and
the server's own actions with its PREFECT_SERVER_API_AUTH_STRING.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from devtools.local_server import LocalPrefectServer
from devtools.receivers import Receivers
from devtools.scenarios import CRITICAL, SCENARIOS, Expected, deploy_drills, identify, play
from devtools.scenarios import wait_for_alerts as wait_for
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack

from .conftest import AUTH_STRING

ROUTING_KEY = "auth0routing0key0000000000000000"
PLAYED = ("failure with hostile text", "model drift signal")


@pytest.fixture(scope="module")
def local_stack(
    auth_server: LocalPrefectServer, receivers: Receivers, project_root: Path
) -> StackResources:
    """The `local` stack provisioned on the closed server, alerts going to the receivers."""
    environ = {
        **receivers.urls(),
        "PRICECHECK_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PRICECHECK_PREFECT_UI_URL": auth_server.url,
    }
    resources = compile_stack(
        load_catalog(project_root), load_stack(project_root, "local", environ)
    )
    apply_stack(resources, resolve_secrets(project_root, "local", environ), auth_server.api_url)
    return resources


def test_a_failed_run_and_a_signal_alert_through_the_closed_server(
    local_stack: StackResources, receivers: Receivers, project_root: Path
) -> None:
    deploy_drills(project_root, local_stack.work_pools[0].name)
    receivers.store.clear()

    scenarios = [s for s in SCENARIOS if s.name in PLAYED]
    assert len(scenarios) == len(PLAYED)
    expected: Counter[Expected] = Counter()
    for scenario in scenarios:
        assert play(scenario, project_root) is None  # neither runs in the background
        expected.update(scenario.alerts)
    assert expected[Expected("pagerduty", "flow-run-failed")] == 1
    assert {e.channel for e in expected} >= set(CRITICAL)

    arrived = wait_for(receivers.store.all, expected, timeout=90, settle=3)
    assert Counter(identify(d) for d in arrived) == expected
    assert [d.error for d in arrived if d.status >= 300] == []
    assert not any(AUTH_STRING in repr(d.body) for d in arrived)  # never in an alert


def _without_credentials(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if "AUTH_STRING" not in k and k != "PREFECT_API_KEY"}


def test_prefect_deploy_and_a_worker_authenticate(
    auth_server: LocalPrefectServer, local_stack: StackResources, project_root: Path
) -> None:
    """`prefect deploy --all` (prefect.yaml) and a process worker, started the way devtools
    and the deploy guide start them, with the auth string from their environment."""
    env = {**os.environ, "PRICECHECK_ENV": "local", "PRICECHECK_FLOWS_DIR": str(project_root)}
    deploy = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]

    refused = subprocess.run(
        deploy,
        cwd=project_root,
        env=_without_credentials(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr

    deployed = subprocess.run(
        deploy,
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert AUTH_STRING not in deployed.stdout + deployed.stderr
    with get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}
    assert {"pricechecktn-pipeline", "daily-report"} <= names

    # A pool of its own (the worker creates it): no deployment there, so the worker cannot
    # pick up a scheduled run whose alerts would reach the session's receivers.
    pool = "auth-probe-workers"
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
        cwd=project_root,
        env={**env, "PREFECT_WORKER_HEARTBEAT_SECONDS": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[Any] = []
        while not workers and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(1)
            with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
                client.read_work_pool(pool)  # the worker creates it first
                workers = client.read_workers_for_work_pool(pool)
        assert workers, "the worker never registered with the server"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert AUTH_STRING not in output.decode(errors="replace")
