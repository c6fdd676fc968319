"""A delivery that fails leaves the alert in its failure log (for `alert-redelivery`), says
whether retrying can help, never carries the secret, and a late copy says how late it is."""

from __future__ import annotations

import asyncio
import json
import smtplib

import pytest
from prefect.blocks.abstract import NotificationError

from pricecheck_alerts.notify import EmailAlert, PagerDutyAlert, SlackAlert
from pricecheck_alerts.notify.email import email_message
from pricecheck_alerts.notify.facts import AlertFacts
from pricecheck_alerts.notify.pagerduty import pagerduty_event
from pricecheck_alerts.notify.slack import slack_message
from pricecheck_alerts.notify.transport import Refused, permanent
from pricecheck_alerts.redelivery import Envelope, late_body, split_log, with_envelope
from tests.notify.scripted import Scripted
from tests.notify.test_slack import FACTS

ROUTING_KEY = "r" * 32


def lost(notify: object) -> tuple[str, Envelope | None]:
    with pytest.raises(NotificationError) as caught:
        asyncio.run(notify)  # type: ignore[arg-type]
    return split_log(caught.value.log)


@pytest.mark.parametrize(
    ("endpoint", "retry"),
    [([(503, {})] * 3, True), ([(429, {"Retry-After": "0"})] * 3, True), ([(404, {})], False)],
    indirect=["endpoint"],
)
def test_slack_failure_carries_the_alert_and_whether_to_retry(
    endpoint: Scripted, retry: bool
) -> None:
    reason, envelope = lost(SlackAlert(url=endpoint.url).notify(FACTS, "subject"))
    assert reason.startswith("HTTP ")
    assert envelope is not None
    assert (envelope.retry, envelope.body, envelope.subject) == (retry, FACTS, "subject")


@pytest.mark.parametrize(
    ("endpoint", "retry"),
    [([(502, {})] * 3, True), ([(400, {})], False)],
    indirect=["endpoint"],
)
def test_pagerduty_failure_never_carries_the_key(endpoint: Scripted, retry: bool) -> None:
    block = PagerDutyAlert(events_url=endpoint.url, routing_key=ROUTING_KEY)
    with pytest.raises(NotificationError) as caught:
        asyncio.run(block.notify(FACTS))
    assert ROUTING_KEY not in caught.value.log
    _, envelope = split_log(caught.value.log)
    assert envelope is not None and envelope.retry is retry


def test_an_unreachable_destination_is_retryable(unused_url: str) -> None:
    _, envelope = lost(SlackAlert(url=unused_url).notify(FACTS))
    assert envelope is not None and envelope.retry
    mail = EmailAlert(
        smtp_host="127.0.0.1",
        smtp_port=int(unused_url.split(":")[2].split("/")[0]),
        security="INSECURE",
        sender="alerts@example.org",
        recipients=["oncall@example.org"],
    )
    _, envelope = lost(mail.notify(FACTS))
    assert envelope is not None and envelope.retry


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Refused(404, "HTTP 404"), True),
        (Refused(400, "HTTP 400"), True),
        (Refused(408, "HTTP 408"), False),
        (Refused(429, "HTTP 429"), False),
        (Refused(503, "HTTP 503"), False),
        (smtplib.SMTPAuthenticationError(535, b"bad login"), True),
        (smtplib.SMTPResponseException(421, b"busy"), False),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}), True),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"mailbox busy")}), False),
        (smtplib.SMTPServerDisconnected("gone"), False),
        (TimeoutError(), False),
    ],
)
def test_what_is_permanent(error: BaseException, expected: bool) -> None:
    assert permanent(error) is expected


def test_a_late_copy_says_how_late_on_every_channel() -> None:
    facts = AlertFacts.parse(late_body(FACTS, 241))
    assert facts.late == "late by 4 min"
    header = slack_message(facts)["blocks"][0]["text"]["text"]
    assert header.endswith("(late by 4 min)")
    assert "(late by 4 min)" in pagerduty_event(facts, ROUTING_KEY)["payload"]["summary"]
    message = email_message(facts, "a@example.org", ["b@example.org"])
    assert "(late by 4 min)" in str(message["Subject"])
    on_time = AlertFacts.parse(FACTS)
    assert (
        on_time.late is None and "late" not in slack_message(on_time)["blocks"][0]["text"]["text"]
    )


def test_a_delivery_failed_alert_shows_the_reason_not_the_envelope() -> None:
    data = json.loads(FACTS)
    log = with_envelope("HTTP 503: down", Envelope(True, FACTS))
    data["signal"] = {"payload": {"reason": "Notification failed", "notification_log": log}}
    facts = AlertFacts.parse(json.dumps(data))
    assert facts.event_facts["notification_log"] == "HTTP 503: down"
    assert "pricecheck redelivery" not in json.dumps(slack_message(facts))
