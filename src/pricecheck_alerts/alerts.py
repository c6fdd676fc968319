"""The facts of one alert, as the server renders them, and what follows from them.

`AlertFacts.parse` reads the JSON produced by `templates.facts_template`. Everything an
alert says (its subject, dedup key, advice) is derived here once, so Slack, PagerDuty and
e-mail say the same thing.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Facts(BaseModel):
    # Facts come from the server: tolerate what a newer template adds.
    model_config = ConfigDict(extra="ignore")


class EventFacts(_Facts):
    id: str | None = None
    name: str | None = None
    occurred: str | None = None
    resource_name: str | None = None
    payload: dict[str, Any] | None = None


class FlowRunFacts(_Facts):
    id: str | None = None
    name: str | None = None
    state: str | None = None
    message: str | None = None
    url: str | None = None
    tags: list[str] = Field(default_factory=list)
    start_time: str | None = None
    run_count: int | None = None


class FlowFacts(_Facts):
    name: str | None = None


class DeploymentFacts(_Facts):
    id: str | None = None
    name: str | None = None
    url: str | None = None


class TaskRunFacts(_Facts):
    id: str | None = None
    name: str | None = None
    state: str | None = None
    message: str | None = None
    run_count: int | None = None
    retries: int | None = None
    tags: list[str] = Field(default_factory=list)
    url: str | None = None


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
    ui_url: str | None = None


class AlertFacts(_Facts):
    v: int
    static: StaticFacts
    event: EventFacts = Field(default_factory=EventFacts)
    flow_run: FlowRunFacts = Field(default_factory=FlowRunFacts)
    flow: FlowFacts = Field(default_factory=FlowFacts)
    deployment: DeploymentFacts = Field(default_factory=DeploymentFacts)
    task_run: TaskRunFacts = Field(default_factory=TaskRunFacts)
    delivery: DeliveryFacts = Field(default_factory=DeliveryFacts)

    @classmethod
    def parse(cls, body: str) -> AlertFacts:
        return cls.model_validate(json.loads(body))

    @property
    def subject(self) -> str:
        """What is broken: the deployment, else the flow, else the check that emitted."""
        return self.deployment.name or self.flow.name or self.event.resource_name or "unknown"

    @property
    def dedup_key(self) -> str:
        """Environment + deployment (or flow) + rule; never the run, so a later success
        of the same deployment can resolve the incident."""
        return f"pricechecktn/{self.static.environment}/{self.subject}/{self.static.rule}"[:255]

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
        """The payload of a pipeline signal or a failed delivery; the payloads of run state
        changes are Prefect's internals and say nothing the other fields do not."""
        name = self.event.name or ""
        if name.startswith(("prefect.flow-run.", "prefect.task-run.")):
            return {}
        return dict(self.event.payload or {})

    @property
    def occurred(self) -> str | None:
        """When it happened, ISO 8601 (the server renders it with a space)."""
        if not self.event.occurred:
            return None
        try:
            return datetime.fromisoformat(self.event.occurred).isoformat()
        except ValueError:
            return None


_TIMEOUT = re.compile(r"time(d)?[ _-]?out|TimeoutException|deadline exceeded", re.I)
_AUTH = re.compile(r"\b40[13]\b|Forbidden|Unauthori[sz]ed", re.I)
_CONNECTION = re.compile(
    r"ConnectError|Connection (refused|reset|aborted)|Name or service not known|"
    r"nodename nor servname|Temporary failure in name resolution|No route to host|"
    r"RemoteProtocolError|Server disconnected",
    re.I,
)

SCRAPING_ADVICE = {
    "timeout": (
        "The site did not answer in time. Open the site to see if it is down or slow; if it "
        "is only slow, raise this site's timeout or lower its request rate in the scraping "
        "config. Retries already ran."
    ),
    "http-401-403": (
        "The site refused us (HTTP 401/403): we are probably blocked or the page now needs a "
        "login. Do not just re-run: check the user agent and rate limit, slow down, and ask "
        "the site owner or rotate the egress address before the next run."
    ),
    "connection": (
        "We could not connect to the site (DNS, refused or reset connection). Check that the "
        "site is up and that the worker has network egress; it is not a parsing problem."
    ),
    "other": (
        "Unclassified error: open the run's logs. If the page layout changed, update the "
        "site's selectors; if it is a bug in the task, fix it and re-run the deployment."
    ),
}


def classify_scraping_error(message: str) -> tuple[str, str]:
    """Classify a scraping failure from its error text: timeout, 401/403, connection, other.

    Timeouts are tested first because httpx's ConnectTimeout is both.
    """
    for cause, pattern in (
        ("timeout", _TIMEOUT),
        ("http-401-403", _AUTH),
        ("connection", _CONNECTION),
    ):
        if pattern.search(message):
            return cause, SCRAPING_ADVICE[cause]
    return "other", SCRAPING_ADVICE["other"]
