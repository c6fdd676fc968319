"""How a notification block delivers: when to retry, how long to wait, and what a failure
looks like to the Prefect server.

The retry decision is one pure function (`retry_delay`) so that Slack and PagerDuty follow
the same policy and the tests can check it without a network or a clock: Slack's client
(slack_sdk) asks it through `SlackSdkRetry`, PagerDuty's HTTP loop (`post_json`) directly.
Every wait goes through an injectable `sleep`, so no test sleeps for real backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from prefect.blocks.abstract import NotificationError
from pydantic import SecretStr
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

HTTP_TIMEOUT_S = 5.0
REDACTED = "**redacted**"

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class RetryPolicy:
    """Both Slack and PagerDuty ask for the same: retry 429 after `Retry-After` (capped),
    retry 5xx and transport errors with exponential backoff, never retry another 4xx (a
    dead webhook or a revoked key does not come back by asking again)."""

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0


DEFAULT_POLICY = RetryPolicy()


def retry_delay(
    policy: RetryPolicy, attempt: int, status: int | None, retry_after: str | None = None
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up.

    `attempt` is how many attempts were made (1 after the first); `status` is the HTTP
    status, None for a transport error (refused, reset, timed out).
    """
    if attempt >= policy.max_attempts:
        return None
    backoff = min(policy.base_delay_s * 2.0**attempt, policy.max_delay_s)
    if status is None or status >= 500:
        return backoff
    if status == 429:
        try:
            wanted = float(retry_after) if retry_after is not None else backoff
        except ValueError:
            wanted = backoff
        return min(max(wanted, 0.0), policy.max_delay_s)
    return None


def redact(text: str, *secrets: SecretStr | str | None) -> str:
    """`text` with every secret value cut out."""
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            text = text.replace(value, REDACTED)
    return text


@contextmanager
def delivery(what: str, *secrets: SecretStr | str | None) -> Iterator[None]:
    """Every failure of a delivery becomes a `NotificationError`, so the server records
    `prefect.automation.action.failed` (and the delivery-failed rule sees it) whatever went
    wrong; secret values are cut out of the log the event carries."""
    try:
        yield
    except Exception as exc:
        log = exc.log if isinstance(exc, NotificationError) else f"{what} failed: {exc!r}"
        raise NotificationError(log=redact(log, *secrets)) from exc


def failed(status: int, body: str) -> NotificationError:
    return NotificationError(log=f"HTTP {status}: {body[:500]}")


async def post_json(
    url: str,
    payload: dict[str, Any],
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = asyncio.sleep,
) -> httpx.Response:
    """POST JSON with `policy`; raises `NotificationError` once it gives up."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await client.post(url, json=payload)
            except httpx.TransportError as exc:
                delay = retry_delay(policy, attempt, None)
                if delay is None:
                    raise NotificationError(log=f"transport error: {exc!r}") from exc
                await sleep(delay)
                continue
            if response.status_code < 300:
                return response
            delay = retry_delay(
                policy, attempt, response.status_code, response.headers.get("Retry-After")
            )
            if delay is None:
                raise failed(response.status_code, response.text)
            await sleep(delay)


class SlackSdkRetry(AsyncRetryHandler):
    """A slack_sdk retry handler that follows `retry_delay`.

    slack_sdk's own handlers retry only 500 and 503 and add up to a second of jitter to
    every 429 wait; this one plugs the shared policy into the same hook (`can_retry_async`
    / `prepare_for_next_attempt_async`) of slack_sdk's webhook client.
    """

    def __init__(self, policy: RetryPolicy = DEFAULT_POLICY, sleep: Sleep = asyncio.sleep):
        super().__init__(max_retry_count=policy.max_attempts - 1)
        self.policy = policy
        self.sleep = sleep

    def _delay(
        self, state: RetryState, response: HttpResponse | None, error: Exception | None
    ) -> float | None:
        if response is None and error is None:
            return None
        status = response.status_code if response is not None else None
        retry_after = None
        if response is not None:
            for key, values in response.headers.items():
                if key.lower() == "retry-after" and values:
                    retry_after = values[0] if isinstance(values, list) else str(values)
        return retry_delay(self.policy, state.current_attempt + 1, status, retry_after)

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return self._delay(state, response, error) is not None

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        delay = self._delay(state, response, error)
        state.next_attempt_requested = True
        await self.sleep(delay or 0.0)
        state.increment_current_attempt()
