"""Rules + stack config → the Prefect resources of that stack. Pure: no I/O, no secrets.

What `render` shows, what `apply` provisions, what the Pulumi program provisions and what
the tests check are all this function's output.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from prefect.events.schemas.automations import Posture

from pricecheck_alerts import naming
from pricecheck_alerts.compile.resources import (
    AutomationSpec,
    BlockDocumentSpec,
    ConcurrencyLimitSpec,
    StackResources,
    WorkPoolSpec,
)
from pricecheck_alerts.compile.slas import sla_variables, variable_problems
from pricecheck_alerts.compile.template import facts_template
from pricecheck_alerts.compile.triggers import event_trigger, send_notification, validate_automation
from pricecheck_alerts.config.loader import Catalog, ConfigError, shorten
from pricecheck_alerts.config.models import (
    Channel,
    DeliveryFailedTrigger,
    FailureBudgetTrigger,
    FlowRunStateTrigger,
    PipelineEventTrigger,
    Rule,
    RunDurationSlaTrigger,
    Scope,
    Severity,
    Slas,
    TaskRunFailedTrigger,
)
from pricecheck_alerts.config.stacks import SLACK_SECRET, StackConfig, pagerduty_key
from pricecheck_alerts.notify import EmailAlert, PagerDutyAlert, SlackAlert

# A recovery resolves incidents opened up to this long before it; older ones are left to
# PagerDuty's auto-resolve timeout.
RECOVERY_WINDOW = timedelta(days=7)
DELIVERY_FAILURE_WINDOW = timedelta(minutes=15)
# Every state a flow run can end in: the SLA clock stops at any of them.
TERMINAL_FLOW_RUN_EVENTS = [
    naming.flow_run_event(state)
    for state in ("Completed", "Failed", "TimedOut", "Crashed", "Cancelled", "Cancelling")
]
_OBJECTS_FOR_RUNS = ("event", "flow_run", "flow", "deployment")


def scope_filters(scope: Scope) -> list[dict[str, Any]]:
    """`match_related` filters: all must hold; an empty scope matches every run."""
    filters = []
    if scope.deployments:
        filters.append(
            {
                "prefect.resource.role": "deployment",
                "prefect.resource.name": list(scope.deployments),
            }
        )
    if scope.flows:
        filters.append(
            {"prefect.resource.role": "flow", "prefect.resource.name": list(scope.flows)}
        )
    if scope.tags:
        filters.append(
            {
                "prefect.resource.role": "tag",
                "prefect.resource.id": [f"prefect.tag.{t}" for t in scope.tags],
            }
        )
    return filters


def _static(rule: Rule, stack: StackConfig, **extra: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "rule": rule.name,
        "title": rule.message,
        "description": rule.description,
        "severity": rule.severity.value,
        "runbook": stack.runbook_url(rule.runbook),
        "environment": stack.environment,
        "ui_url": str(stack.prefect_ui_url),
    }
    if isinstance(rule.trigger, TaskRunFailedTrigger):
        facts["classify_tags"] = list(rule.trigger.classify_tags)
    facts.update(extra)
    return facts


def _actions(
    rule: Rule,
    channels: list[Channel],
    stack: StackConfig,
    static: dict[str, Any],
    objects: tuple[str, ...],
) -> list[dict[str, Any]]:
    body = facts_template(static, objects)
    subject = f"[{rule.severity.value.upper()}][{stack.environment}] {rule.message}"
    actions = []
    for channel in channels:
        domain = rule.pagerduty_domain if channel is Channel.pagerduty else None
        block = naming.block_name(stack.environment, channel.value, domain)
        actions.append(send_notification(block, subject, body))
    return actions


def _automation(
    name: str,
    description: str,
    rule: Rule,
    stack: StackConfig,
    trigger: dict[str, Any],
    actions: list[dict[str, Any]],
) -> AutomationSpec:
    body = {
        "name": name,
        "description": description,
        "enabled": rule.enabled,
        "tags": sorted(
            [
                naming.MANAGED_TAG,
                naming.stack_tag(stack.name),
                f"rule:{rule.name}",
                f"severity:{rule.severity.value}",
            ]
        ),
        "trigger": trigger,
        "actions": actions,
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }
    validate_automation(body)
    return AutomationSpec(name=name, body=body)


def _per_event(
    rule: Rule,
    channels: list[Channel],
    stack: StackConfig,
    name: str,
    match: dict[str, Any],
    expect: list[str],
    objects: tuple[str, ...],
) -> AutomationSpec:
    """An automation that alerts once for every matching event."""
    trigger = event_trigger(match=match, expect=expect, related=scope_filters(rule.scope))
    actions = _actions(rule, channels, stack, _static(rule, stack), objects)
    return _automation(name, rule.description, rule, stack, trigger, actions)


def compile_rule(
    rule: Rule, channels: list[Channel], stack: StackConfig, slas: Slas
) -> list[AutomationSpec]:
    """The automations one rule needs on one stack."""
    name = naming.automation_name(stack.environment, rule.name)
    trigger = rule.trigger
    if isinstance(trigger, FlowRunStateTrigger):
        specs = [
            _per_event(
                rule,
                channels,
                stack,
                name,
                {"prefect.resource.id": "prefect.flow-run.*"},
                [naming.flow_run_event(s) for s in trigger.states],
                _OBJECTS_FOR_RUNS,
            )
        ]
        # Recoveries skip e-mail: a rule routed to e-mail only has nobody to tell.
        if rule.resolve_on_recovery and any(c is not Channel.email for c in channels):
            specs.append(_resolve_automation(rule, channels, stack, scope_filters(rule.scope)))
        return specs
    if isinstance(trigger, TaskRunFailedTrigger):
        return [
            _per_event(
                rule,
                channels,
                stack,
                name,
                {"prefect.resource.id": "prefect.task-run.*"},
                ["prefect.task-run.Failed"],
                (*_OBJECTS_FOR_RUNS, "task_run"),
            )
        ]
    if isinstance(trigger, PipelineEventTrigger):
        return [
            _per_event(
                rule, channels, stack, name, {}, [trigger.event], (*_OBJECTS_FOR_RUNS, "signal")
            )
        ]
    if isinstance(trigger, DeliveryFailedTrigger):
        return [_delivery_failed_automation(rule, channels, stack)]
    if isinstance(trigger, FailureBudgetTrigger):
        return [
            _failure_budget_automation(rule, channels, stack, deployment, sla.max_failures_per_day)
            for deployment, sla in sorted(slas.deployments.items())
            if sla.max_failures_per_day is not None
        ]
    assert isinstance(trigger, RunDurationSlaTrigger)
    related = scope_filters(rule.scope)
    return [
        _sla_automation(rule, channels, stack, deployment, sla.max_duration_s, related)
        for deployment, sla in sorted(slas.deployments.items())
    ]


def _delivery_failed_automation(
    rule: Rule, channels: list[Channel], stack: StackConfig
) -> AutomationSpec:
    """Lost deliveries of this stack's alerts, one alert per dead channel block and window:
    a dead webhook behind a storm of alerts must not become a storm of pages. It watches
    `pricechecktn/<env>/*` and is named outside it, so its own failures cannot loop."""
    trigger = event_trigger(
        match={
            "prefect.resource.id": "prefect.automation.*",
            "prefect.resource.name": f"{naming.automation_prefix(stack.environment)}*",
        },
        related=scope_filters(rule.scope),
        expect=["prefect.automation.action.failed"],
        for_each=["related:block:prefect.resource.id"],
        within=DELIVERY_FAILURE_WINDOW,
    )
    actions = _actions(rule, channels, stack, _static(rule, stack), ("event", "signal", "delivery"))
    return _automation(
        naming.meta_automation_name(stack.environment, rule.name),
        rule.description,
        rule,
        stack,
        trigger,
        actions,
    )


def _sla_automation(
    rule: Rule,
    channels: list[Channel],
    stack: StackConfig,
    deployment: str,
    max_duration_s: int,
    related: list[dict[str, Any]],
) -> AutomationSpec:
    """A proactive trigger: after a run starts Running, expect a terminal state within the
    SLA; per run (`for_each` resource id), or it would misfire across runs."""
    trigger = event_trigger(
        posture=Posture.Proactive,
        match={"prefect.resource.id": "prefect.flow-run.*"},
        related=[
            {"prefect.resource.role": "deployment", "prefect.resource.name": deployment},
            *related,
        ],
        after=[naming.flow_run_event("Running")],
        expect=TERMINAL_FLOW_RUN_EVENTS,
        within=timedelta(seconds=max_duration_s),
    )
    static = _static(rule, stack, max_duration_s=max_duration_s)
    return _automation(
        naming.automation_name(stack.environment, rule.name, deployment),
        f"{rule.description} ({deployment}: {max_duration_s} s)",
        rule,
        stack,
        trigger,
        _actions(rule, channels, stack, static, _OBJECTS_FOR_RUNS),
    )


FAILURE_BUDGET_WINDOW = timedelta(days=1)
FAILURE_EVENTS = [naming.flow_run_event(s) for s in ("Failed", "Crashed", "TimedOut")]


def _failure_budget_automation(
    rule: Rule, channels: list[Channel], stack: StackConfig, deployment: str, budget: int
) -> AutomationSpec:
    """A reactive threshold: the `budget + 1`-th failure of the deployment within 24 h
    fires it. Prefect then waits out the rest of the window before counting again, so it
    is one alert per window, however many more failures follow."""
    trigger = event_trigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        related=[
            {"prefect.resource.role": "deployment", "prefect.resource.name": deployment},
            *scope_filters(rule.scope),
        ],
        expect=FAILURE_EVENTS,
        for_each=["related:deployment:prefect.resource.id"],
        threshold=budget + 1,
        within=FAILURE_BUDGET_WINDOW,
    )
    static = _static(rule, stack, max_failures_per_day=budget)
    return _automation(
        naming.automation_name(stack.environment, rule.name, deployment),
        f"{rule.description} ({deployment}: more than {budget} in 24 h)",
        rule,
        stack,
        trigger,
        _actions(rule, channels, stack, static, _OBJECTS_FOR_RUNS),
    )


def _resolve_automation(
    rule: Rule, channels: list[Channel], stack: StackConfig, related: list[dict[str, Any]]
) -> AutomationSpec:
    """Next Completed run of the same deployment (and flow) after this rule's states:
    resolve with the same dedup key. `after` makes it fire only after a failure."""
    assert isinstance(rule.trigger, FlowRunStateTrigger)
    trigger = event_trigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        related=related,
        after=[naming.flow_run_event(s) for s in rule.trigger.states],
        expect=[naming.flow_run_event("Completed")],
        for_each=["related:deployment:prefect.resource.id", "related:flow:prefect.resource.id"],
        within=RECOVERY_WINDOW,
    )
    # A recovery is good news: it goes to Slack channels and PagerDuty, not to e-mail.
    resolve_channels: list[Channel] = [c for c in channels if c is not Channel.email]
    static = _static(rule, stack, action="resolve")
    return _automation(
        naming.automation_name(stack.environment, rule.name, "resolve"),
        f"Resolve '{rule.name}' when the same deployment next completes a run.",
        rule,
        stack,
        trigger,
        _actions(rule, resolve_channels, stack, static, _OBJECTS_FOR_RUNS),
    )


SEND_TEST = Rule(
    name="send-test",
    description=(
        "A test alert sent on request by `pricecheck-alerts send-test`, through the server's "
        "own block for the channel: it proves the plugin, the secret and the destination."
    ),
    severity=Severity.info,
    trigger=PipelineEventTrigger(kind="event", event=naming.SEND_TEST_EVENT, external=True),
    message="TEST alert, nothing to do",
    runbook="docs/runbooks/send-test.md",
)


def send_test_automations(
    stack: StackConfig, used: set[tuple[Channel, str | None]]
) -> list[AutomationSpec]:
    """One automation per block of the stack, fired by a `pricechecktn.alerting.send_test`
    event that names the block's channel. Named outside `pricechecktn/<env>/*`: a failed
    test is reported to whoever asked, not turned into a delivery-failed page or retried.
    A PagerDuty test triggers then resolves the same dedup key, so nobody stays paged."""
    specs = []
    for channel, domain in sorted(used, key=lambda u: (u[0].value, u[1] or "")):
        block = naming.block_name(stack.environment, channel.value, domain)
        suffix = block.removeprefix(naming.block_prefix(stack.environment))
        trigger = event_trigger(
            match={
                "prefect.resource.id": f"{naming.PROJECT}.send-test.*",
                naming.SEND_TEST_CHANNEL_LABEL: channel.value,
            },
            expect=[naming.SEND_TEST_EVENT],
        )
        subject = f"[TEST][{stack.environment}] {SEND_TEST.message}"
        actions = [
            send_notification(
                block, subject, facts_template(_static(SEND_TEST, stack), ("event", "signal"))
            )
        ]
        if channel is Channel.pagerduty:
            resolve = _static(SEND_TEST, stack, action="resolve")
            actions.append(
                send_notification(block, subject, facts_template(resolve, ("event", "signal")))
            )
        specs.append(
            _automation(
                naming.meta_automation_name(stack.environment, f"{SEND_TEST.name}/{suffix}"),
                SEND_TEST.description,
                SEND_TEST,
                stack,
                trigger,
                actions,
            )
        )
    return specs


def _unknown_sla_deployments(catalog: Catalog, stack: StackConfig, slas: Slas) -> list[str]:
    """SLAs (the stack's overrides included) for deployments that neither prefect.yaml nor
    the stack's `extraDeployments` define: they would never be checked."""
    if catalog.deployments is None:
        return []
    defined = catalog.deployments | set(stack.extra_deployments)
    known = ", ".join(sorted(defined)) or "none"
    return [
        f"infra/Pulumi.{stack.name}.yaml: field 'slaOverrides.deployments.{shorten(name)}': "
        f"no deployment '{shorten(name)}' in prefect.yaml or extraDeployments (known: {known})"
        for name in slas.deployments
        if name not in defined
    ]


def _channel_problems(rule: Rule, channels: list[Channel], stack: StackConfig) -> list[str]:
    """Channels a stack cannot serve. Secrets are not checked here: they come from Pulumi
    secret config or the environment, and whoever provisions checks they are there."""
    if Channel.email in channels and stack.email is None:
        return [
            f"rule '{rule.name}': channel 'email' needs 'email' settings in "
            f"infra/Pulumi.{stack.name}.yaml"
        ]
    return []


def _block_spec(stack: StackConfig, channel: Channel, domain: str | None) -> BlockDocumentSpec:
    name = naming.block_name(stack.environment, channel.value, domain)
    if channel in SLACK_SECRET:
        return BlockDocumentSpec(
            name, SlackAlert.get_block_type_slug(), {}, {"url": SLACK_SECRET[channel]}
        )
    if channel is Channel.pagerduty:
        assert domain is not None
        return BlockDocumentSpec(
            name,
            PagerDutyAlert.get_block_type_slug(),
            {"events_url": stack.pagerduty.events_url},
            {"routing_key": pagerduty_key(domain)},
        )
    email = stack.email
    assert email is not None
    data = {
        "smtp_server": email.smtp_host,
        "smtp_port": email.smtp_port,
        "smtp_type": email.smtp_type,
        "username": email.username,
        "sender": email.sender,
        "recipients": list(email.recipients),
    }
    # An SMTP login needs a password, which is a secret; without a username there is none.
    secrets = {"password": "smtpPassword"} if email.username else {}
    return BlockDocumentSpec(name, EmailAlert.get_block_type_slug(), data, secrets)


def compile_stack(catalog: Catalog, stack: StackConfig) -> StackResources:
    """Every Prefect resource of `stack`; raises ConfigError if a rule cannot be routed."""
    routes = catalog.routes.for_stack(stack.name)
    slas = stack.effective_slas(catalog.slas)
    automations: list[AutomationSpec] = []
    used: set[tuple[Channel, str | None]] = set()
    problems = _unknown_sla_deployments(catalog, stack, slas)
    for rule in catalog.rules:
        channels = list(rule.channels) if rule.channels is not None else routes[rule.severity]
        problems += _channel_problems(rule, channels, stack)
        used |= {(c, rule.pagerduty_domain if c is Channel.pagerduty else None) for c in channels}
        automations += compile_rule(rule, channels, stack, slas)
    automations += send_test_automations(stack, used)
    variables = sla_variables(slas, (naming.MANAGED_TAG, naming.stack_tag(stack.name)))
    problems += variable_problems(variables)  # what apply would be refused, told by check
    if problems:
        raise ConfigError(problems)
    pool = stack.work_pool
    return StackResources(
        stack=stack.name,
        environment=stack.environment,
        blocks=tuple(
            _block_spec(stack, c, d)
            for c, d in sorted(used, key=lambda u: (u[0].value, u[1] or ""))
        ),
        automations=tuple(sorted(automations, key=lambda a: a.name)),
        work_pools=(
            WorkPoolSpec(
                pool.name,
                pool.type,
                f"PriceCheckTN {stack.environment} flows",
                pool.concurrency_limit,
                dict(pool.job_variables),
                copy.deepcopy(pool.base_job_template),
            ),
        ),
        concurrency_limits=tuple(
            ConcurrencyLimitSpec(name, limit)
            for name, limit in sorted(stack.concurrency_limits.items())
        ),
        variables=variables,
    )
