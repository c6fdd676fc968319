"""Typed models for the alerting data kept in `automations/`: rules, routes and SLAs.

Every model forbids unknown keys so that a typo in a YAML file is an error, not a rule
that silently never fires.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from pricecheck_alerts.naming import EVENT_NAME

RULE_NAME = r"^[a-z][a-z0-9-]{1,62}$"
Name = Annotated[str, Field(min_length=1, max_length=200)]
"""A deployment, flow or tag name in a scope."""


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    critical = "critical"
    warning = "warning"
    info = "info"


class Channel(StrEnum):
    """The destinations an alert can reach; each stack configures where they point."""

    slack_critical = "slack-critical"
    slack_warnings = "slack-warnings"
    slack_info = "slack-info"
    pagerduty = "pagerduty"
    email = "email"


Domain = Literal["pipeline", "data-quality", "model"]
"""PagerDuty service an alert belongs to (one service per domain in managed stacks)."""

FlowRunStateName = Literal[
    "Failed", "Crashed", "TimedOut", "Cancelled", "Completed", "Running", "Late"
]


class Scope(Strict):
    """Which runs a rule watches. Empty means all; each non-empty field narrows (AND)."""

    deployments: list[Name] = Field(default_factory=list)
    flows: list[Name] = Field(default_factory=list)
    tags: list[Name] = Field(default_factory=list)


class FlowRunStateTrigger(Strict):
    """A flow run entered one of `states` (a `prefect.flow-run.<State>` event)."""

    kind: Literal["flow-run-state"]
    states: list[FlowRunStateName] = Field(min_length=1)


class TaskRunFailedTrigger(Strict):
    """A task run ended Failed, i.e. after its last retry.

    Task runs tagged with one of `classify_tags` get their error classified
    (timeout / HTTP 401-403 / connection / other) with advice on what to do.
    """

    kind: Literal["task-run-failed"]
    classify_tags: list[str] = Field(default_factory=list)


class RunDurationSlaTrigger(Strict):
    """A flow run is still running after its deployment's `max_duration_s` (slas.yaml)."""

    kind: Literal["run-duration-sla"]


class PipelineEventTrigger(Strict):
    """A custom `pricechecktn.<area>.<signal>` event emitted by a pipeline check.

    The event must be in the signal catalog (`automations/signals.yaml`), or the rule says
    `external: true`: an event something outside the pipeline emits on purpose."""

    kind: Literal["event"]
    event: Annotated[str, Field(pattern=EVENT_NAME)]
    external: StrictBool = False


class DeliveryFailedTrigger(Strict):
    """An alert of this stack could not be delivered (`prefect.automation.action.failed`):
    a dead webhook, a revoked routing key, an SMTP server that refuses us."""

    kind: Literal["delivery-failed"]


class FailureBudgetTrigger(Strict):
    """A deployment failed (Failed, Crashed or TimedOut) more than its
    `max_failures_per_day` (slas.yaml) within 24 hours: one alert per window, not per
    failure."""

    kind: Literal["failure-budget"]


Trigger = Annotated[
    FlowRunStateTrigger
    | TaskRunFailedTrigger
    | RunDurationSlaTrigger
    | PipelineEventTrigger
    | DeliveryFailedTrigger
    | FailureBudgetTrigger,
    Field(discriminator="kind"),
]


class Rule(Strict):
    """One alert rule: what to watch, how bad it is, what to say and where to send it."""

    name: Annotated[str, Field(pattern=RULE_NAME)]
    description: str = Field(min_length=1, max_length=500)
    severity: Severity
    scope: Scope = Field(default_factory=Scope)
    trigger: Trigger
    message: str = Field(min_length=1, max_length=200)
    runbook: str = Field(min_length=1)
    channels: list[Channel] | None = Field(default=None, min_length=1)
    domain: Domain | None = None
    # Strict: YAML's `'false'` is a string, and pydantic would quietly read it as False.
    resolve_on_recovery: StrictBool = False
    enabled: StrictBool = True

    @field_validator("runbook")
    @classmethod
    def _runbook_is_link(cls, value: str) -> str:
        if not (value.startswith(("https://", "http://")) or value.startswith("docs/")):
            raise ValueError("must be an http(s) URL or a path under docs/ in this repository")
        return value

    @property
    def pagerduty_domain(self) -> Domain:
        """Explicit `domain`, else derived: run outcomes are pipeline problems, pipeline
        signals belong to the area in their event name."""
        if self.domain:
            return self.domain
        if isinstance(self.trigger, PipelineEventTrigger):
            area = self.trigger.event.split(".")[1]
            if area == "model":
                return "model"
            if area in {"data", "scraping", "matching"}:
                return "data-quality"
        return "pipeline"

    @model_validator(mode="after")
    def _resolve_needs_flow_run_state(self) -> Rule:
        if self.resolve_on_recovery and not isinstance(self.trigger, FlowRunStateTrigger):
            raise ValueError("resolve_on_recovery is only valid for flow-run-state triggers")
        return self


