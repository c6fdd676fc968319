"""The Prefect API client every provisioning call uses, and reading listings whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from prefect.client.orchestration import SyncPrefectClient, get_client

T = TypeVar("T")

PAGE_SIZE = 200
"""Items per request. Prefect's filter endpoints return at most the server's default limit
(200) when not asked otherwise, and say nothing about the rest: a listing that reads one
page sees the first 200 objects only (apply then re-created the others on every run)."""


def all_pages(read_page: Callable[[int, int], Sequence[T]], page_size: int = PAGE_SIZE) -> list[T]:
    """Every item of a paged listing; `read_page(offset, limit)` reads one page, which
    must be in a stable order (sort by name or id)."""
    items: list[T] = []
    while True:
        page = read_page(len(items), page_size)
        items.extend(page)
        if len(page) < page_size:
            return items


@contextmanager
def prefect_client(
    api_url: str | None = None, api_key: str | None = None, auth_string: str | None = None
) -> Iterator[SyncPrefectClient]:
    """A fresh sync client for `api_url` with its credentials: `api_key` (Prefect Cloud) or
    `auth_string` (`user:password`, a self-hosted server started with
    PREFECT_SERVER_API_AUTH_STRING). Without `api_url`, the server PREFECT_API_URL names,
    with whatever credentials Prefect's settings hold (PREFECT_API_KEY,
    PREFECT_API_AUTH_STRING).

    The credentials go into temporary settings, not into the environment: the Pulumi
    provider host serves several resources (possibly of several stacks) in one process, so
    nothing may leak from one call into the next."""
    if api_url:
        from prefect.settings import (
            PREFECT_API_AUTH_STRING,
            PREFECT_API_KEY,
            PREFECT_API_URL,
            temporary_settings,
        )

        wanted: dict[Any, Any] = {PREFECT_API_URL: api_url}
        if api_key:
            wanted[PREFECT_API_KEY] = api_key
        if auth_string:
            wanted[PREFECT_API_AUTH_STRING] = auth_string
        with temporary_settings(wanted), get_client(sync_client=True) as c:
            yield c
    else:
        with get_client(sync_client=True) as client:
            yield client
