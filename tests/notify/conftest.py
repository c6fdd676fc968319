"""Fixtures of the delivery tests: scripted endpoints and a port nobody listens on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.local_server import free_port
from tests.notify.scripted import Scripted


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[Scripted]:
    scripted = Scripted(request.param)
    yield scripted
    scripted.close()


@pytest.fixture
def unused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/hook"
