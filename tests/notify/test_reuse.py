"""Deliveries reuse their HTTP machinery: many notifications build one SSL context and one
client per event loop, not one each (the server delivers on one long-lived loop).

The counts are of real constructions (`ssl.create_default_context`, `httpx.AsyncClient`,
`aiohttp.ClientSession`), taken by wrapping the constructors, not of our own bookkeeping.
"""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from pricecheck_alerts.notify import transport
from pricecheck_alerts.notify.pagerduty import PagerDutyAlert
from pricecheck_alerts.notify.slack import SlackAlert
from pricecheck_alerts.notify.transport import PerLoop
from tests.notify.scripted import Scripted

FACTS = json.dumps(
    {
        "v": 1,
        "static": {
            "rule": "flow-run-failed",
            "title": "Flow run failed",
            "description": "A run failed.",
            "severity": "critical",
            "runbook": "https://runbooks.example/x",
            "environment": "test",
        },
        "event": {"name": "prefect.flow-run.Failed", "deployment": "d", "flow": "f"},
        "flow_run": {"id": "1", "name": "run", "state": "Failed", "message": "boom"},
    }
)
NOTIFICATIONS = 40


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts constructions of SSL contexts, httpx clients and aiohttp sessions, starting
    from empty caches (earlier tests may have built the process's contexts already)."""
    counts: Counter[str] = Counter()
    monkeypatch.setattr(transport, "_TLS_CONTEXTS", {})
    monkeypatch.setattr(
        transport, "HTTP_CLIENTS", PerLoop(transport._http_client, transport._close_http)
    )
    monkeypatch.setattr(
        transport, "SLACK_SESSIONS", PerLoop(transport._slack_session, transport._close_session)
    )
    # slack.py imported the name: patch it there too.
    monkeypatch.setattr("pricecheck_alerts.notify.slack.SLACK_SESSIONS", transport.SLACK_SESSIONS)

    def counting(name: str, original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        ssl, "create_default_context", counting("ssl", ssl.create_default_context)
    )
    for cls, name in ((httpx.AsyncClient, "httpx"), (aiohttp.ClientSession, "aiohttp")):
        monkeypatch.setattr(cls, "__init__", counting(name, cls.__init__))
    yield counts


@pytest.mark.parametrize("endpoint", [[]], indirect=True)
def test_many_notifications_build_one_client_and_one_ssl_context(
    endpoint: Scripted, built: Counter[str]
) -> None:
    slack = SlackAlert(url=endpoint.url)
    pagerduty = PagerDutyAlert(events_url=endpoint.url, routing_key="k" * 32)

    async def burst() -> None:
        await asyncio.gather(
            *[slack.notify(FACTS) for _ in range(NOTIFICATIONS)],
            *[pagerduty.notify(FACTS) for _ in range(NOTIFICATIONS)],
        )
        # and again, once the first burst's connections are idle in the pool
        for _ in range(5):
            await slack.notify(FACTS)
            await pagerduty.notify(FACTS)

    asyncio.run(burst())
    assert len(endpoint.bodies) == 2 * (NOTIFICATIONS + 5)
    assert built == Counter(ssl=1, httpx=1, aiohttp=1)
    assert transport.HTTP_CLIENTS.built == 1 and transport.SLACK_SESSIONS.built == 1


@pytest.mark.parametrize("endpoint", [[]], indirect=True)
def test_each_event_loop_gets_its_own_client_and_all_share_the_context(
    endpoint: Scripted, built: Counter[str]
) -> None:
    """Prefect may run actions on loops in several threads: a client is bound to its loop,
    so each loop has its own, and a loop's shutdown closes it."""
    pagerduty = PagerDutyAlert(events_url=endpoint.url, routing_key="k" * 32)
    slack = SlackAlert(url=endpoint.url)
    clients: list[httpx.AsyncClient] = []
    errors: list[BaseException] = []

    async def deliver() -> None:
        for _ in range(10):
            await pagerduty.notify(FACTS)
            await slack.notify(FACTS)
        clients.append(await transport.HTTP_CLIENTS.get())

    def in_thread() -> None:
        try:
            asyncio.run(deliver())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=in_thread) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(endpoint.bodies) == 3 * 20
    assert built == Counter(ssl=1, httpx=3, aiohttp=3)
    assert len({id(client) for client in clients}) == 3
    assert all(client.is_closed for client in clients)  # closed when asyncio.run ended


@pytest.mark.parametrize("endpoint", [[]], indirect=True)
def test_a_loop_closed_by_hand_leaves_nothing_behind(
    endpoint: Scripted, built: Counter[str]
) -> None:
    """A loop closed without `asyncio.run`'s shutdown (no async-generator cleanup) drops
    its client at the next lookup, quietly: nothing raises from the garbage collector."""
    pagerduty = PagerDutyAlert(events_url=endpoint.url, routing_key="k" * 32)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(pagerduty.notify(FACTS))
    loop.close()
    unraisable: list[Any] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        asyncio.run(pagerduty.notify(FACTS))
        del loop
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == []
    assert len(endpoint.bodies) == 2 and built["httpx"] == 2
    assert len(transport.HTTP_CLIENTS._entries) == 0
