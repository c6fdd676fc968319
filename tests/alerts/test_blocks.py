"""The notification blocks against real local endpoints: retry policy, failures raised."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect.blocks.abstract import NotificationError

from pricecheck_alerts.blocks import EmailAlert, PagerDutyAlert, SlackAlert
from pricecheck_alerts.local_server import free_port
from pricecheck_alerts.receivers import Receivers

FACTS = json.dumps(
    {
        "v": 1,
        "static": {
            "rule": "flow-run-failed",
            "title": "Flow run failed",
            "description": "d",
            "severity": "critical",
            "runbook": "https://runbooks.example/x",
            "environment": "test",
        },
        "deployment": {"name": "pricechecktn-pipeline"},
        "flow_run": {"name": "brave-lynx", "state": "Failed", "message": "boom"},
    }
)


class Scripted:
    """An HTTP endpoint that answers from a script of (status, headers) and counts calls."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.bodies: list[dict] = []
        self.port = free_port()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                outer.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                status, headers = outer.script.pop(0) if outer.script else (200, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[Scripted]:
    scripted = Scripted(request.param)
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


@pytest.mark.parametrize("endpoint", [[(429, {"Retry-After": "0"}), (200, {})]], indirect=True)
def test_slack_retries_after_429(endpoint: Scripted) -> None:
    asyncio.run(SlackAlert(webhook_url=endpoint.url).notify(FACTS))
    assert len(endpoint.bodies) == 2
    assert endpoint.bodies[1]["text"].startswith("CRITICAL [test] Flow run failed")


@pytest.mark.parametrize("endpoint", [[(500, {}), (503, {}), (502, {})]], indirect=True)
def test_server_errors_are_retried_then_raised(endpoint: Scripted) -> None:
    with pytest.raises(NotificationError) as caught:
        asyncio.run(SlackAlert(webhook_url=endpoint.url).notify(FACTS))
    assert "HTTP 502" in caught.value.log
    assert len(endpoint.bodies) == 3


@pytest.mark.parametrize("endpoint", [[(404, {})]], indirect=True)
def test_dead_webhook_is_not_retried(endpoint: Scripted) -> None:
    with pytest.raises(NotificationError) as caught:
        asyncio.run(SlackAlert(webhook_url=endpoint.url).notify(FACTS))
    assert "HTTP 404" in caught.value.log
    assert len(endpoint.bodies) == 1


@pytest.mark.parametrize("endpoint", [[(400, {})]], indirect=True)
def test_pagerduty_rejection_is_raised_once(endpoint: Scripted) -> None:
    block = PagerDutyAlert(events_url=endpoint.url, routing_key="K" * 32)
    with pytest.raises(NotificationError) as caught:
        asyncio.run(block.notify(FACTS))
    assert "HTTP 400" in caught.value.log
    assert endpoint.bodies[0]["routing_key"] == "K" * 32
    assert endpoint.bodies[0]["dedup_key"] == (
        "pricechecktn/test/pricechecktn-pipeline/flow-run-failed"
    )


def test_email_reaches_a_real_smtp_server(receivers: Receivers) -> None:
    block = EmailAlert(
        smtp_host="127.0.0.1",
        smtp_port=receivers.smtp_port,
        security="insecure",
        sender="alerts@x.tn",
        recipients=["a@x.tn"],
    )
    receivers.store.clear()
    asyncio.run(block.notify(FACTS))
    [mail] = receivers.wait_for(lambda d: d.channel == "email", timeout=10)
    assert mail.body["subject"] == "CRITICAL [test] Flow run failed: pricechecktn-pipeline"
    assert mail.body["to"] == ["a@x.tn"]


def test_unreachable_smtp_server_is_raised() -> None:
    block = EmailAlert(
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        security="insecure",
        sender="alerts@x.tn",
        recipients=["a@x.tn"],
    )
    with pytest.raises(NotificationError) as caught:
        asyncio.run(block.notify(FACTS))
    assert "SMTP delivery failed" in caught.value.log


def test_secret_fields_are_masked_in_the_block_itself() -> None:
    block = PagerDutyAlert(routing_key="K" * 32)
    assert "K" * 32 not in repr(block) and "K" * 32 not in block.model_dump_json()
