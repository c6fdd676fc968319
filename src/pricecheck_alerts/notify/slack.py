"""Slack: the Block Kit message of an alert and the block that posts it.

`SlackAlert` is prefect-slack's `SlackWebhook` (the webhook URL is its secret `url` field)
that sends a Block Kit message built from the alert facts through slack_sdk's webhook client,
with the shared retry policy plugged into slack_sdk's retry handlers. The client posts through
the event loop's shared aiohttp session (`transport.SLACK_SESSIONS`): left to itself,
slack_sdk opens and closes a session, its connection pool and a TLS handshake per message.

Limits of an incoming webhook: header 150, section text 3000, field 2000, 10 fields per
section, 50 blocks; `text` is cut past 40 000, kept here under 4000.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect_slack.credentials import SlackWebhook
from pydantic import AliasChoices, Field, SecretStr, field_validator
from slack_sdk.webhook.async_client import AsyncWebhookClient

from pricecheck_alerts import naming
from pricecheck_alerts.notify.facts import AlertFacts, alert_fields, headline, links
from pricecheck_alerts.notify.text import clip, mrkdwn, one_line, units
from pricecheck_alerts.notify.transport import (
    DEFAULT_POLICY,
    HTTP_TIMEOUT_S,
    SLACK_SESSIONS,
    RetryPolicy,
    SlackSdkRetry,
    Sleep,
    delivery,
    failed,
)

SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_PER_SECTION = 10
SLACK_BLOCKS_MAX = 50
SLACK_TEXT_MAX = 4000  # what we send; Slack itself cuts `text` at SLACK_TEXT_HARD_MAX
SLACK_TEXT_HARD_MAX = 40_000
SLACK_URL_MAX = 3000
SLACK_BUTTON_TEXT_MAX = 75
SLACK_CONTEXT_ELEMENTS_MAX = 10
MESSAGE_EXCERPT_MAX = 1500

SEVERITY_ICON = {"critical": "🔴", "warning": "🟠", "info": "🔵"}

# slack_sdk logs the whole webhook URL (a secret) at INFO/DEBUG on every retry: give its
# client a logger of its own that only passes warnings, whatever the server's log level.
QUIET_SDK_LOGGER = logging.getLogger("pricecheck_alerts.notify.slack_sdk")
QUIET_SDK_LOGGER.setLevel(logging.WARNING)


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
                for label, url in links(facts)
                if units(url) <= SLACK_URL_MAX
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
    lines += [f"{label}: {url}" for label, url in links(facts)]
    return {"text": clip("\n".join(lines), SLACK_TEXT_MAX), "blocks": blocks}


def http_url(value: object) -> object:
    """Strip stray whitespace (a pasted newline) and insist on http(s)."""
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    if isinstance(text, str):
        text = text.strip()
        if not text.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
    return text


class SlackAlert(SlackWebhook):
    """Posts Block Kit alerts to one Slack incoming webhook (one block per channel)."""

    _block_type_name = "PriceCheckTN Slack Alert"
    _block_type_slug = naming.block_type_slug("slack")
    _description = "Slack incoming webhook for PriceCheckTN alert automations."

    # `webhook_url` is the field's name in blocks saved by version 0.1 of this package: a
    # block that no longer validated would fail every alert (and Prefect's error would
    # quote most of the URL).
    url: SecretStr = Field(
        default=...,
        title="Webhook URL",
        description="The Slack incoming webhook URL.",
        validation_alias=AliasChoices("url", "webhook_url"),
    )

    _check_url = field_validator("url", mode="before")(http_url)

    def alert_client(
        self, policy: RetryPolicy = DEFAULT_POLICY, sleep: Sleep | None = None
    ) -> AsyncWebhookClient:
        """slack_sdk's webhook client for this URL, retrying by the shared policy.

        It has no session yet: `send` gives it the running loop's shared one, so a client
        built outside a loop (as the tests do) still works inside one."""
        handler = SlackSdkRetry(policy) if sleep is None else SlackSdkRetry(policy, sleep)
        return AsyncWebhookClient(
            url=self.url.get_secret_value(),
            timeout=int(HTTP_TIMEOUT_S),
            retry_handlers=[handler],
            logger=QUIET_SDK_LOGGER,
        )

    async def send(self, facts: AlertFacts, client: AsyncWebhookClient | None = None) -> None:
        client = client or self.alert_client()
        if client.session is None or client.session.closed:
            client.session = await SLACK_SESSIONS.get()
        response = await client.send_dict(slack_message(facts))
        if response.status_code >= 300:
            raise failed(response.status_code, response.body or "")

    async def notify(self, body: str, subject: str | None = None) -> None:
        with delivery("Slack delivery", self.url, body=body, subject=subject):
            await self.send(AlertFacts.parse(body))
