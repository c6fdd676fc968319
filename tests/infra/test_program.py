"""The Pulumi program per stack under mocks: resource graph, key inputs, secrets, exports.

Expected counts and bodies come from `compile_stack` (the one source), not from literals,
so a new rule changes both sides alike; what is asserted is that the program provisions
exactly the compiled resources, wired and protected correctly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pricecheck_infra.providers import strip_nulls
from pulumi.runtime import rpc

from devtools.pulumi_mocks import StackRun, integration_key
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources, bind_block_ids
from pricecheck_alerts.config.loader import copy_config, load_catalog
from pricecheck_alerts.config.stacks import load_stack

from .harness import ROOT, engine_config, run_stack

STACKS = ["local", "staging", "prod"]
AUTOMATION = "pulumi-python:dynamic/prefect:Automation"
BLOCK = "pulumi-python:dynamic/prefect:BlockDocument"
POOL = "pulumi-python:dynamic/prefect:WorkPool"
VARIABLE = "pulumi-python:dynamic/prefect:Variable"
LIMIT = "pulumi-python:dynamic/prefect:ConcurrencyLimit"
PD = "pagerduty:index/"
PD_TYPES = {
    "pulumi:providers:pagerduty": 1,
    "pagerduty:index/team:Team": 1,
    "pagerduty:index/schedule:Schedule": 1,
    "pagerduty:index/escalationPolicy:EscalationPolicy": 1,
    "pagerduty:index/service:Service": 3,
    "pagerduty:index/serviceIntegration:ServiceIntegration": 3,
}
COMPONENTS = {
    "pricechecktn:prefect:WorkPool",
    "pricechecktn:prefect:NotificationChannels",
    "pricechecktn:prefect:Settings",
    "pricechecktn:prefect:Automations",
}


def compiled(stack: str) -> StackResources:
    """The stack as the program compiles it."""
    return compile_stack(load_catalog(ROOT), load_stack(ROOT, stack, {}))


def plain(value: Any) -> Any:
    """Inputs with secret wrappers removed."""
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def plaintext_strings(value: Any) -> Iterator[str]:
    """Every string not inside a secret wrapper."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from plaintext_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from plaintext_strings(item)
    elif isinstance(value, str):
        yield value


def component(run: StackRun, type_: str) -> str:
    [registration] = run.of_type(type_)
    return registration.urn


@pytest.mark.parametrize("stack", STACKS)
def test_graph_matches_the_compiled_stack(stack: str, stack_runs: dict[str, StackRun]) -> None:
    run = stack_runs[stack]
    resources = compiled(stack)
    pd_enabled = load_stack(ROOT, stack, {}).pagerduty.enabled
    counts = Counter(r.type for r in run.resources)

    assert counts[AUTOMATION] == len(resources.automations)
    assert counts[BLOCK] == len(resources.blocks)
    assert counts[POOL] == len(resources.work_pools) == 1
    assert counts[VARIABLE] == len(resources.variables)
    assert counts[LIMIT] == len(resources.concurrency_limits)
    assert {t for t in counts if t.startswith("pricechecktn:")} == COMPONENTS | (
        {"pricechecktn:pagerduty:OnCall"} if pd_enabled else set()
    )
    assert all(counts[t] == 1 for t in COMPONENTS)
    pd_counts = {
        t: n for t, n in counts.items() if t.startswith(PD) or t == "pulumi:providers:pagerduty"
    }
    memberships = pd_counts.pop("pagerduty:index/teamMembership:TeamMembership", 0)
    config = load_stack(ROOT, stack, {}).pagerduty
    users = {u for layer in config.schedule_layers for u in layer.users}
    assert memberships == len(users | ({config.escalation.lead} if config.escalation else set()))
    assert pd_counts == (PD_TYPES if pd_enabled else {})

    names = {r.name for r in run.of_type(AUTOMATION)}
    assert names == {a.name for a in resources.automations}
    assert {r.name for r in run.of_type(BLOCK)} == {b.name for b in resources.blocks}


