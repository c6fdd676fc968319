"""E-mail: the message of an alert, the block that sends it, and the one SMTP setup that
alert e-mail and the pipeline's daily report share.

The block is prefect-email's `EmailServerCredentials` (server, `SMTPType` security mode,
login, secret password) plus a sender and recipients; it connects as prefect-email does,
with a timeout added. Outside the server (the daily report), the same settings
come from `smtp_credentials_from_env` under one set of `PRICECHECK_SMTP_*` names.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage

from prefect.blocks.abstract import NotificationBlock
from prefect_email import EmailServerCredentials
from prefect_email.credentials import SMTPType
from pydantic import AliasChoices, Field

from pricecheck_alerts import naming
from pricecheck_alerts.notify.facts import AlertFacts, alert_fields, headline, links
from pricecheck_alerts.notify.text import clip
from pricecheck_alerts.notify.transport import delivery, tls_context

SMTP_TIMEOUT_S = 30.0
SUBJECT_MAX = 200

# Environment variables naming the SMTP setup wherever no block holds it (local stack,
# daily report); the stack files use the same settings under `email`.
SMTP_ENV = {
    "smtp_server": "PRICECHECK_SMTP_HOST",
    "smtp_port": "PRICECHECK_SMTP_PORT",
    "smtp_type": "PRICECHECK_SMTP_TYPE",
    "username": "PRICECHECK_SMTP_USERNAME",
    "password": "PRICECHECK_SMTP_PASSWORD",
}
EMAIL_FROM_ENV = "PRICECHECK_EMAIL_FROM"
EMAIL_TO_ENV = "PRICECHECK_EMAIL_TO"


def smtp_credentials_from_env(environ: Mapping[str, str] | None = None) -> EmailServerCredentials:
    """prefect-email credentials from `PRICECHECK_SMTP_*` (defaults: an unauthenticated
    local server on port 25, as the local stack runs it; STARTTLS once there is a login)."""
    env = os.environ if environ is None else environ
    values = {field: env[var] for field, var in SMTP_ENV.items() if env.get(var)}
    values.setdefault("smtp_server", "127.0.0.1")
    # Plain SMTP only for the unauthenticated local receiver: never send a login in clear.
    values.setdefault("smtp_type", "STARTTLS" if values.get("username") else "INSECURE")
    return EmailServerCredentials(**values)


def recipients_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [r.strip() for r in env.get(EMAIL_TO_ENV, "").split(",") if r.strip()]


def email_message(facts: AlertFacts, sender: str, recipients: list[str]) -> EmailMessage:
    """Plain-text e-mail; the subject carries severity and environment."""
    message = EmailMessage()
    message["Subject"] = clip(headline(facts), SUBJECT_MAX)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    lines = [headline(facts), "", facts.static.description, ""]
    lines += [f"{label}: {value}" for label, value in alert_fields(facts)]
    if facts.run_message and facts.static.action == "trigger":
        lines += ["", "Message:", clip(facts.run_message, 10_000)]
    if facts.advice:
        cause, todo = facts.advice
        lines += ["", f"Cause: {cause}", todo]
    lines += [""] + [f"{label}: {url}" for label, url in links(facts)]
    lines += ["", f"Rule: {facts.static.rule}", f"Dedup key: {facts.dedup_key}"]
    message.set_content("\n".join(lines))
    return message


class EmailAlert(NotificationBlock, EmailServerCredentials):
    """Sends alert e-mails through an SMTP server (prefect-email's connection)."""

    _block_type_name = "PriceCheckTN Email Alert"
    _block_type_slug = naming.block_type_slug("email")
    _description = "SMTP delivery for PriceCheckTN alert automations."

    # Required here (prefect-email defaults to Gmail); `smtp_host` and `security` are the
    # names blocks saved by version 0.1 of this package used.
    smtp_server: str = Field(
        title="SMTP Server", validation_alias=AliasChoices("smtp_server", "smtp_host")
    )
    smtp_type: SMTPType = Field(
        default=SMTPType.STARTTLS,
        title="SMTP Type",
        validation_alias=AliasChoices("smtp_type", "security"),
    )
    sender: str
    recipients: list[str] = Field(min_length=1)

    def get_server(self) -> smtplib.SMTP:
        """prefect-email's connection (same security modes, certificate check and login,
        with the process's shared SSL context), with a timeout on every socket operation,
        which prefect-email's does not set: a silent SMTP host must fail the delivery, not
        hold a server thread for ever."""
        port = self.smtp_port or self.smtp_type.value
        # The same contexts prefect-email builds, but built once per process (see
        # `tls_context`): each SMTP session still gets its own connection, since an idle
        # SMTP connection is dropped by most servers within minutes.
        context = tls_context("smtp" if self.verify else "smtp-unverified")
        server: smtplib.SMTP
        if self.smtp_type is SMTPType.SSL:
            server = smtplib.SMTP_SSL(
                self.smtp_server, port, context=context, timeout=SMTP_TIMEOUT_S
            )
        else:
            server = smtplib.SMTP(self.smtp_server, port, timeout=SMTP_TIMEOUT_S)
        try:
            if self.smtp_type is SMTPType.STARTTLS:
                server.starttls(context=context)
            if self.username:
                server.login(self.username, self.password.get_secret_value())
        except BaseException:
            server.close()  # a refused TLS or login must not leave the connection open
            raise
        return server

    def _send(self, facts: AlertFacts) -> None:
        with self.get_server() as server:
            server.send_message(email_message(facts, self.sender, self.recipients))

    async def notify(self, body: str, subject: str | None = None) -> None:
        with delivery("SMTP delivery", self.password, body=body, subject=subject):
            facts = AlertFacts.parse(body)
            await asyncio.to_thread(self._send, facts)
