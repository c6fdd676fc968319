"""Run-duration SLAs fit any number of deployments: one variable per deployment, each far
under Prefect's 5 000-byte limit on a variable value, checked at compile time (so `check`
says what `apply` would be refused), provisioned, pruned and read back by the flows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.types import MAX_VARIABLE_VALUE_LENGTH

from devtools.stack_tree import add_stack
from flows.config import provisioned_slas
from pricecheck_alerts import naming
from pricecheck_alerts.cli import main
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import StackResources, VariableSpec
from pricecheck_alerts.compile.slas import value_size, variable_problems
from pricecheck_alerts.config.loader import ConfigError, load_catalog
from pricecheck_alerts.config.models import Slas
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision import Variables
from pricecheck_alerts.provision.apply import apply_stack
from pricecheck_alerts.provision.client import all_pages, prefect_client

STACK = "slastore"
DEPLOYMENTS = 500
SECRETS_ENV = {
    "PRICECHECK_SLACK_CRITICAL_URL": "http://127.0.0.1:9/slack/critical",
    "PRICECHECK_SLACK_WARNINGS_URL": "http://127.0.0.1:9/slack/warnings",
    "PRICECHECK_SLACK_INFO_URL": "http://127.0.0.1:9/slack/info",
    "PRICECHECK_PAGERDUTY_ROUTING_KEY": "s" * 32,
}


def names(count: int) -> list[str]:
    """Deployment names as people write them: mostly slugs, some a variable name cannot
    hold as they are (capitals, spaces, dots)."""
    return [
        f"Shop Sync {n}.v2" if n % 10 == 0 else f"pricechecktn-shop-{n:04d}" for n in range(count)
    ]


def write_slas(tree: Path, deployments: list[str]) -> None:
    """SLAs for `deployments`, which prefect.yaml then defines too (an SLA for a deployment
    that does not exist is refused)."""
    project = tree / "prefect.yaml"
    data = yaml.safe_load(project.read_text())
    data["deployments"] += [
        {"name": name, "entrypoint": "flows/pipeline.py:pricechecktn_pipeline"}
        for name in deployments
    ]
    project.write_text(yaml.safe_dump(data, allow_unicode=True))
    path = tree / "automations" / "slas.yaml"
    data = yaml.safe_load(path.read_text())
    data["deployments"] = {
        **data.get("deployments", {}),
        **{name: {"max_duration_s": 600 + i} for i, name in enumerate(deployments)},
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def compiled(tree: Path) -> StackResources:
    return compile_stack(load_catalog(tree), load_stack(tree, STACK, SECRETS_ENV))


@pytest.fixture
def big_tree(tree: Path, project_root: Path) -> Path:
    add_stack(project_root, tree, STACK)
    write_slas(tree, names(DEPLOYMENTS))
    return tree


def test_500_slas_compile_into_variables_the_server_takes(big_tree: Path) -> None:
    resources = compiled(big_tree)
    effective = load_stack(big_tree, STACK, SECRETS_ENV).effective_slas(
        load_catalog(big_tree).slas
    )
    slas = {v.name: v for v in resources.variables}
    assert len(slas) == 1 + len(effective.deployments) >= 1 + DEPLOYMENTS
    assert variable_problems(resources.variables) == []
    assert max(value_size(v.value) for v in resources.variables) < MAX_VARIABLE_VALUE_LENGTH
    # the single document they replace would have been refused
    one_document = Slas.model_validate(load_catalog(big_tree).slas.model_dump())
    assert value_size(one_document.model_dump(mode="json")) > MAX_VARIABLE_VALUE_LENGTH
    # one SLA automation per deployment, as before
    sla_automations = [a for a in resources.automations if "/run-duration-sla/" in a.name]
    assert len(sla_automations) >= DEPLOYMENTS


def test_a_value_over_the_server_limit_fails_check_naming_the_limit(
    tree: Path, project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_stack(project_root, tree, STACK)
    write_slas(tree, ["x" * (MAX_VARIABLE_VALUE_LENGTH + 10)])
    with pytest.raises(ConfigError) as caught:
        compiled(tree)
    [problem] = [p for p in caught.value.problems if "MAX_VARIABLE_VALUE_LENGTH" in p]
    assert f"over {MAX_VARIABLE_VALUE_LENGTH}" in problem
    assert main(["--root", str(tree), "check", "--stack", STACK]) == 1
    said = capsys.readouterr()
    assert "MAX_VARIABLE_VALUE_LENGTH" in said.out + said.err


def test_variable_names_are_held_to_the_server_rules() -> None:
    long = naming.sla_variable("Ünïcode déploiement " * 30)
    assert len(long) <= naming.VARIABLE_NAME_MAX and long.startswith(naming.SLA_VARIABLE_PREFIX)
    assert naming.sla_variable("nightly-run") == "pricechecktn_sla__nightly-run"
    assert naming.sla_variable("Nightly Run") != naming.sla_variable("nightly run")
    bad = [VariableSpec("Bad Name", 1), VariableSpec("x" * 300, 1)]
    problems = variable_problems(bad)
    assert any("lowercase letters" in p for p in problems)
    assert any("MAX_VARIABLE_NAME_LENGTH" in p for p in problems)


def stack_variables(stack: str) -> dict[str, Any]:
    return Variables().tagged([naming.MANAGED_TAG, naming.stack_tag(stack)])


@pytest.fixture
def cleanup(prefect_server: object) -> Iterator[None]:
    """The server as it was: this stack's automations and variables go, and the managed
    variables other stacks on this shared server hold come back. Variable names are
    global on a server: `pricechecktn_slas` and the SLAs of deployments both stacks name
    (this one copies the local stack's settings) are the same variables."""
    variables = Variables()
    before = variables.tagged([naming.MANAGED_TAG])
    yield
    with prefect_client() as client:
        automations = all_pages(
            lambda offset, limit: client.read_automations(offset=offset, limit=limit)
        )
        for automation in automations:
            if naming.stack_tag(STACK) in automation.tags:
                client.delete_automation(automation.id)
    for name in stack_variables(STACK):
        variables.delete(name)
    for name, held in before.items():
        if variables.read(name) is None:
            variables.create(held)
        else:
            variables.update(name, held)


def test_500_slas_apply_prune_and_read_back(big_tree: Path, cleanup: None) -> None:
    resources = compiled(big_tree)
    secrets = resolve_secrets(big_tree, STACK, SECRETS_ENV)
    shared = set(Variables().tagged([naming.MANAGED_TAG]))  # another stack's, same name
    report = apply_stack(resources, secrets)
    written = report.counts[("variable", "created")] + report.counts[("variable", "updated")]
    assert written == len(resources.variables), report.lines()
    assert report.counts[("variable", "updated")] <= len(shared)
    expected = load_stack(big_tree, STACK, SECRETS_ENV).effective_slas(
        load_catalog(big_tree).slas
    )
    assert provisioned_slas() == expected
    assert len(expected.deployments) >= DEPLOYMENTS

    again = apply_stack(resources, secrets)
    assert again.writes == 0, again.lines()

    # 100 deployments leave slas.yaml: their variables (and SLA automations) go
    kept = names(DEPLOYMENTS)[100:]
    original = yaml.safe_load((big_tree / "automations" / "slas.yaml").read_text())
    original["deployments"] = {
        k: v for k, v in original["deployments"].items() if k not in names(100)
    }
    (big_tree / "automations" / "slas.yaml").write_text(yaml.safe_dump(original))
    fewer = compiled(big_tree)
    pruned = apply_stack(fewer, secrets)
    assert pruned.counts[("variable", "deleted")] == 100, pruned.lines()
    assert set(stack_variables(STACK)) == {v.name for v in fewer.variables}
    read_back = provisioned_slas()
    assert read_back is not None and set(kept) <= set(read_back.deployments)
    assert not set(names(100)) & set(read_back.deployments)
