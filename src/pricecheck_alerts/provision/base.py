"""The shape every provisioned Prefect resource kind shares: typed CRUD by id.

`pricecheck-alerts apply` and the Pulumi dynamic providers (infra/) both call these. Each
kind takes and returns plain JSON-able dicts (Pulumi state is JSON). By default each call
opens its own client, so nothing holds a connection between calls (providers are pickled
into Pulumi state); `apply` instead hands every kind one shared client (one connection
pool, one CSRF token) for the whole run. `read` returns what the server has *now*, in the
same shape as the inputs, so a UI edit shows up as a difference (drift). A 404 on delete
counts as deleted. Credentials (`api_key` for Prefect Cloud, `auth_string` for a server
with basic auth) travel with each instance, never through globals.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

from prefect.client.orchestration import SyncPrefectClient

from pricecheck_alerts.provision.client import prefect_client


class PrefectResource:
    """One kind of resource. `inputs` are what we want; `read` gives what the server has."""

    kind: ClassVar[str]

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        client: SyncPrefectClient | None = None,
        auth_string: str | None = None,
    ) -> None:
        # `auth_string` comes last: callers pass `client` by keyword, and the providers
        # pass (api_url, api_key) positionally.
        self.api_url = api_url
        self.api_key = api_key
        self.auth_string = auth_string
        self.shared = client

    def client(self) -> AbstractContextManager[SyncPrefectClient]:
        """The shared client if one was given (left open), else a fresh one per call."""
        if self.shared is not None:
            return nullcontext(self.shared)
        return prefect_client(self.api_url, self.api_key, self.auth_string)

    def create(self, inputs: dict[str, Any]) -> str:
        raise NotImplementedError

    def read(self, resource_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def update(self, resource_id: str, inputs: dict[str, Any]) -> str:
        """Update in place; returns the id (unchanged for every kind here)."""
        raise NotImplementedError

    def delete(self, resource_id: str) -> None:
        raise NotImplementedError

    def find(self, name: str) -> str | None:
        """The id of the resource with this name, for reconciling by name (`apply`)."""
        raise NotImplementedError

    def replace_keys(self) -> tuple[str, ...]:
        """Inputs the API cannot change in place: a change means delete + create."""
        return ("name",)

    def normalize(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Inputs in the shape `read` returns, for comparison."""
        return inputs

    def differs(self, desired: dict[str, Any], actual: dict[str, Any] | None) -> list[str]:
        """The input keys whose desired value is not what the server has."""
        if actual is None:
            return sorted(desired)
        wanted = self.normalize(desired)
        return sorted(k for k in wanted if wanted[k] != actual.get(k))
