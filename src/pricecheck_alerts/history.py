"""What fired, when, to which channels, and whether it arrived: a stack's alert history.

Read from the server's own record, the automation events Prefect writes for every firing
(`prefect.automation.triggered`, with the event that caused it in its payload) and for every
action (`prefect.automation.action.executed` or `.failed`, related to the firing by its
`automation-triggered-event`). Nothing is kept on the side, so the history is the same for
every operator and says exactly what the engine did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pricecheck_alerts import naming, redelivery
from pricecheck_alerts.events import read_events
from pricecheck_alerts.redelivery import reason_of

TRIGGERED = "prefect.automation.triggered"
EXECUTED = "prefect.automation.action.executed"
FAILED = "prefect.automation.action.failed"


@dataclass(frozen=True)
class Delivery:
    """One action of a firing: the channel's block, and what became of it."""

    channel: str
    delivered: bool
    reason: str | None = None
    later: str | None = None  # what `alert-redelivery` did with it: delivered late, lost


@dataclass
class Firing:
    """One alert (or one resolve) the engine sent, with each channel's outcome."""

    at: str
    rule: str
    kind: str  # "alert", or the automation's suffix ("resolve", an SLA's deployment...)
    about: str  # the run or check the triggering event was about
    event: str  # the triggering event's name
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(not d.delivered for d in self.deliveries)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed}


def _related(event: dict[str, Any], role: str) -> dict[str, Any] | None:
    for related in event.get("related", []):
        if related.get("prefect.resource.role") == role:
            return dict(related)
    return None


def _rule_and_kind(automation: str, environment: str) -> tuple[str, str] | None:
    """`pricechecktn/<env>/<rule>[/<suffix>]` (or the meta namespace) → (rule, kind)."""
    for prefix in (
        naming.automation_prefix(environment),
        naming.meta_automation_name(environment, ""),
    ):
        if automation.startswith(prefix):
            rule, _, suffix = automation[len(prefix) :].partition("/")
            return rule, suffix or "alert"
    return None


def _about(triggering: dict[str, Any] | None) -> tuple[str, str]:
    """(what it was about, event name) from the triggering event in a firing's payload."""
    if not triggering:
        return "-", "-"  # a proactive trigger: fired because something did not happen
    resource = triggering.get("resource", {})
    name = resource.get("prefect.resource.name") or resource.get("prefect.resource.id", "?")
    deployment = next(
        (
            r.get("prefect.resource.name")
            for r in triggering.get("related", [])
            if r.get("prefect.resource.role") == "deployment"
        ),
        None,
    )
    about = f"{deployment}/{name}" if deployment else str(name)
    return about, str(triggering.get("event", "?"))


def _channel(action: dict[str, Any], environment: str) -> str:
    block = _related(action, "block")
    name = str(block.get("prefect.resource.name", "?")) if block else "?"
    return name.removeprefix(naming.block_prefix(environment))


def summarize(
    events: Iterable[dict[str, Any]], environment: str, rule: str | None = None
) -> list[Firing]:
    """The firings of `environment`'s automations (optionally one rule's), oldest first,
    each with the outcome of its actions. Pure: the events are the API's JSON."""
    firings: dict[str, Firing] = {}
    actions: list[dict[str, Any]] = []
    later: dict[str, str] = {}  # failed action event id -> what redelivery did
    for event in events:
        if event["event"] in (redelivery.REDELIVERED, redelivery.LOST):
            failed_id = str(event["resource"].get("prefect.resource.id", ""))
            payload = event.get("payload", {})
            later[failed_id.removeprefix(f"{naming.PROJECT}.delivery.")] = (
                f"delivered {payload.get('late', '?')} late"
                if event["event"] == redelivery.REDELIVERED
                else f"lost: {payload.get('reason', '?')}"
            )
            continue
        if event["event"] != TRIGGERED:
            actions.append(event)
            continue
        named = _rule_and_kind(event["resource"].get("prefect.resource.name", ""), environment)
        if named is None or (rule is not None and named[0] != rule):
            continue
        about, name = _about(event.get("payload", {}).get("triggering_event"))
        firings[event["id"]] = Firing(event["occurred"], named[0], named[1], about, name)
    for action in actions:
        cause = _related(action, "automation-triggered-event")
        firing = (
            firings.get(str(cause["prefect.resource.id"]).removeprefix("prefect.event."))
            if cause
            else None
        )
        if firing is None:
            continue
        payload = action.get("payload", {})
        delivered = action["event"] == EXECUTED
        log = reason_of(payload.get("notification_log"))
        reason = None if delivered else (log or str(payload.get("reason") or "unknown"))
        firing.deliveries.append(
            Delivery(_channel(action, environment), delivered, reason, later.get(action["id"]))
        )
    return sorted(firings.values(), key=lambda f: f.at)


def read_history(
    environment: str, since: datetime, until: datetime | None = None, rule: str | None = None
) -> list[Firing]:
    """The stack's firings in the window, from the server PREFECT_API_URL names."""
    names = [TRIGGERED, EXECUTED, FAILED, redelivery.REDELIVERED, redelivery.LOST]
    events = read_events(since, until, names=names, max_events=50_000)
    return summarize(events, environment, rule)


def table(firings: list[Firing]) -> list[str]:
    """One line per firing: when, rule, kind, what about, and each channel's outcome."""
    if not firings:
        return ["nothing fired in this window"]
    lines = [f"{'time (UTC)':<20} {'rule':<24} {'kind':<8} {'about':<40} channels"]
    for firing in firings:
        outcomes = ", ".join(
            f"{d.channel} ok"
            if d.delivered
            else f"{d.channel} FAILED ({d.reason})" + (f", then {d.later}" if d.later else "")
            for d in firing.deliveries
        )
        at = firing.at[:19].replace("T", " ")
        about = firing.about if len(firing.about) <= 40 else firing.about[:39] + "…"
        outcomes = outcomes or "no action reported"
        lines.append(f"{at:<20} {firing.rule:<24} {firing.kind:<8} {about:<40} {outcomes}")
    failed = sum(1 for f in firings if f.failed)
    lines.append(f"{len(firings)} firings, {failed} with a failed delivery")
    return lines
