"""Notification blocks the alert automations send through: Slack, PagerDuty, e-mail.

They run inside the Prefect *server* (the `send-notification` action), which imports them
through this package's `prefect.collections` entry point, so the server's environment must
have `pricecheck-alerts` installed. Each takes the facts JSON rendered by the automation,
builds its destination's payload with `payloads.py`, and raises `NotificationError` on a
failed delivery, which the server records as `prefect.automation.action.failed`.
Destination URLs, keys and passwords live only in secret fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
from prefect.blocks.abstract import NotificationBlock, NotificationError
from pydantic import Field, SecretStr, field_validator

from pricecheck_alerts.alerts import AlertFacts
from pricecheck_alerts.payloads import email_message, pagerduty_event, slack_message

HTTP_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_S = 10.0


@contextmanager
def delivery(what: str, *secrets: SecretStr | None) -> Iterator[None]:
    """Every failure of a delivery becomes a `NotificationError`, so the server records
    `prefect.automation.action.failed` (and the delivery-failed rule sees it) whatever went
    wrong; secret values are cut out of the log the event carries."""
    try:
        yield
    except Exception as exc:
        log = exc.log if isinstance(exc, NotificationError) else f"{what} failed: {exc!r}"
        for secret in secrets:
            if secret is not None and secret.get_secret_value():
                log = log.replace(secret.get_secret_value(), "**redacted**")
        raise NotificationError(log=log) from exc


def _http_url(value: object) -> object:
    """Strip stray whitespace (a pasted newline) and insist on http(s)."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(text, str):
        text = text.strip()
        if not text.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
    return text


async def post_json(url: str, payload: dict[str, Any]) -> httpx.Response:
    """POST with the retry policy both Slack and PagerDuty ask for: retry 429 (after
    Retry-After, capped) and 5xx with backoff; never retry other 4xx."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await client.post(url, json=payload)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise NotificationError(log=f"transport error: {exc!r}") from exc
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if response.status_code < 300:
                return response
            retryable = response.status_code == 429 or response.status_code >= 500
            if not retryable or attempt == MAX_ATTEMPTS:
                raise NotificationError(log=f"HTTP {response.status_code}: {response.text[:500]}")
            delay = 0.5 * 2**attempt
            if response.status_code == 429:
                with contextlib.suppress(ValueError):
                    delay = float(response.headers.get("Retry-After", delay))
            await asyncio.sleep(min(delay, MAX_RETRY_AFTER_S))
    raise AssertionError("unreachable")


class SlackAlert(NotificationBlock):
    """Posts Block Kit alerts to one Slack incoming webhook (one block per channel)."""

    _block_type_name = "PriceCheckTN Slack Alert"
    _block_type_slug = "pricechecktn-slack-alert"
    _description = "Slack incoming webhook for PriceCheckTN alert automations."

    webhook_url: SecretStr = Field(description="The Slack incoming webhook URL.")

    _check_url = field_validator("webhook_url", mode="before")(_http_url)

    async def notify(self, body: str, subject: str | None = None) -> None:
        with delivery("Slack delivery", self.webhook_url):
            facts = AlertFacts.parse(body)
            await post_json(self.webhook_url.get_secret_value(), slack_message(facts))


class PagerDutyAlert(NotificationBlock):
    """Sends PagerDuty Events API v2 triggers and resolves with stable dedup keys."""

    _block_type_name = "PriceCheckTN PagerDuty Alert"
    _block_type_slug = "pricechecktn-pagerduty-alert"
    _description = "PagerDuty Events API v2 integration for PriceCheckTN alert automations."

    events_url: str = Field(default="https://events.pagerduty.com/v2/enqueue")
    routing_key: SecretStr = Field(description="The integration (routing) key, 32 chars.")

    _check_url = field_validator("events_url", mode="before")(_http_url)

    async def notify(self, body: str, subject: str | None = None) -> None:
        with delivery("PagerDuty delivery", self.routing_key):
            facts = AlertFacts.parse(body)
            event = pagerduty_event(facts, self.routing_key.get_secret_value())
            await post_json(self.events_url, event)


class EmailAlert(NotificationBlock):
    """Sends alert e-mails through an SMTP server."""

    _block_type_name = "PriceCheckTN Email Alert"
    _block_type_slug = "pricechecktn-email-alert"
    _description = "SMTP delivery for PriceCheckTN alert automations."

    smtp_host: str
    smtp_port: int = 587
    security: Literal["insecure", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    recipients: list[str] = Field(min_length=1)

    def _send(self, facts: AlertFacts) -> None:
        message = email_message(facts, self.sender, self.recipients)
        context = ssl.create_default_context()
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.smtp_host, self.smtp_port, timeout=HTTP_TIMEOUT_S, context=context
            )
        else:
            smtp = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=HTTP_TIMEOUT_S)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.username and self.password:
                smtp.login(self.username, self.password.get_secret_value())
            smtp.send_message(message)

    async def notify(self, body: str, subject: str | None = None) -> None:
        with delivery("SMTP delivery", self.password):
            await asyncio.to_thread(self._send, AlertFacts.parse(body))


ALERT_BLOCK_SLUGS = tuple(
    block.get_block_type_slug() for block in (SlackAlert, PagerDutyAlert, EmailAlert)
)
