"""Slack: the Block Kit message (checked by slack_sdk's own block models as well as our
limits) and the block, through slack_sdk's client, against real local endpoints."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.abstract import NotificationError
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from pricecheck_alerts.notify import SlackAlert
from pricecheck_alerts.notify.facts import AlertFacts
from pricecheck_alerts.notify.slack import SLACK_BLOCKS_MAX, slack_message
from pricecheck_alerts.notify.transport import DEFAULT_POLICY
from tests.notify.rendering import HOSTILE, body_template, render
from tests.notify.scripted import Scripted

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


def test_slack_blocks_carry_what_is_needed_to_act(project_root: Path) -> None:
    facts = render(body_template(project_root, "pricechecktn/local/flow-run-failed"), "boom <b>&")
    slack = slack_message(facts)
    text = json.dumps(slack, ensure_ascii=False)
    for needed in (
        "*Environment*\\nlocal",
        "*Flow*\\npricechecktn-pipeline",
        "*State*\\nFailed",
        "boom &lt;b&gt;&amp;",
        "Runbook",
        "docs/runbooks/flow-run-failed.md",
        "http://127.0.0.1:4200/runs/flow-run/6f1c1c9e",
    ):
        assert needed in text, needed
    buttons = next(b for b in slack["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons][-1] == "Runbook"


def test_pipeline_signal_shows_its_facts(project_root: Path) -> None:
    facts = render(
        body_template(project_root, "pricechecktn/local/data-quality-low"),
        "m",
        payload={"metric": "completeness", "value": 0.71, "threshold": 0.9, "site": "mytek"},
    )
    slack = json.dumps(slack_message(facts))
    assert "*metric*\\ncompleteness" in slack and "*value*\\n0.71" in slack
    assert "*threshold*\\n0.9" in slack


def test_task_failure_carries_retries_and_advice(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/task-run-failed")
    facts = render(template, "HTTPStatusError: Client error '403 Forbidden' for url", task=True)
    slack = json.dumps(slack_message(facts), ensure_ascii=False)
    assert "*Attempts*\\n4 (retries allowed: 3)" in slack
    assert "Cause: http-401-403" in slack
    assert facts.advice is not None


def test_slack_text_cannot_ping_or_fake_links(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/flow-run-failed")
    facts = render(template, "<!channel> see <https://evil.example|Open run>")
    slack = slack_message(facts)
    assert "<!channel>" not in json.dumps(slack) and "<https://evil" not in json.dumps(slack)
    assert "&lt;!channel&gt;" in slack["text"]


def valid_block_kit(message: dict[str, Any]) -> None:
    """slack_sdk's own block models as an independent oracle: each block parses into its
    typed model and passes that model's limit checks (text lengths, fields, elements)."""
    assert isinstance(message["text"], str) and message["text"]
    assert len(message["blocks"]) <= SLACK_BLOCKS_MAX
    for raw in message["blocks"]:
        block = Block.parse(raw)
        assert block is not None and block.type == raw["type"], raw
        block.validate_json()  # raises SlackObjectFormationError past a limit


@pytest.mark.parametrize("message", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize(
    "automation",
    ["flow-run-failed", "task-run-failed", "data-quality-low", "flow-run-failed/resolve"],
)
def test_block_kit_is_valid_for_slack_sdk(
    project_root: Path, automation: str, message: str
) -> None:
    template = body_template(project_root, f"pricechecktn/local/{automation}")
    payload = {"metric": message[:300], "value": 0.5} if "quality" in automation else None
    facts = render(template, message, payload=payload, task="task" in automation)
    valid_block_kit(slack_message(facts))


def test_oracle_rejects_what_slack_would() -> None:
    """The oracle is not a rubber stamp: an over-long header fails it."""
    too_long = {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}
    with pytest.raises(SlackObjectFormationError):
        valid_block_kit({"text": "t", "blocks": [too_long]})


class Waits(list[float]):
    """An injected `sleep` that records the waits instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def send(url: str, waits: Waits) -> None:
    block = SlackAlert(url=url)
    client = block.alert_client(DEFAULT_POLICY, waits)
    asyncio.run(block.send(AlertFacts.parse(FACTS), client))


@pytest.mark.parametrize("endpoint", [[(429, {"Retry-After": "4"}), (200, {})]], indirect=True)
def test_slack_retries_after_429_as_retry_after_asks(endpoint: Scripted) -> None:
    waits = Waits()
    send(endpoint.url, waits)
    assert waits == [4.0] and len(endpoint.bodies) == 2
    assert endpoint.bodies[1]["text"].startswith("CRITICAL [test] Flow run failed")


@pytest.mark.parametrize("endpoint", [[(500, {}), (503, {}), (502, {})]], indirect=True)
def test_server_errors_are_retried_then_raised(endpoint: Scripted) -> None:
    waits = Waits()
    with pytest.raises(NotificationError) as caught:
        send(endpoint.url, waits)
    assert "HTTP 502" in caught.value.log
    assert len(endpoint.bodies) == 3 and waits == [1.0, 2.0]


@pytest.mark.parametrize("endpoint", [[(404, {})]], indirect=True)
def test_dead_webhook_is_not_retried(endpoint: Scripted) -> None:
    with pytest.raises(NotificationError) as caught:
        asyncio.run(SlackAlert(url=endpoint.url).notify(FACTS))
    assert "HTTP 404" in caught.value.log
    assert len(endpoint.bodies) == 1


def test_webhook_url_is_secret_and_checked() -> None:
    url = "https://hooks.slack.com/services/T000/B000/SECRET"
    block = SlackAlert(url=f" {url}\n")  # a pasted newline is forgiven
    assert block.url.get_secret_value() == url
    assert "SECRET" not in repr(block) and "SECRET" not in block.model_dump_json()
    with pytest.raises(ValueError, match="http"):
        SlackAlert(url="hooks.slack.com/services/x")
