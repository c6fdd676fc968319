"""The rules of `rules.py` as pulumi-policy policies (all mandatory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from pricecheck_policy import rules


def to_res(resource: ResourceValidationArgs | PolicyResource) -> rules.Res:
    opts = getattr(resource, "opts", None)
    return rules.Res(
        type=resource.resource_type,
        name=resource.name,
        urn=resource.urn,
        props=resource.props,
        secret_outputs=tuple(getattr(opts, "additional_secret_outputs", None) or ()),
    )


def _resource_policy(
    name: str, description: str, check: Callable[[rules.Res], list[str]]
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for problem in check(to_res(args)):
            report_violation(problem, args.urn)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _critical_rules_page(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [to_res(r) for r in args.resources]
    stack = rules.stack_of(resources[0].urn) if resources else ""
    for problem in rules.critical_rules_page(resources, stack):
        report_violation(problem, None)


def policies() -> list[Any]:
    return [
        StackValidationPolicy(
            name="prod-critical-rules-page-pagerduty",
            description="On prod, every critical alert automation notifies PagerDuty.",
            validate=_critical_rules_page,
            enforcement_level=EnforcementLevel.MANDATORY,
        ),
        _resource_policy(
            "no-plaintext-secrets",
            "Webhook URLs, keys and passwords only in secret inputs marked secret.",
            rules.plaintext_secrets,
        ),
        _resource_policy(
            "automation-has-runbook-link",
            "Every alert notification links its runbook.",
            rules.runbook_links,
        ),
        _resource_policy(
            "prefect-api-authenticated",
            "Outside the local stack, Prefect is reached with an auth string or an API key.",
            lambda res: rules.authenticated_connection(res, rules.stack_of(res.urn)),
        ),
        _resource_policy(
            "sla-within-bounds",
            f"Run-duration SLAs within [{rules.SLA_MIN_S}, {rules.SLA_MAX_S}] s; shares in (0, 1].",
            lambda res: rules.sla_bounds(res, rules.stack_of(res.urn)),
        ),
    ]
