"""Local stand-ins for Slack, PagerDuty and an SMTP server, for the demo and the tests.

They check what the real services check (Slack's block limits, PagerDuty's required fields
and sizes) and answer the way those services answer, so a payload that would be rejected in
production is rejected here too. Everything that arrives is recorded and can be read back
over HTTP at `GET /_received` (the demo runs the receivers in another process).
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from devtools.local_server import free_port
from devtools.tls import LoopbackTls
from pricecheck_alerts.naming import DEDUP_KEY_MAX
from pricecheck_alerts.notify.pagerduty import PD_EVENT_MAX_BYTES, PD_SUMMARY_MAX
from pricecheck_alerts.notify.slack import (
    SLACK_BLOCKS_MAX,
    SLACK_CONTEXT_ELEMENTS_MAX,
    SLACK_FIELD_MAX,
    SLACK_FIELDS_PER_SECTION,
    SLACK_HEADER_MAX,
    SLACK_SECTION_MAX,
    SLACK_TEXT_HARD_MAX,
    SLACK_URL_MAX,
)

SLACK_PATHS = {
    "/slack/critical": "slack-critical",
    "/slack/warnings": "slack-warnings",
    "/slack/info": "slack-info",
}
PAGERDUTY_PATH = "/v2/enqueue"
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Delivery:
    """One payload that reached a receiver, with the answer it got."""

    channel: str
    body: Any
    status: int
    error: str | None = None
    received_at: float = field(default_factory=time.time)


def slack_problems(body: Any) -> list[str]:
    """What Slack's incoming webhook would reject in `body` (empty: accepted)."""
    if not isinstance(body, dict):
        return ["invalid_payload: body is not a JSON object"]
    problems = []
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("no_text")
    elif len(text) > SLACK_TEXT_HARD_MAX:
        problems.append(f"invalid_payload: text over {SLACK_TEXT_HARD_MAX} characters")
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > SLACK_BLOCKS_MAX:
        problems.append(f"invalid_blocks: more than {SLACK_BLOCKS_MAX} blocks")
        blocks = []
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            if block.get("text", {}).get("type") != "plain_text":
                problems.append(f"invalid_blocks: header {i} is not plain_text")
            if len(block.get("text", {}).get("text", "")) > SLACK_HEADER_MAX:
                problems.append(f"invalid_blocks: header {i} over {SLACK_HEADER_MAX} characters")
        elif kind == "section":
            if len(block.get("text", {}).get("text", "")) > SLACK_SECTION_MAX:
                problems.append(f"invalid_blocks: section {i} text too long")
            fields = block.get("fields", [])
            if len(fields) > SLACK_FIELDS_PER_SECTION:
                problems.append(f"invalid_blocks: section {i} has too many fields")
            if any(len(f.get("text", "")) > SLACK_FIELD_MAX for f in fields):
                problems.append(f"invalid_blocks: section {i} field too long")
        elif kind == "context":
            if len(block.get("elements", [])) > SLACK_CONTEXT_ELEMENTS_MAX:
                problems.append(f"invalid_blocks: context {i} has too many elements")
        elif kind == "actions":
            for element in block.get("elements", []):
                if len(element.get("url", "")) > SLACK_URL_MAX:
                    problems.append(f"invalid_blocks: button url in block {i} too long")
        elif kind != "divider":
            problems.append(f"invalid_blocks: unknown block type {kind!r}")
    return problems


