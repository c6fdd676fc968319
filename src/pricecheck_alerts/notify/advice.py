"""What to do about a failed scraping task: its cause, read from the error text, and advice.

Shown in the alert of a task failure whose task or flow run carries a rule's
`classify_tags` (for example `scraping`).
"""

from __future__ import annotations

import re

# Matched on exception names and the phrases httpx, asyncio and the OS use, not on bare
# words or numbers: "could not parse price '403,500 DT'" is not a refusal.
_TIMEOUT = re.compile(
    r"\b(?:\w*Timeout(?:Exception|Error)?|TimeoutError)\b|\btimed out\b|"
    r"exceeded timeout of|deadline exceeded",
)
_AUTH = re.compile(
    r"\b(?:Client error|HTTP|status(?: code)?)\W{0,3}'?40[13]\b|"
    r"\b40[13] (?:Forbidden|Unauthorized)\b",
    re.I,
)
_CONNECTION = re.compile(
    r"\bConnectError\b|Connection (?:refused|reset|aborted)|Name or service not known|"
    r"nodename nor servname|Temporary failure in name resolution|No route to host|"
    r"\bRemoteProtocolError\b|Server disconnected",
    re.I,
)

SCRAPING_ADVICE = {
    "timeout": (
        "The site did not answer in time. Open the site to see if it is down or slow; if it "
        "is only slow, raise this site's timeout or lower its request rate in the scraping "
        "config. Retries already ran."
    ),
    "http-401-403": (
        "The site refused us (HTTP 401/403): we are probably blocked or the page now needs a "
        "login. Do not just re-run: check the user agent and rate limit, slow down, and ask "
        "the site owner or rotate the egress address before the next run."
    ),
    "connection": (
        "We could not connect to the site (DNS, refused or reset connection). Check that the "
        "site is up and that the worker has network egress; it is not a parsing problem."
    ),
    "other": (
        "Unclassified error: open the run's logs. If the page layout changed, update the "
        "site's selectors; if it is a bug in the task, fix it and re-run the deployment."
    ),
}


def classify_scraping_error(message: str) -> tuple[str, str]:
    """Classify a scraping failure from its error text: timeout, 401/403, connection, other.

    Timeouts are tested first because httpx's ConnectTimeout is both.
    """
    for cause, pattern in (
        ("timeout", _TIMEOUT),
        ("http-401-403", _AUTH),
        ("connection", _CONNECTION),
    ):
        if pattern.search(message):
            return cause, SCRAPING_ADVICE[cause]
    return "other", SCRAPING_ADVICE["other"]
