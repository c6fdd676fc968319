"""The flows use what the stack provisioned: the `pricechecktn_slas` variable (thresholds)
and the `pricechecktn_sla__<deployment>` ones (SLAs), with the stack's overrides, and the
`pricechecktn-scraping` concurrency limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentCreate
from prefect.states import Completed, Running

from flows.fixtures.shops import FixtureSites
from flows.pipeline import pricechecktn_pipeline
from flows.report import daily_report
from pricecheck_alerts import naming
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack
from pricecheck_alerts.provision import ConcurrencyLimits, Variables

PROBE_ENV = "sla-probe"


@pytest.fixture
def scraping_limit(prefect_api: str) -> Iterator[ConcurrencyLimits]:
    limits = ConcurrencyLimits()
    yield limits
    limits.delete(naming.SCRAPING_LIMIT)


def windows(summary: dict[str, Any]) -> list[tuple[float, float]]:
    return [(start, end) for start, end in summary["scraping_windows"].values()]


def overlapping(spans: list[tuple[float, float]]) -> bool:
    return any(a[0] < b[1] and b[0] < a[1] for a, b in combinations(spans, 2))


def test_scraping_holds_a_slot_of_the_stack_limit(
    sites: FixtureSites, scraping_limit: ConcurrencyLimits
) -> None:
    """With a limit of 1, no two sites are ever scraped at the same moment; with 3 they
    are (the control: the pipeline does scrape sites concurrently)."""
    scraping_limit.create({"name": naming.SCRAPING_LIMIT, "limit": 3})
    free = pricechecktn_pipeline(site_urls=sites.urls, rate_limit_s=0.05)
    assert len(windows(free)) == 3 and overlapping(windows(free))

    scraping_limit.update(naming.SCRAPING_LIMIT, {"limit": 1})
    held = pricechecktn_pipeline(site_urls=sites.urls, rate_limit_s=0.05)
    assert len(windows(held)) == 3
    assert not overlapping(windows(held)), sorted(windows(held))


@pytest.fixture
def slas_variable(prefect_api: str) -> Iterator[Variables]:
    """The server's `pricechecktn_slas` and the pipeline's SLA variable, restored after the
    test."""
    variables = Variables()
    names = (naming.SLAS_VARIABLE, naming.sla_variable("pricechecktn-pipeline"))
    before = [variables.read(name) for name in names]
    yield variables
    for name, held in zip(names, before, strict=True):
        variables.delete(name)
        if held is not None:
            variables.create(held)


def record_run(deployment_id: Any, seconds: float) -> None:
    """A run that lasts `seconds` (the server times runs by its own clock, so the time
    really passes: this is the one wait in the test, and it is the thing measured)."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id, tags=[f"env:{PROBE_ENV}"])
        client.set_flow_run_state(run.id, Running(), force=True)
        time.sleep(seconds)
        client.set_flow_run_state(run.id, Completed(), force=True)


@flow(name="sla-probe")
def sla_probe() -> None:
    """Only its id is used: the runs below are recorded, not executed."""


def test_stack_override_changes_the_report_sla_attainment(
    project_root: Any, slas_variable: Variables
) -> None:
    """A 10.5 s run meets slas.yaml's 3600 s pipeline SLA but not a stack's 10 s override:
    the report reads the provisioned variable, so the override moves its attainment."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(sla_probe)
        deployment_id = client.create_deployment(
            **DeploymentCreate(flow_id=flow_id, name="pricechecktn-pipeline").model_dump(
                include={"flow_id", "name"}
            )
        )
    record_run(deployment_id, 10.5)

    slas_variable.delete(naming.SLAS_VARIABLE)
    from_file = daily_report(env=PROBE_ENV, recipients=[])
    assert from_file["sla_attainment"] == {"pricechecktn-pipeline": 1.0}

    stack = load_stack(project_root, "local", {})
    tight = stack.model_copy(
        update={"sla_overrides": {"deployments": {"pricechecktn-pipeline": {"max_duration_s": 10}}}}
    )
    for variable in compile_stack(load_catalog(project_root), tight).variables:
        if variable.name in (naming.SLAS_VARIABLE, naming.sla_variable("pricechecktn-pipeline")):
            slas_variable.delete(variable.name)
            slas_variable.create(variable.inputs())
    provisioned = daily_report(env=PROBE_ENV, recipients=[])
    assert provisioned["sla_attainment"] == {"pricechecktn-pipeline": 0.0}