@pytest.mark.parametrize("stack", STACKS)
def test_parents_and_dependencies(stack: str, stack_runs: dict[str, StackRun]) -> None:
    run = stack_runs[stack]
    parent_of = {
        AUTOMATION: "pricechecktn:prefect:Automations",
        BLOCK: "pricechecktn:prefect:NotificationChannels",
        POOL: "pricechecktn:prefect:WorkPool",
        VARIABLE: "pricechecktn:prefect:Settings",
    }
    for type_, parent_type in parent_of.items():
        parent = component(run, parent_type)
        assert {r.parent for r in run.of_type(type_)} == {parent}
    for registration in run.resources:
        if registration.type.startswith("pricechecktn:"):
            assert registration.parent.endswith(f"pulumi:pulumi:Stack::pricechecktn-{stack}")
        if registration.type.startswith(PD) or registration.type == "pulumi:providers:pagerduty":
            assert registration.parent == component(run, "pricechecktn:pagerduty:OnCall")

    blocks = {r.name: r.urn for r in run.of_type(BLOCK)}
    for automation in run.of_type(AUTOMATION):
        routes = automation.inputs["routes"]
        assert routes, automation.name
        assert set(automation.dependencies) == {blocks[name] for name in routes}


@pytest.mark.parametrize("stack", STACKS)
def test_automation_inputs_are_the_compiled_bodies(
    stack: str, stack_runs: dict[str, StackRun]
) -> None:
    run = stack_runs[stack]
    stack_config = load_stack(ROOT, stack, {})
    ids = {r.name: f"{r.name}-id" for r in run.of_type(BLOCK)}  # the mocks' ids
    for spec in compiled(stack).automations:
        registration = run.named(AUTOMATION, spec.name)
        inputs = plain(registration.inputs)
        assert inputs["api_url"] == str(stack_config.prefect_api_url)
        body = {k: v for k, v in inputs.items() if k not in {"api_url", "api_key", "routes"}}
        body.pop("__provider")
        assert body == strip_nulls(bind_block_ids(spec.body, ids))


@pytest.mark.parametrize("stack", STACKS)
def test_every_secret_is_marked_secret(stack: str, stack_runs: dict[str, StackRun]) -> None:
    run = stack_runs[stack]
    secret_values = set(run.secrets.values()) | {
        integration_key(r.name)
        for r in run.of_type("pagerduty:index/serviceIntegration:ServiceIntegration")
    }
    assert secret_values
    for registration in run.resources:
        inputs = {k: v for k, v in registration.inputs.items() if k != "__provider"}
        leaked = [s for s in plaintext_strings(inputs) if any(v in s for v in secret_values)]
        assert leaked == [], f"{registration.name} holds secrets in plain text"
    for spec in compiled(stack).blocks:
        block = run.named(BLOCK, spec.name)
        assert "data" in block.secret_outputs and "api_key" in block.secret_outputs
        if spec.secret_inputs:
            assert rpc.is_rpc_secret(block.inputs["data"])
    for integration in run.of_type("pagerduty:index/serviceIntegration:ServiceIntegration"):
        assert integration.secret_outputs == ["integrationKey"]  # the SDK's wire name
    for provider in run.of_type("pulumi:providers:pagerduty"):
        assert rpc.is_rpc_secret(provider.inputs["token"])
    if stack != "local":
        for registration in run.resources:
            if registration.type.startswith("pulumi-python:dynamic/prefect:"):
                assert rpc.is_rpc_secret(registration.inputs["api_key"])
    exported = repr(run.exports)
    assert not any(value in exported for value in secret_values)


