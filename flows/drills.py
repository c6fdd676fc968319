"""Alert drills: tiny flows that fail, crash, time out, overrun or recover on purpose.

The demo and the end-to-end tests deploy them to prove each alert rule fires. They do
nothing else; the real pipeline lives beside them.
"""

from __future__ import annotations

import time

import httpx
from prefect import flow, task


@flow(name="drill-flaky", retries=0)
def flaky(fail: bool = True, message: str = "simulated failure") -> str:
    """Fails with `message` when `fail`, else completes: failure then recovery."""
    if fail:
        raise RuntimeError(message)
    return "ok"


@flow(name="drill-crash")
def crash() -> None:
    """Dies the way a killed process does: a BaseException the engine reports as Crashed."""
    raise KeyboardInterrupt("simulated crash")


@flow(name="drill-timeout", timeout_seconds=2)
def timeout() -> None:
    """Exceeds its 2 s timeout, ending TimedOut."""
    time.sleep(30)


@flow(name="drill-slow")
def slow(seconds: float = 20.0) -> str:
    """Runs longer than its deployment's duration SLA, then completes."""
    time.sleep(seconds)
    return "done"


ERRORS = {
    "forbidden": lambda: httpx.HTTPStatusError(
        "Client error '403 Forbidden' for url 'https://www.mytek.tn/'",
        request=httpx.Request("GET", "https://www.mytek.tn/"),
        response=httpx.Response(403),
    ),
    "timeout": lambda: httpx.ReadTimeout("timed out"),
    "connection": lambda: httpx.ConnectError("[Errno 111] Connection refused"),
    "other": lambda: ValueError("unexpected page layout"),
}


@task(name="scrape-site", tags=["scraping"], retries=1, retry_delay_seconds=0)
def scrape_site(error: str) -> None:
    raise ERRORS[error]()


@flow(name="drill-scrape")
def scrape(error: str = "forbidden") -> str:
    """A scraping task fails after its retries; the flow itself completes."""
    state = scrape_site(error, return_state=True)
    return f"scrape ended {state.name}"
