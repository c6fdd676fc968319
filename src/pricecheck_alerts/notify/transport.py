"""How a notification block delivers: when to retry, how long to wait, and what a failure
looks like to the Prefect server.

The retry decision is one pure function (`retry_delay`) so that Slack and PagerDuty follow
the same policy and the tests can check it without a network or a clock: Slack's client
(slack_sdk) asks it through `SlackSdkRetry`, PagerDuty's HTTP loop (`post_json`) directly.
Every wait goes through an injectable `sleep`, so no test sleeps for real backoff.

The HTTP machinery is built once and reused (see `PerLoop`, `tls_context`): the blocks run
inside the Prefect server, and a client built per notification costs a fresh SSL context
(certificate store loaded and parsed) and a new TCP/TLS connection every time, which at tens
of alerts per second was most of the server's work.
"""

from __future__ import annotations

import asyncio
import functools
import os
import smtplib
import ssl
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
import httpx
from prefect.blocks.abstract import NotificationError
from pydantic import SecretStr
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from pricecheck_alerts.redelivery import Envelope, with_envelope

HTTP_TIMEOUT_S = 5.0
REDACTED = "**redacted**"
# Connections kept open per event loop: enough for a burst to every destination at once.
HTTP_MAX_CONNECTIONS = 50
HTTP_KEEPALIVE_S = 30.0

Sleep = Callable[[float], Awaitable[Any]]
T = TypeVar("T")

_TLS_LOCK = threading.Lock()
_TLS_CONTEXTS: dict[tuple[str, str | None, str | None], ssl.SSLContext] = {}


def tls_context(kind: str = "http") -> ssl.SSLContext:
    """The process's one SSL context of `kind`, built on first use.

    `http` is what httpx would build (certifi, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), shared
    by the Slack and PagerDuty clients; `smtp` is prefect-email's (the system store, or the
    same variables); `smtp-unverified` is prefect-email's `verify=False`. An `SSLContext` is
    safe to share between threads and event loops (each connection gets its own `SSLSocket`
    or `SSLObject`), and building one loads and parses the whole certificate store, so it is
    built once, not per notification. The cache is keyed by the certificate variables too,
    so a process that changes them (a test trusting a throwaway CA) gets a matching context.
    """
    key = (kind, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _TLS_LOCK:
        context = _TLS_CONTEXTS.get(key)
        if context is None:
            if kind == "http":
                context = httpx.create_ssl_context()
            elif kind == "smtp":
                context = ssl.create_default_context()
            elif kind == "smtp-unverified":
                context = ssl._create_unverified_context(protocol=ssl.PROTOCOL_TLS_CLIENT)
            else:
                raise ValueError(f"unknown TLS context kind {kind!r}")
            _TLS_CONTEXTS[key] = context
        return context


class PerLoop(Generic[T]):
    """One `T` (an HTTP client) per running event loop, built on first use in that loop,
    closed when the loop shuts down.

    Why per loop rather than one for the process: an `httpx.AsyncClient` or an
    `aiohttp.ClientSession` holds connections and locks bound to the loop that opened them,
    and using one from another loop fails or hangs. The Prefect server runs its actions on
    one long-lived loop, so there this is one client for the life of the server; code that
    runs a notification with `asyncio.run` (tests, `smoke`, scripts) gets a client per run,
    still not one per notification. A shared *sync* client used through a thread would work
    across loops too, but every delivery in flight would then hold a thread of a small pool
    for its whole round trip; async clients keep concurrency free.

    Closing: each client is paired with an async generator that the loop registers through
    its async-generator hooks; `asyncio.run` (and uvicorn's shutdown) close those
    generators before closing the loop, which closes the client on its own loop. A loop
    closed without that (a bare `loop.close()`) just drops its entry at the next lookup.
    A threading lock guards the table because Prefect may run loops in several threads;
    nothing awaits while holding it.
    """

    def __init__(self, build: Callable[[], T], close: Callable[[T], Awaitable[Any]]) -> None:
        self._build = build
        self._close = close
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self.built = 0
        """How many were built: one per event loop, whatever the number of notifications."""

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [other for other in self._entries if other.is_closed()]:
                del self._entries[stale]
            entry = self._entries.get(loop)
            if entry is not None:
                return entry[0]
            item = self._build()
            self.built += 1
            keeper = self._keep(loop, item)
            self._entries[loop] = (item, keeper)
        # The first step registers the keeper with the loop (the loop's own `firstiter`
        # hook) and gives it a finalizer that stays quiet once the loop is closed, where
        # asyncio's would raise from the garbage collector.
        hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(
            firstiter=hooks.firstiter, finalizer=functools.partial(_finalize, loop)
        )
        try:
            first = anext(keeper)
        finally:
            sys.set_asyncgen_hooks(*hooks)
        await first
        return item

    async def _keep(self, loop: asyncio.AbstractEventLoop, item: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                self._entries.pop(loop, None)
            await self._close(item)


def _finalize(loop: asyncio.AbstractEventLoop, keeper: AsyncGenerator[None, None]) -> None:
    """A keeper dropped before its loop shut down: close it on its loop if that still
    runs; on a closed loop its client is already unusable and goes with it."""
    if not loop.is_closed():
        with suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(loop.create_task, keeper.aclose())


def _http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=HTTP_TIMEOUT_S,
        verify=tls_context("http"),
        limits=httpx.Limits(
            max_connections=HTTP_MAX_CONNECTIONS,
            max_keepalive_connections=HTTP_MAX_CONNECTIONS,
            keepalive_expiry=HTTP_KEEPALIVE_S,
        ),
    )


def _slack_session() -> aiohttp.ClientSession:
    # What slack_sdk's webhook client builds per request when given no session (same
    # timeout, no proxy variables), plus the shared SSL context and a connection pool.
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
        connector=aiohttp.TCPConnector(
            ssl=tls_context("http"),
            limit=HTTP_MAX_CONNECTIONS,
            keepalive_timeout=HTTP_KEEPALIVE_S,
        ),
        trust_env=False,
    )


