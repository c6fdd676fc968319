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
    flow: str | None = None
    deployment: str | None = None


class SignalFacts(_Facts):
    payload: dict[str, Any] | None = None


class FlowRunFacts(_Facts):
    id: str | None = None
    name: str | None = None
    state: str | None = None
    message: str | None = None
    tags: list[str] = Field(default_factory=list)
    start_time: str | None = None


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
        return f"pricechecktn/{self.static.environment}/{where}/{self.static.rule}"[:255]

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
        return dict(self.signal.payload or {})

    @property
    def occurred(self) -> str | None:
        """When it happened, ISO 8601 (the server renders it with a space)."""
        if not self.event.occurred:
            return None
        try:
            return datetime.fromisoformat(self.event.occurred).isoformat()
        except ValueError:
            return None


# Matched on exception names and the phrases httpx, asyncio and the OS use, not on bare
# words or numbers: "could not parse price '403,500 DT'" is not a refusal.
_TIMEOUT = re.compile(
    r"\b(?:\w*Timeout(?:Exception|Error)?|TimeoutError)\b|\btimed out\b|"
    r"exceeded timeout of|deadline exceeded",
)
_AUTH = re.compile(
    r"\b(?:Client error|HTTP|status(?: code)?)\W{0,3}'?40[13]\b|"
    r"\b40[13] (?:Forbidden|Unauthorized)\b",
    re.I,
)
_CONNECTION = re.compile(
    r"\bConnectError\b|Connection (?:refused|reset|aborted)|Name or service not known|"
    r"nodename nor servname|Temporary failure in name resolution|No route to host|"
    r"\bRemoteProtocolError\b|Server disconnected",
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