def pagerduty_problems(body: Any, raw_size: int) -> list[str]:
    """What the PagerDuty Events API v2 would reject in `body` (empty: accepted)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems = []
    if raw_size > PD_EVENT_MAX_BYTES:
        problems.append("event larger than 512 KB")
    if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
        problems.append("routing_key must be 32 characters")
    action = body.get("event_action")
    if action not in PD_ACTIONS:
        problems.append("event_action must be trigger, acknowledge or resolve")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > DEDUP_KEY_MAX):
        problems.append("dedup_key must be a string of at most 255 characters")
    if action in {"acknowledge", "resolve"} and not dedup:
        problems.append("dedup_key is required for acknowledge and resolve")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            problems.append("payload is required for trigger")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary or len(summary) > PD_SUMMARY_MAX:
                problems.append("payload.summary is required, at most 1024 characters")
            if not payload.get("source"):
                problems.append("payload.source is required")
            if payload.get("severity") not in PD_SEVERITIES:
                problems.append("payload.severity must be critical, error, warning or info")
    for link in body.get("links", []):
        if not isinstance(link, dict) or "href" not in link:
            problems.append("links[] entries need href")
    return problems


class Store:
    """Thread-safe record of deliveries, shared by the HTTP and SMTP receivers.

    `down` holds the channels in an outage: they answer 503 (SMTP: 421) and record
    nothing but the refusal count in `refused`, as a destination that is away would."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Delivery] = []
        self.down: set[str] = set()
        self.refused: Counter[str] = Counter()

    def refuse(self, channel: str) -> bool:
        """Whether `channel` is down (counting the refusal)."""
        with self._lock:
            if channel in self.down:
                self.refused[channel] += 1
                return True
            return False

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self._items.append(delivery)

    def all(self) -> list[Delivery]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Keep test and demo output clean."""

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != "/_received":
                self._answer(404, b"not found", "text/plain")
                return
            items = [asdict(d) for d in store.all()]
            self._answer(200, json.dumps(items).encode(), "application/json")

        def do_DELETE(self) -> None:
            store.clear()
            self._answer(204, b"", "text/plain")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            channel = SLACK_PATHS.get(self.path) or (
                "pagerduty" if self.path == PAGERDUTY_PATH else None
            )
            if channel and store.refuse(channel):
                self._answer(503, b"service unavailable", "text/plain")
            elif self.path in SLACK_PATHS:
                problems = slack_problems(body) if body is not None else ["invalid_payload"]
                status = 400 if problems else 200
                answer = (problems[0] if problems else "ok").encode()
                store.add(
                    Delivery(SLACK_PATHS[self.path], body, status, "; ".join(problems) or None)
                )
                self._answer(status, answer, "text/plain")
            elif self.path == PAGERDUTY_PATH:
                problems = (
                    pagerduty_problems(body, len(raw)) if body is not None else ["invalid JSON"]
                )
                status = 400 if problems else 202
                store.add(Delivery("pagerduty", body, status, "; ".join(problems) or None))
                if problems:
                    reply = {
                        "status": "invalid event",
                        "message": "Event object is invalid",
                        "errors": problems,
                    }
                else:
                    reply = {
                        "status": "success",
                        "message": "Event processed",
                        "dedup_key": body.get("dedup_key") or "generated",
                    }
                self._answer(status, json.dumps(reply).encode(), "application/json")
            else:
                self._answer(404, b"no_service", "text/plain")

    return Handler


class _SmtpHandler:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.store.refuse("email"):
            return "421 Service not available, try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        self.store.add(
            Delivery(
                "email",
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "subject": str(message["subject"]),
                    "text": body.get_content() if body else "",
                },
                250,
            )
        )
        return "250 Message accepted for delivery"


SmtpMode = Literal["INSECURE", "STARTTLS", "SSL"]


def _authenticate(login: tuple[str, str]) -> Any:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = (auth.login.decode(), auth.password.decode()) == login
        return AuthResult(success=ok, handled=False)

    return authenticator


def smtp_server(
    store: Store,
    port: int,
    mode: SmtpMode = "INSECURE",
    tls: LoopbackTls | None = None,
    login: tuple[str, str] | None = None,
) -> Controller:
    """A real SMTP server on 127.0.0.1: plain, STARTTLS (TLS required before login) or
    implicit TLS, optionally requiring `login` (user, password)."""
    kwargs: dict[str, Any] = {}
    if mode != "INSECURE":
        assert tls is not None, f"{mode} needs a certificate"
    if mode == "STARTTLS":
        kwargs.update(tls_context=tls.server_context(), require_starttls=True)  # type: ignore[union-attr]
    if login is not None:
        kwargs.update(authenticator=_authenticate(login), auth_required=True)
    if mode == "SSL":
        kwargs["ssl_context"] = tls.server_context()  # type: ignore[union-attr]
        # aiosmtpd only knows about its own STARTTLS: the connection is TLS from the start.
        kwargs["auth_require_tls"] = False
    return Controller(_SmtpHandler(store), hostname="127.0.0.1", port=port, **kwargs)


@dataclass
class Receivers:
    """HTTP receivers for Slack and PagerDuty plus an SMTP server, on loopback ports."""

    http_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    store: Store = field(default_factory=Store)
    _http: ThreadingHTTPServer | None = None
    _smtp: Controller | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def urls(self) -> dict[str, str]:
        """Destination settings for a stack, as PRICECHECK_* environment variables."""
        return {
            "PRICECHECK_SLACK_CRITICAL_URL": f"{self.base_url}/slack/critical",
            "PRICECHECK_SLACK_WARNINGS_URL": f"{self.base_url}/slack/warnings",
            "PRICECHECK_SLACK_INFO_URL": f"{self.base_url}/slack/info",
            "PRICECHECK_PAGERDUTY_EVENTS_URL": f"{self.base_url}{PAGERDUTY_PATH}",
            "PRICECHECK_SMTP_HOST": "127.0.0.1",
            "PRICECHECK_SMTP_PORT": str(self.smtp_port),
        }

    def start(self) -> Receivers:
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), _handler(self.store))
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._smtp = smtp_server(self.store, self.smtp_port)
        self._smtp.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._smtp is not None:
            self._smtp.stop()

    def wait_for(self, predicate: Any, count: int = 1, timeout: float = 30.0) -> list[Delivery]:
        """Deliveries matching `predicate` once at least `count` arrived (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [d for d in self.store.all() if predicate(d)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def main() -> None:
    """Run the receivers in the foreground (the demo starts this in the background)."""
    import argparse

    parser = argparse.ArgumentParser(description="Local Slack/PagerDuty/SMTP receivers")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    args = parser.parse_args()
    Receivers(http_port=args.http_port, smtp_port=args.smtp_port).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