async def _close_http(client: httpx.AsyncClient) -> None:
    await client.aclose()


async def _close_session(session: aiohttp.ClientSession) -> None:
    await session.close()


HTTP_CLIENTS: PerLoop[httpx.AsyncClient] = PerLoop(_http_client, _close_http)
"""PagerDuty's (and any JSON POST's) client, one per event loop."""

SLACK_SESSIONS: PerLoop[aiohttp.ClientSession] = PerLoop(_slack_session, _close_session)
"""The aiohttp session slack_sdk's webhook client posts through, one per event loop."""


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


class Refused(NotificationError):
    """The destination answered with an HTTP error status (`status`)."""

    def __init__(self, status: int, log: str) -> None:
        super().__init__(log=log)
        self.status = status


def permanent(exc: BaseException) -> bool:
    """Whether asking again cannot help: a 4xx other than 408/429 (an archived webhook, a
    revoked routing key, a malformed payload) or an SMTP 5xx (a refused login, sender or
    recipient). A 5xx, a 429, a timeout or a refused connection may pass later."""
    if isinstance(exc, Refused):
        return 400 <= exc.status < 500 and exc.status not in (408, 429)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    return False


@contextmanager
def delivery(
    what: str, *secrets: SecretStr | str | None, body: str | None = None, subject: str | None = None
) -> Iterator[None]:
    """Every failure of a delivery becomes a `NotificationError`, so the server records
    `prefect.automation.action.failed` (and the delivery-failed rule sees it) whatever went
    wrong; secret values are cut out of the log the event carries.

    Given the alert (`body`, `subject` as the server rendered them), the log also carries
    it in an envelope with whether a retry can help, which is what the `alert-redelivery`
    flow sends again later (see `pricecheck_alerts.redelivery`)."""
    try:
        yield
    except Exception as exc:
        log = exc.log if isinstance(exc, NotificationError) else f"{what} failed: {exc!r}"
        log = redact(log, *secrets)
        if body is not None:
            retry = not permanent(exc)
            log = with_envelope(log, Envelope(retry, redact(body, *secrets), subject))
        raise NotificationError(log=log) from exc


def failed(status: int, body: str) -> Refused:
    return Refused(status, f"HTTP {status}: {body[:500]}")


async def post_json(
    url: str,
    payload: dict[str, Any],
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = asyncio.sleep,
) -> httpx.Response:
    """POST JSON with `policy` through the loop's shared client; raises
    `NotificationError` once it gives up."""
    client = await HTTP_CLIENTS.get()
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
