"""The shared retry policy: which answers are retried and how long each wait is."""

from __future__ import annotations

import asyncio
import json

import pytest
from prefect.blocks.abstract import NotificationError

from pricecheck_alerts.notify.transport import (
    DEFAULT_POLICY,
    RetryPolicy,
    SlackSdkRetry,
    delivery,
    post_json,
    retry_delay,
)
from tests.notify.scripted import Scripted

POLICY = RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=10.0)


@pytest.mark.parametrize(
    ("attempt", "status", "retry_after", "expected"),
    [
        (1, 500, None, 1.0),  # 5xx: exponential backoff, 0.5 * 2**attempt
        (2, 503, None, 2.0),
        (1, 502, None, 1.0),  # every 5xx, not only the 500/503 slack_sdk knows
        (1, None, None, 1.0),  # refused / reset / timed out
        (1, 429, "3", 3.0),  # 429: what Retry-After asks
        (1, 429, "600", 10.0),  # ...capped
        (1, 429, "soon", 1.0),  # ...or backoff when unreadable
        (1, 429, None, 1.0),
        (3, 500, None, None),  # out of attempts
        (1, 400, None, None),  # a bad payload does not get better
        (1, 403, None, None),  # revoked token
        (1, 404, None, None),  # dead webhook
        (1, 410, None, None),  # archived channel
    ],
)
def test_retry_decision(
    attempt: int, status: int | None, retry_after: str | None, expected: float | None
) -> None:
    assert retry_delay(POLICY, attempt, status, retry_after) == expected


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1, max_delay_s=5)
    assert [retry_delay(policy, n, 503) for n in range(1, 11)] == [2, 4, *[5] * 7, None]


class Waits(list[float]):
    """An injected `sleep` that records the waits instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize(
    "endpoint", [[(503, {}), (429, {"Retry-After": "7"}), (200, {})]], indirect=True
)
def test_post_json_follows_the_policy(endpoint: Scripted) -> None:
    waits = Waits()
    asyncio.run(post_json(endpoint.url, {"x": 1}, DEFAULT_POLICY, waits))
    assert waits == [1.0, 7.0] and len(endpoint.bodies) == 3


@pytest.mark.parametrize("endpoint", [[(500, {}), (502, {}), (504, {})]], indirect=True)
def test_post_json_gives_up_after_the_last_attempt(endpoint: Scripted) -> None:
    waits = Waits()
    with pytest.raises(NotificationError) as caught:
        asyncio.run(post_json(endpoint.url, {}, DEFAULT_POLICY, waits))
    assert "HTTP 504" in caught.value.log and waits == [1.0, 2.0]


def test_post_json_retries_a_refused_connection(unused_url: str) -> None:
    waits = Waits()
    with pytest.raises(NotificationError) as caught:
        asyncio.run(post_json(unused_url, {}, DEFAULT_POLICY, waits))
    assert "transport error" in caught.value.log and waits == [1.0, 2.0]


def test_slack_sdk_handler_asks_the_same_policy() -> None:
    handler = SlackSdkRetry(DEFAULT_POLICY, Waits())
    assert handler.max_retry_count == DEFAULT_POLICY.max_attempts - 1


def test_delivery_turns_any_error_into_a_redacted_notification_error() -> None:
    secret = "https://hooks.example/T000/B000/XXXX"
    with pytest.raises(NotificationError) as caught, delivery("Slack delivery", secret):
        raise ValueError(json.dumps({"url": secret}))
    assert secret not in caught.value.log and "**redacted**" in caught.value.log