def test_local_routing_key_comes_from_config(stack_runs: dict[str, StackRun]) -> None:
    run = stack_runs["local"]
    key = run.secrets["pagerdutyRoutingKey"]
    pagerduty_blocks = [
        r
        for r in run.of_type(BLOCK)
        if r.inputs["block_type_slug"] == "pricechecktn-pagerduty-alert"
    ]
    assert pagerduty_blocks
    for block in pagerduty_blocks:
        assert plain(block.inputs["data"])["routing_key"] == key
    assert "api_key" not in run.of_type(POOL)[0].inputs  # local server: no key


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_pagerduty_wiring(stack: str, stack_runs: dict[str, StackRun]) -> None:
    run = stack_runs[stack]
    config = load_stack(ROOT, stack, {}).pagerduty
    assert config.escalation is not None
    [schedule] = run.of_type("pagerduty:index/schedule:Schedule")
    assert schedule.inputs["timeZone"] == "Africa/Tunis"
    assert [layer["users"] for layer in schedule.inputs["layers"]] == [
        [f"U-{u}" for u in layer.users] for layer in config.schedule_layers
    ]
    [policy] = run.of_type("pagerduty:index/escalationPolicy:EscalationPolicy")
    assert policy.inputs["numLoops"] == 2
    rules = policy.inputs["rules"]
    assert [r["escalationDelayInMinutes"] for r in rules] == [15, 15]
    assert rules[0]["targets"] == [
        {"type": "schedule_reference", "id": f"P{schedule.name.upper()}"}
    ]
    assert rules[1]["targets"] == [{"type": "user_reference", "id": f"U-{config.escalation.lead}"}]
    services = {r.name.removeprefix("pagerduty-"): r for r in run.of_type(PD + "service:Service")}
    assert set(services) == {"pipeline", "data-quality", "model"}
    for domain, service in services.items():
        wanted = config.services[domain]  # type: ignore[index]
        assert service.inputs["acknowledgementTimeout"] == str(wanted.ack_timeout_s)
        assert service.inputs["autoResolveTimeout"] == str(wanted.auto_resolve_timeout_s)
        rule = service.inputs["incidentUrgencyRule"]
        if wanted.urgency == "support-hours":
            assert rule["type"] == "use_support_hours"
            assert service.inputs["supportHours"]["timeZone"] == "Africa/Tunis"
        else:
            assert rule == {"type": "constant", "urgency": wanted.urgency}
    integrations = run.of_type("pagerduty:index/serviceIntegration:ServiceIntegration")
    assert {i.inputs["type"] for i in integrations} == {"events_api_v2_inbound_integration"}
    # Each PagerDuty block gets its own domain's integration key.
    for block in run.of_type(BLOCK):
        if block.inputs["block_type_slug"] != "pricechecktn-pagerduty-alert":
            continue
        domain = block.name.removeprefix(f"pricechecktn-{stack}-pagerduty-")
        key = integration_key(f"pagerduty-{domain}-events-v2")
        assert plain(block.inputs["data"])["routing_key"] == key
        assert run.named(
            PD + "serviceIntegration:ServiceIntegration", f"pagerduty-{domain}-events-v2"
        )
    assert run.exports["pagerdutyServiceIds"] == {
        d: f"P{('pagerduty-' + d).upper()}" for d in ("pipeline", "data-quality", "model")
    }


@pytest.mark.parametrize("stack", STACKS)
def test_exports(stack: str, stack_runs: dict[str, StackRun]) -> None:
    run = stack_runs[stack]
    config = load_stack(ROOT, stack, {})
    assert run.exports["prefectUiUrl"] == str(config.prefect_ui_url)
    assert run.exports["prefectApiUrl"] == str(config.prefect_api_url)
    assert run.exports["workPoolName"] == f"{config.work_pool.name}-id"
    assert run.exports["automationNames"] == sorted(a.name for a in compiled(stack).automations)
    if not config.pagerduty.enabled:
        assert run.exports["pagerdutyServiceIds"] == {}


def test_container_pools_carry_their_job_template(stack_runs: dict[str, StackRun]) -> None:
    for stack in ("staging", "prod"):
        config = load_stack(ROOT, stack, {}).work_pool
        [pool] = stack_runs[stack].of_type(POOL)
        assert pool.inputs["type"] == "kubernetes"
        properties = pool.inputs["base_job_template"]["variables"]["properties"]
        for key, value in config.job_variables.items():
            assert properties[key]["default"] == value
    [local] = stack_runs["local"].of_type(POOL)
    assert local.inputs["type"] == "process"


