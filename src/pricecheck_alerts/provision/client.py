"""The Prefect API client every provisioning call uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.client.orchestration import SyncPrefectClient, get_client


@contextmanager
def prefect_client(
    api_url: str | None = None, api_key: str | None = None
) -> Iterator[SyncPrefectClient]:
    """A fresh sync client (for `api_url` and `api_key`, e.g. Prefect Cloud, or the server
    PREFECT_API_URL names)."""
    if api_url:
        from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL, temporary_settings

        wanted: dict[Any, Any] = {PREFECT_API_URL: api_url}
        if api_key:
            wanted[PREFECT_API_KEY] = api_key
        with temporary_settings(wanted), get_client(sync_client=True) as c:
            yield c
    else:
        with get_client(sync_client=True) as client:
            yield client