class RuleFile(Strict):
    rules: list[Rule] = Field(min_length=1)


ChannelList = Annotated[list[Channel], Field(min_length=1)]
"""Where a severity goes: never empty, or its alerts would reach nobody."""


class Routes(Strict):
    """Severity → channels, with per-stack overrides of the defaults."""

    defaults: dict[Severity, ChannelList]
    stacks: dict[str, dict[Severity, ChannelList]] = Field(default_factory=dict)

    @field_validator("defaults")
    @classmethod
    def _every_severity_routed(
        cls, value: dict[Severity, list[Channel]]
    ) -> dict[Severity, list[Channel]]:
        missing = [s.value for s in Severity if s not in value]
        if missing:
            raise ValueError(f"no route for severity {', '.join(missing)}")
        return value

    def for_stack(self, stack: str) -> dict[Severity, list[Channel]]:
        return {**self.defaults, **self.stacks.get(stack, {})}


class SignalSpec(Strict):
    """One pipeline signal: what it means, which flows emit it, the facts it carries."""

    description: str = Field(min_length=1, max_length=500)
    emitted_by: list[Name] = Field(min_length=1)
    facts: list[Name] = Field(default_factory=list)


class SignalCatalog(Strict):
    """`automations/signals.yaml`: every event a pipeline check emits."""

    signals: dict[Annotated[str, Field(pattern=EVENT_NAME)], SignalSpec] = Field(min_length=1)


class DeploymentSla(Strict):
    max_duration_s: int = Field(ge=10, le=7 * 24 * 3600)
    # Failures (Failed, Crashed, TimedOut) tolerated in 24 h before a failure-budget alert.
    max_failures_per_day: int | None = Field(default=None, ge=0, le=1000)


class ScrapingThresholds(Strict):
    min_success_rate: float = Field(default=0.95, gt=0, le=1)
    max_site_duration_s: float = Field(default=600, gt=0)
    min_products_per_site: int = Field(default=300, ge=0)
    max_products_per_site: int = Field(default=500, gt=0)

    @model_validator(mode="after")
    def _range(self) -> ScrapingThresholds:
        if self.min_products_per_site > self.max_products_per_site:
            raise ValueError("min_products_per_site is above max_products_per_site")
        return self


class DataQualityThresholds(Strict):
    min_completeness: float = Field(default=0.9, gt=0, le=1)
    min_validity: float = Field(default=0.9, gt=0, le=1)
    min_consistency: float = Field(default=0.9, gt=0, le=1)


class DriftThresholds(Strict):
    psi_warning: float = Field(default=0.1, gt=0)
    psi_critical: float = Field(default=0.25, gt=0)
    ks_p_value: float = Field(default=0.05, gt=0, lt=1)
    ks_min_samples: int = Field(default=50, ge=5)
    max_mean_relative_change: float = Field(default=0.15, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> DriftThresholds:
        if self.psi_warning >= self.psi_critical:
            raise ValueError("psi_warning must be below psi_critical")
        return self


class ModelThresholds(Strict):
    min_accuracy: float = Field(default=0.85, gt=0, le=1)
    max_accuracy_drop: float = Field(default=0.05, ge=0, lt=1)
    max_prediction_latency_s: float = Field(default=5, gt=0)
    min_mean_fake_score: float = Field(default=0.1, ge=0, le=1)
    max_mean_fake_score: float = Field(default=0.9, ge=0, le=1)
    max_share_scores_above_095: float = Field(default=0.10, ge=0, le=1)


class MatchingThresholds(Strict):
    min_mean_confidence: float = Field(default=0.7, gt=0, le=1)
    min_matches: int = Field(default=1, ge=0)


class ApiThresholds(Strict):
    max_response_ms: float = Field(default=500, gt=0)
    max_error_rate: float = Field(default=0.05, ge=0, le=1)


class Thresholds(Strict):
    """The limits the pipeline's checks compare against; the checks hold no literals."""

    scraping: ScrapingThresholds = Field(default_factory=ScrapingThresholds)
    data_quality: DataQualityThresholds = Field(default_factory=DataQualityThresholds)
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    model: ModelThresholds = Field(default_factory=ModelThresholds)
    matching: MatchingThresholds = Field(default_factory=MatchingThresholds)
    api: ApiThresholds = Field(default_factory=ApiThresholds)


class Slas(Strict):
    """Per-deployment run-duration SLAs and the thresholds of the checks: one source."""

    deployments: dict[str, DeploymentSla] = Field(default_factory=dict)
    thresholds: Thresholds = Field(default_factory=Thresholds)
