"""How a stack's SLAs and thresholds are stored on the server, and the server's limits on
what the compiler provisions.

Prefect refuses a variable value longer than 5 000 bytes of JSON
(`prefect.types.MAX_VARIABLE_VALUE_LENGTH`): one document of every deployment's SLA (about
45 bytes each) outgrows it at about a hundred deployments, and the refusal would only come
from `apply`, after `check` passed. So the storage grows by variables, not by value:

- `pricechecktn_slas` holds the thresholds of the checks (a fixed set of numbers) and an
  empty `deployments`;
- each deployment with an SLA has its own `pricechecktn_sla__<deployment>` variable,
  `{"deployment": <name>, "max_duration_s": N}` (the name is carried in the value because
  the variable name is a slug of it, see `naming.sla_variable`).

`variable_problems` refuses, at compile time (so in `check`, `render`, `apply` and the
Pulumi program alike), any variable the server would refuse, naming the limit. The flows
read the stored form back with `slas_from_variables`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from prefect.types import MAX_VARIABLE_VALUE_LENGTH

from pricecheck_alerts import naming
from pricecheck_alerts.compile.resources import VariableSpec
from pricecheck_alerts.config.models import Slas


def sla_variables(slas: Slas, tags: tuple[str, ...]) -> tuple[VariableSpec, ...]:
    """The thresholds variable, then one variable per deployment SLA, sorted by name."""
    thresholds = VariableSpec(
        naming.SLAS_VARIABLE,
        {"deployments": {}, "thresholds": slas.thresholds.model_dump(mode="json")},
        tags,
    )
    per_deployment = sorted(
        (
            VariableSpec(
                naming.sla_variable(deployment),
                {"deployment": deployment, **sla.model_dump(mode="json")},
                tags,
            )
            for deployment, sla in slas.deployments.items()
        ),
        key=lambda v: v.name,
    )
    return (thresholds, *per_deployment)


def slas_from_variables(
    document: Mapping[str, Any], deployment_values: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The `Slas` document (to validate) from `pricechecktn_slas` and the values of the
    per-deployment variables. SLAs still inside the document (written by a version that
    kept them all there) count too; a per-deployment variable wins over them."""
    deployments = dict(document.get("deployments") or {})
    for value in deployment_values:
        sla = dict(value)
        deployments[str(sla.pop("deployment"))] = sla
    return {**document, "deployments": deployments}


def value_size(value: Any) -> int:
    """What Prefect measures against MAX_VARIABLE_VALUE_LENGTH: the bytes of orjson's
    encoding (UTF-8, so a non-ASCII character counts two to four)."""
    return len(orjson.dumps(value))


def variable_problems(variables: Iterable[VariableSpec]) -> list[str]:
    """Variables the server would refuse (value size, name length and charset), each
    naming the limit."""
    problems = []
    for variable in variables:
        size = value_size(variable.value)
        if size > MAX_VARIABLE_VALUE_LENGTH:
            problems.append(
                f"variable '{variable.name}': value is {size} bytes of JSON; Prefect refuses a "
                f"variable value over {MAX_VARIABLE_VALUE_LENGTH} "
                f"(prefect.types.MAX_VARIABLE_VALUE_LENGTH)"
            )
        if len(variable.name) > naming.VARIABLE_NAME_MAX:
            problems.append(
                f"variable '{variable.name[:60]}…': name is {len(variable.name)} characters; "
                f"Prefect refuses a variable name over {naming.VARIABLE_NAME_MAX} "
                f"(prefect.types.names.MAX_VARIABLE_NAME_LENGTH)"
            )
        if not re.match(naming.VARIABLE_NAME, variable.name):
            problems.append(
                f"variable '{variable.name}': Prefect takes only lowercase letters, digits, "
                f"dashes and underscores in a variable name"
            )
    return problems
