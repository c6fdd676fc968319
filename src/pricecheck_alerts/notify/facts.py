"""The facts of one alert, as the server renders them, and what follows from them.

`AlertFacts.parse` reads the JSON produced by `compile.template.facts_template`. Everything
an alert says (its subject, dedup key, advice, labelled fields, links) is derived here once,
so Slack, PagerDuty and e-mail say the same thing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pricecheck_alerts import naming
from pricecheck_alerts.notify.advice import classify_scraping_error
from pricecheck_alerts.notify.text import display, one_line
from pricecheck_alerts.redelivery import minutes, reason_of


class _Facts(BaseModel):
    # Facts come from the server: tolerate what a newer template adds.
    model_config = ConfigDict(extra="ignore")


class EventFacts(_Facts):
    id: str | None = None
    name: str | None = None
    occurred: str | None = None
    resource_name: str | None = None
    flow: str | None = None
    deployment: str | None = None
    work_pool: str | None = None


class SignalFacts(_Facts):
    payload: dict[str, Any] | None = None


class FlowRunFacts(_Facts):
    id: str | None = None
    name: str | None = None
    state: str | None = None
    message: str | None = None
    tags: list[str] = Field(default_factory=list)
    start_time: str | None = None
    expected_start_time: str | None = None


class FlowFacts(_Facts):
    name: str | None = None


class DeploymentFacts(_Facts):
    id: str | None = None
    name: str | None = None


class TaskRunFacts(_Facts):
    id: str | None = None
    name: str | None = None
    state: str | None = None
    message: str | None = None
    run_count: int | None = None
    retries: int | None = None
    tags: list[str] = Field(default_factory=list)


class DeliveryFacts(_Facts):
    automation: str | None = None
    block: str | None = None


class StaticFacts(_Facts):
    """What the compiler knew: the rule and the stack."""

    rule: str
    title: str
    description: str
    severity: Literal["critical", "warning", "info"]
    runbook: str
    environment: str
    action: Literal["trigger", "resolve"] = "trigger"
    classify_tags: list[str] = Field(default_factory=list)
    max_duration_s: int | None = None
    max_failures_per_day: int | None = None
    ui_url: str | None = None


class AlertFacts(_Facts):
    v: int
    static: StaticFacts
    event: EventFacts = Field(default_factory=EventFacts)
    signal: SignalFacts = Field(default_factory=SignalFacts)
    flow_run: FlowRunFacts = Field(default_factory=FlowRunFacts)
    flow: FlowFacts = Field(default_factory=FlowFacts)
    deployment: DeploymentFacts = Field(default_factory=DeploymentFacts)
    task_run: TaskRunFacts = Field(default_factory=TaskRunFacts)
    delivery: DeliveryFacts = Field(default_factory=DeliveryFacts)
    # Set by the `alert-redelivery` flow on a copy sent after its destination came back.
    late_s: int | None = None

    @classmethod
    def parse(cls, body: str) -> AlertFacts:
        return cls.model_validate(json.loads(body))

    @property
    def flow_name(self) -> str | None:
        return self.event.flow or self.flow.name

    @property
    def deployment_name(self) -> str | None:
        return self.event.deployment or self.deployment.name

    @property
    def subject(self) -> str:
        """What is broken: the deployment, else the flow, else the check that emitted."""
        return self.deployment_name or self.flow_name or self.event.resource_name or "unknown"

    @property
    def dedup_key(self) -> str:
        """Environment + flow + deployment + rule: never the run, so the deployment's next
        success resolves it; the flow too, since deployment names are unique per flow only.
        Read from the event itself, so the trigger and its resolve always agree."""
        names = [n for n in (self.flow_name, self.deployment_name) if n]
        where = "/".join(names) or self.event.resource_name or "unknown"
        return naming.dedup_key(self.static.environment, where, self.static.rule)

    def _ui(self, path: str) -> str | None:
        base = (self.static.ui_url or "").rstrip("/")
        return f"{base}/{path}" if base else None

    @property
    def run_url(self) -> str | None:
        """The flow run in the Prefect UI (from the stack's UI URL, not the server's)."""
        return self._ui(f"runs/flow-run/{self.flow_run.id}") if self.flow_run.id else None

    @property
    def deployment_url(self) -> str | None:
        return (
            self._ui(f"deployments/deployment/{self.deployment.id}")
            if (self.deployment.id)
            else None
        )

    @property
    def run_message(self) -> str | None:
        """The most specific error text available."""
        return self.task_run.message or self.flow_run.message

    @property
    def advice(self) -> tuple[str, str] | None:
        """(cause, what to do) for failures of tasks tagged for classification."""
        tags = set(self.task_run.tags) | set(self.flow_run.tags)
        if not self.task_run.id or not tags & set(self.static.classify_tags):
            return None
        return classify_scraping_error(self.task_run.message or "")

    @property
    def event_facts(self) -> dict[str, Any]:
        """The payload of a pipeline signal or a failed delivery (only those rules ask the
        server for it)."""
        payload = dict(self.signal.payload or {})
        if isinstance(payload.get("notification_log"), str):  # a lost alert's envelope
            payload["notification_log"] = reason_of(payload["notification_log"])
        return payload

    @property
    def late_start(self) -> str | None:
        """How late a run that has not started is: from its scheduled start to the event
        that said so (the server marks a run Late some seconds after it was due)."""
        if self.flow_run.state != "Late" or not self.flow_run.expected_start_time:
            return None
        try:
            due = datetime.fromisoformat(self.flow_run.expected_start_time)
            seen = datetime.fromisoformat(self.event.occurred or "")
        except ValueError:
            return None
        return minutes(max((seen - due).total_seconds(), 0))

    @property
    def late(self) -> str | None:
        """`late by 4 min` on a copy sent again after its destination was down."""
        return f"late by {minutes(self.late_s)}" if self.late_s else None

    @property
    def occurred(self) -> str | None:
        """When it happened, ISO 8601 (the server renders it with a space)."""
        if not self.event.occurred:
            return None
        try:
            return datetime.fromisoformat(self.event.occurred).isoformat()
        except ValueError:
            return None


MAX_EVENT_FACTS = 20
"""Facts of one signal shown as fields; the rest stay in the event."""


def run_fields(facts: AlertFacts) -> list[tuple[str, str]]:
    """The labelled facts about the run, most useful first; empty ones left out."""
    rows: list[tuple[str, str | None]] = [
        ("Environment", facts.static.environment),
        ("Deployment", facts.deployment_name),
        ("Flow", facts.flow_name),
        ("Flow run", facts.flow_run.name),
        ("State", facts.task_run.state or facts.flow_run.state),
        ("Task", facts.task_run.name),
        ("Late by", facts.late_start),
        ("Scheduled start", facts.flow_run.expected_start_time if facts.late_start else None),
        ("Work pool", facts.event.work_pool),
        ("Failed automation", facts.delivery.automation),
        ("Failed channel block", facts.delivery.block),
    ]
    if facts.task_run.id and facts.task_run.run_count is not None:
        retries = facts.task_run.retries or 0
        rows.append(("Attempts", f"{facts.task_run.run_count} (retries allowed: {retries})"))
    if facts.static.max_duration_s:
        rows.append(("Duration SLA", f"{facts.static.max_duration_s} s"))
    if facts.static.max_failures_per_day is not None:
        budget = facts.static.max_failures_per_day
        rows.append(("Failure budget", f"more than {budget} failures in 24 h"))
    if facts.flow_run.start_time:
        rows.append(("Started", facts.flow_run.start_time))
    if facts.event.name and not facts.flow_run.id:
        rows.append(("Event", facts.event.name))
    return [(label, value) for label, value in rows if value not in (None, "")]


def signal_fields(facts: AlertFacts) -> list[tuple[str, str]]:
    """The facts a pipeline check (or a failed delivery) reported, as it named them."""
    items = list(facts.event_facts.items())[:MAX_EVENT_FACTS]
    return [(str(key), display(value)) for key, value in items]


def alert_fields(facts: AlertFacts) -> list[tuple[str, str]]:
    """Everything Slack and e-mail show as labelled fields."""
    return run_fields(facts) + signal_fields(facts)


def headline(facts: AlertFacts) -> str:
    """`RESOLVED`/severity, title and subject on one line: the part everyone reads."""
    status = "RESOLVED" if facts.static.action == "resolve" else facts.static.severity.upper()
    late = f" ({facts.late})" if facts.late else ""
    return one_line(
        f"{status} [{facts.static.environment}] {facts.static.title}: {facts.subject}{late}"
    )


def links(facts: AlertFacts) -> list[tuple[str, str]]:
    links = []
    if facts.run_url:
        links.append(("Open flow run", facts.run_url))
    elif facts.deployment_url:
        links.append(("Open deployment", facts.deployment_url))
    links.append(("Runbook", facts.static.runbook))
    return links
