"""A real Prefect server closed to strangers, as staging and prod run it: basic auth
(PREFECT_SERVER_API_AUTH_STRING) and CSRF protection, one per test module.

Not the session's open server: a server either takes an auth string or it does not, so the
modules here pay their own start (~15-20 s each). The auth string is random per session, so
finding it anywhere it must not be (logs, outputs, Pulumi inputs) cannot be a coincidence.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest
from prefect.logging.handlers import APILogWorker

from devtools.local_server import LocalPrefectServer

AUTH_STRING = f"pricecheck-ops:{secrets.token_urlsafe(24)}"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefectServer]:
    """A `prefect server start` with basic auth and CSRF protection; this process (its
    settings and environment, inherited by subprocesses) is its authenticated client."""
    server = LocalPrefectServer(
        home=tmp_path_factory.mktemp("prefect-auth-home"), auth_string=AUTH_STRING
    ).start()
    try:
        with server.as_current():
            yield server
            with contextlib.suppress(RuntimeError):
                APILogWorker.instance().drain()
    finally:
        server.stop()