def _normalized(run: StackRun) -> dict[tuple[str, str], dict[str, Any]]:
    """Inputs with staging's environment name and Prefect URLs (prefectApiUrl, prefectUiUrl)
    swapped for prod's, so what remains different is the rest of the config."""
    staging, prod = load_stack(ROOT, "staging", {}), load_stack(ROOT, "prod", {})
    urls = {
        str(staging.prefect_api_url): str(prod.prefect_api_url),
        str(staging.prefect_ui_url): str(prod.prefect_ui_url),
    }

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in urls.items():
                value = value.replace(old, new)
            return value.replace("staging", "prod").replace("Staging", "Prod")
        if isinstance(value, dict):
            return {swap(k): swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    return {
        (r.type, swap(r.name)): swap(
            {k: v for k, v in plain(r.inputs).items() if k != "__provider"}
        )
        for r in run.resources
    }


def test_staging_and_prod_differ_only_where_their_config_does(
    stack_runs: dict[str, StackRun],
) -> None:
    staging, prod = _normalized(stack_runs["staging"]), _normalized(stack_runs["prod"])
    assert set(staging) == set(prod)  # same resources, same names up to the environment
    differing = {
        (type_, name, key)
        for (type_, name), inputs in prod.items()
        for key in set(inputs) | set(staging[(type_, name)])
        if inputs.get(key) != staging[(type_, name)].get(key)
    }
    by_kind = {(t.rsplit(":", 1)[-1], k) for t, _, k in differing}
    # Exactly the settings the two stack files set differently.
    assert sorted(by_kind) == sorted(
        {
            ("WorkPool", "concurrency_limit"),  # workPool.concurrencyLimit
            ("WorkPool", "base_job_template"),  # workPool.jobVariables
            ("Team", "name"),  # pagerduty.team
            ("Service", "incidentUrgencyRule"),  # pagerduty.services.*.urgency
            ("Service", "supportHours"),
            ("Service", "scheduledActions"),
            ("BlockDocument", "data"),  # email.to
            ("Variable", "value"),  # slaOverrides
            ("ConcurrencyLimit", "limit"),  # concurrencyLimits
            ("Automation", "trigger"),  # slaOverrides → the SLA automation's `within`
            ("Automation", "description"),
            ("Automation", "actions"),
        }
    )
    sla_automations = {n for t, n, _ in differing if t == AUTOMATION}
    assert sla_automations == {"pricechecktn/prod/run-duration-sla/pricechecktn-pipeline"}
    blocks = {n for t, n, _ in differing if t == BLOCK}
    assert blocks == {"pricechecktn-prod-email"}


PROTECTED_IN_PROD = {
    "pagerduty:index/team:Team",
    "pagerduty:index/schedule:Schedule",
    "pagerduty:index/escalationPolicy:EscalationPolicy",
    "pagerduty:index/service:Service",
    "pagerduty:index/serviceIntegration:ServiceIntegration",
    "pulumi-python:dynamic/prefect:WorkPool",
}


def test_prod_protects_what_pages_people(stack_runs: dict[str, StackRun]) -> None:
    """`protect`: Pulumi refuses to delete these until the flag is lifted (prod only)."""
    prod = stack_runs["prod"]
    protected = {(r.type, r.name) for r in prod.resources if r.protect}
    assert {t for t, _ in protected} == PROTECTED_IN_PROD
    for type_ in PROTECTED_IN_PROD:
        assert all(r.protect for r in prod.of_type(type_)), type_
    assert len(prod.of_type("pagerduty:index/service:Service")) == 3
    for stack in ("local", "staging"):
        assert not any(r.protect for r in stack_runs[stack].resources), stack


def test_settings_come_from_pulumi_config_not_the_stack_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_runs: dict[str, StackRun]
) -> None:
    """The whole staging config reaches the program through Pulumi's config (as ESC,
    `--config-file` or `config set --path` would hand it) with no stack file anywhere:
    the same resources, with the same inputs."""
    copy_config(ROOT, tmp_path)
    for stack_file in (tmp_path / "infra").glob("Pulumi.*.yaml"):
        stack_file.unlink()
    assert not list(tmp_path.rglob("Pulumi.*.yaml"))
    config, _ = engine_config("staging")
    run = run_stack("staging", monkeypatch, config=config, root=tmp_path)
    expected = stack_runs["staging"]
    registered = {(r.type, r.name): r.inputs for r in run.resources}
    assert registered == {(r.type, r.name): r.inputs for r in expected.resources}
    assert len(registered) == len(run.resources) > 40


def test_a_config_set_value_changes_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pulumi config set --path 'pricechecktn:workPool.concurrencyLimit' 7` reaches the
    pool: the program reads the engine's config, not the file."""
    config, _ = engine_config("staging")
    pool = json.loads(config["pricechecktn:workPool"])
    config["pricechecktn:workPool"] = json.dumps({**pool, "concurrencyLimit": 7})
    run = run_stack("staging", monkeypatch, config=config)
    [registered] = run.of_type("pulumi-python:dynamic/prefect:WorkPool")
    assert registered.inputs["concurrency_limit"] == 7


def test_plain_text_secret_in_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = engine_config("staging")
    with pytest.raises(Exception, match="a secret in plain text"):
        run_stack("staging", monkeypatch, config=config, secret_keys=[])
