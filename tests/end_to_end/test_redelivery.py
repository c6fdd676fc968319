"""Lost alerts on a real server with real receivers: a destination that is down gets the
alert once it is back (marked late, once), a refused one is not retried, and every loss is
reported. The `alert-redelivery` flow runs in-process here, one sweep per call; in a stack
its deployment runs it every minute."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.receivers import Delivery, Receivers
from flows import redelivery as sweep_flow
from pricecheck_alerts import redelivery
from pricecheck_alerts.compile.resources import StackResources
from pricecheck_alerts.config.loader import Catalog
from pricecheck_alerts.config.stacks import resolve_secrets
from pricecheck_alerts.events import read_events
from pricecheck_alerts.provision.apply import apply_stack
from pricecheck_alerts.signals import send_signal

MATCHING = "pricechecktn.matching.quality_low"


@pytest.fixture(scope="module")
def provisioned(
    project_root: Path, environ: dict[str, str], stack: tuple[Catalog, StackResources]
) -> Iterator[None]:
    apply_stack(stack[1], resolve_secrets(project_root, "local", environ))
    yield


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds instead of minutes between tries, and a report from every sweep."""
    monkeypatch.setattr(redelivery, "DELAYS_S", (1, 1, 2))
    monkeypatch.setattr(sweep_flow, "REPORT_EVERY", timedelta(0))


def sweep() -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(sweep_flow.alert_redelivery(env="local"))
    return result


def wait_for_events(
    name: str, count: int, since: datetime, timeout: float = 20
) -> list[dict[str, Any]]:
    """The server stores events a moment after they are sent: poll, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_events(since, names=[name])
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def slack(receivers: Receivers, channel: str) -> list[Delivery]:
    return [d for d in receivers.store.all() if d.channel == channel and d.status < 300]


def header(delivery: Delivery) -> str:
    return str(delivery.body["blocks"][0]["text"]["text"])


def test_an_alert_to_a_channel_that_is_down_arrives_late_once_it_is_back(
    provisioned: None, receivers: Receivers
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    receivers.store.clear()
    receivers.store.down.add("slack-warnings")
    try:
        # two losses a few seconds apart: the second is inside delivery-failed's window
        send_signal(MATCHING, "matching", {"metric": "mean_confidence", "observed": 0.41})
        time.sleep(3)
        send_signal(MATCHING, "matching:2", {"metric": "mean_confidence", "observed": 0.38})
        failures = wait_for_events(redelivery.FAILED, 2, since)
        lost = redelivery.lost_deliveries(failures, "local")
        assert len(lost) == 2 and all(item.channel == "slack-warnings" for item in lost)
        assert all(item.envelope is not None and item.envelope.retry for item in lost)
        refused = receivers.store.refused["slack-warnings"]
        assert refused == 6  # the blocks' own quick tries: 3 each

        time.sleep(1.5)
        first = sweep()  # still down: one probe (the block's 3 quick tries), the other waits
        assert (first["tried"], first["waiting"], first["redelivered"]) == (1, 1, 0)
        assert receivers.store.refused["slack-warnings"] == refused + 3
        wait_for_events(redelivery.RETRY_FAILED, 1, since)
    finally:
        receivers.store.down.clear()

    time.sleep(1.5)
    second = sweep()  # back: both delivered, marked late
    assert (second["tried"], second["redelivered"], second["lost"]) == (2, 2, 0)
    late = [d for d in slack(receivers, "slack-warnings") if "(late by " in header(d)]
    assert len(late) == 2
    assert all("Product matching confidence is low" in header(d) for d in late)
    bodies = " ".join(json.dumps(d.body) for d in late)
    assert "*observed*\\n0.41" in bodies and "*observed*\\n0.38" in bodies
    # the follow-up counts both, through its own rule
    report = receivers.wait_for(
        lambda d: d.channel == "slack-warnings" and "delivered late or lost" in header(d),
        timeout=20,
    )
    assert "2 alerts to slack-warnings delivered late" in json.dumps(report[0].body)

    wait_for_events(redelivery.REDELIVERED, 2, since)
    third = sweep()  # nothing left: no duplicate
    assert (third["tried"], third["lost"]) == (0, 0)
    time.sleep(2)
    assert len([d for d in slack(receivers, "slack-warnings") if "(late by " in header(d)]) == 2


def test_a_refused_destination_is_not_retried_and_the_loss_is_reported(
    provisioned: None,
    project_root: Path,
    environ: dict[str, str],
    stack: tuple[Catalog, StackResources],
    receivers: Receivers,
) -> None:
    """An archived webhook (404) is a permanent refusal: one try by the block, none by the
    sweep, one `lost` record and one line in the report."""
    _, resources = stack
    dead = {**environ, "PRICECHECK_SLACK_INFO_URL": f"{receivers.base_url}/slack/archived"}
    apply_stack(resources, resolve_secrets(project_root, "local", dead))
    since = datetime.now(UTC) - timedelta(seconds=5)
    try:
        receivers.store.clear()
        send_signal(
            "pricechecktn.performance.slow_task", "predict", {"task": "predict", "observed": 9.5}
        )
        [failure] = wait_for_events(redelivery.FAILED, 1, since)
        [lost] = redelivery.lost_deliveries([failure], "local")
        assert lost.envelope is not None and not lost.envelope.retry
        assert "HTTP 404" in lost.reason

        result = sweep()
        assert (result["tried"], result["lost"]) == (0, 1)
        report = receivers.wait_for(
            lambda d: d.channel == "slack-warnings" and "delivered late or lost" in header(d),
            timeout=20,
        )
        text = json.dumps(report[0].body)
        assert "1 alerts to slack-info lost (not retryable: HTTP 404: no_service)" in text
        wait_for_events(redelivery.LOST, 1, since)
        again = sweep()
        assert (again["tried"], again["lost"]) == (0, 0)  # declared once, never retried
    finally:
        apply_stack(resources, resolve_secrets(project_root, "local", environ))
