"""E-mail: the block against real local SMTP servers (plain, STARTTLS, implicit TLS, with a
login), through prefect-email's connection, and the one SMTP setup the daily report shares."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prefect.blocks.abstract import NotificationError
from prefect_email import SMTPType

from devtools.local_server import free_port
from devtools.receivers import Receivers, SmtpMode, Store, smtp_server
from devtools.tls import LoopbackTls, loopback_tls
from pricecheck_alerts.notify import EmailAlert, SlackAlert
from pricecheck_alerts.notify import email as email_module
from pricecheck_alerts.notify.email import recipients_from_env, smtp_credentials_from_env
from tests.notify.test_slack import FACTS

LOGIN = ("alerts", "smtp-pass-Zq9")


def alert_block(port: int, smtp_type: str, login: tuple[str, str] | None = LOGIN) -> EmailAlert:
    user, password = login or (None, "")
    return EmailAlert(
        smtp_server="127.0.0.1",
        smtp_port=port,
        smtp_type=smtp_type,
        username=user,
        password=password,
        sender="alerts@x.tn",
        recipients=["a@x.tn", "b@x.tn"],
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LoopbackTls:
    return loopback_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted(tls: LoopbackTls, monkeypatch: pytest.MonkeyPatch) -> LoopbackTls:
    """The test CA trusted the way every default SSL context finds CAs."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    return tls


@contextmanager
def running(mode: SmtpMode, tls: LoopbackTls | None) -> Iterator[tuple[Store, int]]:
    """A real SMTP server in `mode` that requires `LOGIN`."""
    store, port = Store(), free_port()
    server = smtp_server(store, port, mode, tls, login=LOGIN)
    server.start()
    try:
        yield store, port
    finally:
        server.stop()


def test_email_reaches_a_plain_local_smtp_server(receivers: Receivers) -> None:
    block = alert_block(receivers.smtp_port, "INSECURE", login=None)
    receivers.store.clear()
    asyncio.run(block.notify(FACTS))
    [mail] = receivers.wait_for(lambda d: d.channel == "email", timeout=10)
    assert mail.body["subject"] == "CRITICAL [test] Flow run failed: pricechecktn-pipeline"
    assert mail.body["to"] == ["a@x.tn", "b@x.tn"]


@pytest.mark.parametrize("mode", ["STARTTLS", "SSL"])
def test_alert_over_tls_with_login(mode: SmtpMode, trusted: LoopbackTls) -> None:
    with running(mode, trusted) as (store, port):
        asyncio.run(alert_block(port, mode).notify(FACTS))
        [mail] = store.all()
    assert mail.body["to"] == ["a@x.tn", "b@x.tn"]
    assert mail.body["subject"].startswith("CRITICAL [test] Flow run failed")


@pytest.mark.parametrize("mode", ["STARTTLS", "SSL"])
def test_untrusted_certificate_is_refused(mode: SmtpMode, tls: LoopbackTls) -> None:
    """Verification is on: a server whose CA we do not trust gets nothing, password
    included, and the failure names no secret."""
    with running(mode, tls) as (store, port), pytest.raises(NotificationError) as caught:
        asyncio.run(alert_block(port, mode).notify(FACTS))
    assert store.all() == []
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.log
    assert LOGIN[1] not in caught.value.log


def test_wrong_password_is_raised_without_the_password(trusted: LoopbackTls) -> None:
    with running("STARTTLS", trusted) as (store, port):
        block = alert_block(port, "STARTTLS", login=(LOGIN[0], "not-the-pass-Q1"))
        with pytest.raises(NotificationError) as caught:
            asyncio.run(block.notify(FACTS))
    assert store.all() == [] and "not-the-pass-Q1" not in caught.value.log
    assert "535" in caught.value.log  # SMTP authentication failed


def test_unreachable_smtp_server_is_raised() -> None:
    with pytest.raises(NotificationError) as caught:
        asyncio.run(alert_block(free_port(), "INSECURE", login=None).notify(FACTS))
    assert "SMTP delivery failed" in caught.value.log


def test_one_set_of_smtp_variables() -> None:
    env = {
        "PRICECHECK_SMTP_HOST": "smtp.example.tn",
        "PRICECHECK_SMTP_PORT": "465",
        "PRICECHECK_SMTP_TYPE": "ssl",
        "PRICECHECK_SMTP_USERNAME": "reports",
        "PRICECHECK_SMTP_PASSWORD": "pw-7",
        "PRICECHECK_EMAIL_TO": "a@x.tn, b@x.tn,",
    }
    credentials = smtp_credentials_from_env(env)
    assert credentials.smtp_server == "smtp.example.tn"
    assert (credentials.smtp_type, credentials.smtp_port) == (SMTPType.SSL, 465)
    assert credentials.password.get_secret_value() == "pw-7"
    assert recipients_from_env(env) == ["a@x.tn", "b@x.tn"]
    default = smtp_credentials_from_env({})
    assert (default.smtp_server, default.smtp_type) == ("127.0.0.1", SMTPType.INSECURE)


def test_a_silent_smtp_server_fails_the_delivery_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host that accepts the connection and never greets: the delivery fails (and is
    recorded as failed) after the timeout instead of holding a server thread."""
    monkeypatch.setattr(email_module, "SMTP_TIMEOUT_S", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(NotificationError) as caught:
            asyncio.run(alert_block(port, "INSECURE", login=None).notify(FACTS))
    assert time.monotonic() - started < 5
    assert "timed out" in caught.value.log


def test_blocks_saved_by_the_first_version_still_load() -> None:
    """0.1 named the fields `smtp_host`/`security` (and Slack's `webhook_url`): a server
    upgraded before `pulumi up` rewrote its blocks must still deliver."""
    old = EmailAlert.model_validate(
        {
            "smtp_host": "smtp.example.tn",
            "smtp_port": 587,
            "security": "starttls",
            "sender": "a@x.tn",
            "recipients": ["b@x.tn"],
        }
    )
    assert (old.smtp_server, old.smtp_type) == ("smtp.example.tn", SMTPType.STARTTLS)
    url = "https://hooks.slack.com/services/T0/B0/old"
    assert SlackAlert.model_validate({"webhook_url": url}).url.get_secret_value() == url
    with pytest.raises(ValueError):
        EmailAlert.model_validate({"sender": "a@x.tn", "recipients": ["b@x.tn"]})
