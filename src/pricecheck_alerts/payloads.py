"""Pure functions from alert facts to each destination's payload, within its limits.

Limits (see shared/reference/destinations.md): Slack header 150, section text 3000, field
2000, 10 fields a section, 50 blocks, `text` kept under 4000; PagerDuty summary 1024,
dedup_key 255, event 512 KB. Lengths are counted in UTF-16 code units, which is never less
than the characters a service counts, so emoji and Arabic text stay within limits too.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

from pricecheck_alerts.alerts import AlertFacts

ELLIPSIS = "…"
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_PER_SECTION = 10
SLACK_TEXT_MAX = 4000
SLACK_BUTTON_TEXT_MAX = 75
PD_SUMMARY_MAX = 1024
PD_DETAIL_MAX = 2000
MESSAGE_EXCERPT_MAX = 1500
MAX_EVENT_FACTS = 20

SEVERITY_ICON = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def units(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, marked with an ellipsis when cut."""
    if units(text) <= limit:
        return text
    out, used = [], 0
    for char in text:
        size = units(char)
        if used + size > limit - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + ELLIPSIS


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) for headers, summaries and subjects."""
    return " ".join(text.split())


_MRKDWN_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def mrkdwn(text: str, limit: int) -> str:
    """Escape text we did not write for Slack mrkdwn, then clip without splitting `&amp;`."""
    pieces = [_MRKDWN_ESCAPES.get(char, char) for char in text]
    escaped = "".join(pieces)
    if units(escaped) <= limit:
        return escaped
    out, used = [], 0
    for piece in pieces:
        used += units(piece)
        if used > limit - 1:
            break
        out.append(piece)
    return "".join(out) + ELLIPSIS


def _display(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def run_fields(facts: AlertFacts) -> list[tuple[str, str]]:
    """The labelled facts about the run, most useful first; empty ones left out."""
    rows: list[tuple[str, str | None]] = [
        ("Environment", facts.static.environment),
        ("Deployment", facts.deployment_name),
        ("Flow", facts.flow_name),
        ("Flow run", facts.flow_run.name),
        ("State", facts.task_run.state or facts.flow_run.state),
        ("Task", facts.task_run.name),
        ("Failed automation", facts.delivery.automation),
        ("Failed channel block", facts.delivery.block),
    ]
    if facts.task_run.id and facts.task_run.run_count is not None:
        retries = facts.task_run.retries or 0
        rows.append(("Attempts", f"{facts.task_run.run_count} (retries allowed: {retries})"))
    if facts.static.max_duration_s:
        rows.append(("Duration SLA", f"{facts.static.max_duration_s} s"))
    if facts.flow_run.start_time:
        rows.append(("Started", facts.flow_run.start_time))
    if facts.event.name and not facts.flow_run.id:
        rows.append(("Event", facts.event.name))
    return [(label, value) for label, value in rows if value not in (None, "")]


def signal_fields(facts: AlertFacts) -> list[tuple[str, str]]:
    """The facts a pipeline check (or a failed delivery) reported, as it named them."""
    items = list(facts.event_facts.items())[:MAX_EVENT_FACTS]
    return [(str(key), _display(value)) for key, value in items]


def alert_fields(facts: AlertFacts) -> list[tuple[str, str]]:
    """Everything Slack and e-mail show as labelled fields."""
    return run_fields(facts) + signal_fields(facts)


def headline(facts: AlertFacts) -> str:
    """`RESOLVED`/severity, title and subject on one line: the part everyone reads."""
    status = "RESOLVED" if facts.static.action == "resolve" else facts.static.severity.upper()
    return one_line(f"{status} [{facts.static.environment}] {facts.static.title}: {facts.subject}")


def _links(facts: AlertFacts) -> list[tuple[str, str]]:
    links = []
    if facts.run_url:
        links.append(("Open flow run", facts.run_url))
    elif facts.deployment_url:
        links.append(("Open deployment", facts.deployment_url))
    links.append(("Runbook", facts.static.runbook))
    return links


def slack_message(facts: AlertFacts) -> dict[str, Any]:
    """Block Kit message with a plain `text` fallback."""
    resolved = facts.static.action == "resolve"
    icon = "✅" if resolved else SEVERITY_ICON[facts.static.severity]
    header = clip(one_line(f"{icon} {headline(facts)}"), SLACK_HEADER_MAX)
    what = (
        f"The problem reported by *{mrkdwn(facts.static.rule, 200)}* has cleared: "
        f"the deployment completed a run."
        if resolved
        else mrkdwn(facts.static.description, 1000)
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": what}},
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{mrkdwn(label, 100)}*\n{mrkdwn(value, 500)}"}
        for label, value in alert_fields(facts)
    ]
    for start in range(0, len(fields), SLACK_FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + 10]})
    message = facts.run_message
    if message and not resolved:
        excerpt = mrkdwn(message, MESSAGE_EXCERPT_MAX)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Message*\n{excerpt}"}}
        )
    advice = facts.advice
    if advice and not resolved:
        cause, todo = advice
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": clip(f"*Cause: {cause}*\n{todo}", SLACK_SECTION_MAX),
                },
            }
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                for label, url in _links(facts)
                if units(url) <= SLACK_SECTION_MAX
            ],
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": mrkdwn(
                        f"rule {facts.static.rule} · {facts.static.action}"
                        f" · dedup {facts.dedup_key}",
                        500,
                    ),
                }
            ],
        }
    )
    # `text` is mrkdwn too: text we did not write is escaped, so a run message cannot
    # ping `<!channel>` or disguise a link.
    lines = [mrkdwn(headline(facts), 500)]
    if message and not resolved:
        lines.append(mrkdwn(one_line(message), 1500))
    lines += [f"{label}: {url}" for label, url in _links(facts)]
    return {"text": clip("\n".join(lines), SLACK_TEXT_MAX), "blocks": blocks}


def pagerduty_event(facts: AlertFacts, routing_key: str) -> dict[str, Any]:
    """An Events API v2 trigger or resolve with a stable dedup key."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": facts.static.action,
        "dedup_key": facts.dedup_key,
    }
    if facts.static.action == "resolve":
        return event
    details: dict[str, Any] = {
        "rule": facts.static.rule,
        "description": facts.static.description,
        **{label: clip(value, PD_DETAIL_MAX) for label, value in run_fields(facts)},
    }
    if facts.event_facts:  # under their own key: a fact named "rule" overwrites nothing
        details["facts"] = {k: clip(v, PD_DETAIL_MAX) for k, v in signal_fields(facts)}
    if facts.run_message:
        details["message"] = clip(facts.run_message, 4 * PD_DETAIL_MAX)
    if facts.advice:
        details["cause"], details["what_to_do"] = facts.advice
    summary = headline(facts)
    if facts.run_message:
        summary += f" — {one_line(facts.run_message)}"
    event["payload"] = {
        "summary": clip(summary, PD_SUMMARY_MAX),
        "source": f"prefect/{facts.static.environment}",
        "severity": PD_SEVERITY[facts.static.severity],
        "component": clip(facts.subject, 255),
        "group": clip(facts.flow_name or facts.subject, 255),
        "class": facts.static.rule,
        "custom_details": details,
    }
    if facts.occurred:
        event["payload"]["timestamp"] = facts.occurred
    event["links"] = [{"href": url, "text": label} for label, url in _links(facts)]
    event["client"] = "PriceCheckTN alerts (Prefect)"
    if facts.static.ui_url:
        event["client_url"] = facts.static.ui_url
    return event


def email_message(facts: AlertFacts, sender: str, recipients: list[str]) -> EmailMessage:
    """Plain-text e-mail; the subject carries severity and environment."""
    message = EmailMessage()
    message["Subject"] = clip(headline(facts), 200)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    lines = [headline(facts), "", facts.static.description, ""]
    lines += [f"{label}: {value}" for label, value in alert_fields(facts)]
    if facts.run_message and facts.static.action == "trigger":
        lines += ["", "Message:", clip(facts.run_message, 10_000)]
    if facts.advice:
        cause, todo = facts.advice
        lines += ["", f"Cause: {cause}", todo]
    lines += [""] + [f"{label}: {url}" for label, url in _links(facts)]
    lines += ["", f"Rule: {facts.static.rule}", f"Dedup key: {facts.dedup_key}"]
    message.set_content("\n".join(lines))
    return message
