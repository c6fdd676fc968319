"""Validation of the stack settings: work pool templates and environment, PagerDuty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import PagerDutyConfig, WorkPoolConfig, load_stack

from .harness import ROOT


def test_container_pools_need_a_job_template() -> None:
    with pytest.raises(ValidationError, match="kubernetes work pool needs 'baseJobTemplate'"):
        WorkPoolConfig.model_validate({"name": "p", "type": "kubernetes"})
    with pytest.raises(ValidationError, match="baseJobTemplate lacks job_configuration"):
        WorkPoolConfig.model_validate(
            {"name": "p", "type": "docker", "baseJobTemplate": {"variables": {}}}
        )
    assert WorkPoolConfig.model_validate({"name": "p"}).base_job_template is None


def _pagerduty(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "enabled": True,
        "team": "T",
        "scheduleLayers": [
            {"name": "l", "users": ["a@x.example"], "start": "2026-11-02T09:00:00+01:00"}
        ],
        "escalation": {"lead": "lead@x.example"},
    }
    settings.update(overrides)
    return settings


def test_enabled_pagerduty_needs_team_schedule_and_escalation() -> None:
    config = PagerDutyConfig.model_validate(_pagerduty())
    assert config.escalation is not None
    assert (config.escalation.delay_minutes, config.escalation.loops) == (15, 2)
    assert config.time_zone == "Africa/Tunis"
    assert set(config.services) == {"pipeline", "data-quality", "model"}
    with pytest.raises(ValidationError, match="needs team, scheduleLayers"):
        PagerDutyConfig.model_validate(_pagerduty(team=None, scheduleLayers=[]))
    with pytest.raises(ValidationError, match="services lacks model"):
        PagerDutyConfig.model_validate(_pagerduty(services={"pipeline": {}, "data-quality": {}}))
    with pytest.raises(ValidationError, match="extra"):
        PagerDutyConfig.model_validate(_pagerduty(settings={}))
    assert PagerDutyConfig.model_validate({"enabled": False}).team is None


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_real_stack_files_validate(stack: str) -> None:
    config = load_stack(ROOT, stack, {})
    assert config.pagerduty.enabled and config.work_pool.type == "kubernetes"
    assert config.work_pool.base_job_template is not None


def test_apply_builds_the_container_pool_template_from_the_stack() -> None:
    """`apply` and the Pulumi program take a kubernetes pool's template from the stack
    file, with the job variables as defaults, and leave the compiled spec untouched."""
    config = load_stack(ROOT, "prod", {})
    resources = compile_stack(load_catalog(ROOT), config)
    [inputs] = [pool.inputs() for pool in resources.work_pools]
    properties = inputs["base_job_template"]["variables"]["properties"]
    assert properties["image"]["default"] == "ghcr.io/pricechecktn/pipeline:stable"
    assert properties["cpu_request"]["default"] == "1"
    [spec] = resources.work_pools
    assert spec.base_job_template is not None
    assert "default" not in spec.base_job_template["variables"]["properties"]["image"]


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_work_pool_tells_the_flows_their_environment(stack: str) -> None:
    """Runs in a stack's pool get PRICECHECK_ENV, the variable the flows read (the daily
    report scopes itself with it), set to the stack's environment."""
    config = load_stack(ROOT, stack, {})
    [pool] = compile_stack(load_catalog(ROOT), config).work_pools
    template = pool.inputs()["base_job_template"]
    env = template["variables"]["properties"]["env"]["default"]
    assert env["PRICECHECK_ENV"] == config.environment


def test_schedule_layers_start_in_the_past() -> None:
    """A layer starting in the future leaves nobody on call until then: refused, and the
    shipped stacks start theirs on a date that has passed."""
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    with pytest.raises(ValidationError, match="in the future"):
        PagerDutyConfig.model_validate(
            _pagerduty(scheduleLayers=[{"name": "l", "users": ["a@x.example"], "start": future}])
        )
    for stack in ("staging", "prod"):
        for layer in load_stack(ROOT, stack, {}).pagerduty.schedule_layers:
            assert datetime.fromisoformat(layer.start) <= datetime.now(UTC)
