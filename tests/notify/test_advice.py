"""Scraping failures classified from their error text."""

from __future__ import annotations

import pytest

from pricecheck_alerts.notify.advice import classify_scraping_error


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("ReadTimeout: timed out", "timeout"),
        ("httpx.ConnectTimeout: connection timeout", "timeout"),
        ("HTTPStatusError: Client error '401 Unauthorized'", "http-401-403"),
        ("Client error '403 Forbidden' for url 'https://tunisianet.com.tn'", "http-401-403"),
        ("ConnectError: [Errno 111] Connection refused", "connection"),
        ("[Errno -2] Name or service not known", "connection"),
        ("ValueError: could not parse price '1 299,000 DT'", "other"),
        ("ValueError: could not parse price '403,500 DT'", "other"),
        ("OverflowError: datetime outside supported range", "other"),
        ("KeyError: 'time_out_ms'", "other"),
        ("TimeoutError()", "timeout"),
    ],
)
def test_scraping_errors_are_classified(message: str, cause: str) -> None:
    assert classify_scraping_error(message)[0] == cause
