"""Read events back from the Prefect server (`POST /api/events/filter`, then `next_page`).

The daily report counts alerts from the server's automation events with it, `smoke` checks
that a stack's automation delivered, and the tests assert which signals a run emitted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect.client.orchestration import get_client


def read_events(
    since: datetime,
    until: datetime | None = None,
    names: list[str] | None = None,
    prefixes: list[str] | None = None,
    related_ids: list[str] | None = None,
    resource_ids: list[str] | None = None,
    max_events: int = 5000,
) -> list[dict[str, Any]]:
    """Events in the window, oldest first, as the API returns them (JSON dicts)."""
    event_filter: dict[str, Any] = {"occurred": {"since": since.isoformat()}, "order": "ASC"}
    if until is not None:
        event_filter["occurred"]["until"] = until.isoformat()
    if names or prefixes:
        event_filter["event"] = {
            **({"name": names} if names else {}),
            **({"prefix": prefixes} if prefixes else {}),
        }
    if related_ids:
        event_filter["related"] = {"id": related_ids}
    if resource_ids:
        event_filter["resource"] = {"id": resource_ids}
    events: list[dict[str, Any]] = []
    with get_client(sync_client=True) as client:
        response = client.request(
            "POST", "/events/filter", json={"filter": event_filter, "limit": 50}
        )
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        events.extend(page["events"])
        while page.get("next_page") and len(events) < max_events:
            response = client._client.get(page["next_page"])
            response.raise_for_status()
            page = response.json()
            events.extend(page["events"])
    return events[:max_events]
