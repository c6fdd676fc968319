"""The Pulumi dynamic providers against a Prefect server with basic auth: every kind in
`provision.KINDS` is created, read, diffed, updated and deleted with the auth string as
the `auth_string` input, and nothing else.

The provider host of `pulumi up` is a separate process with no Prefect settings of its own;
here the test's ambient credentials are switched off around every provider call
(`no_ambient_credentials`), so only the input can open the server. The providers are the
copies deserialized from what Pulumi stores in state, as in tests/infra.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from infra.test_providers import KINDS, Case, _cases, deserialized, props
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, temporary_settings
from pricecheck_infra.providers import CREDENTIAL_KEYS, resource_inputs

from devtools.local_server import LocalPrefectServer
from pricecheck_alerts.provision import KINDS as PROVISION_KINDS

from .conftest import AUTH_STRING


@contextmanager
def no_ambient_credentials() -> Iterator[None]:
    """This process's Prefect settings without any credential, as in the provider host."""
    with temporary_settings(restore_defaults={PREFECT_API_AUTH_STRING, PREFECT_API_KEY}):
        yield


@pytest.fixture(scope="module")
def api_url(auth_server: LocalPrefectServer) -> str:
    return auth_server.api_url


@pytest.fixture(scope="module")
def cases(api_url: str) -> dict[str, Case]:
    return _cases(api_url)  # made with this process's own (ambient) credentials


def test_every_kind_is_covered() -> None:
    assert sorted(KINDS) == sorted(PROVISION_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_lifecycle_with_the_auth_string_as_input(
    kind: str,
    api_url: str,
    cases: dict[str, Case],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    case = cases[kind]
    provider = deserialized(kind)
    news = props(api_url, case.create, auth_string=AUTH_STRING)
    caplog.set_level(logging.DEBUG)
    with no_ambient_credentials():
        # Without the input, the server says no.
        with pytest.raises(httpx.HTTPStatusError, match="401"):
            provider.create(props(api_url, case.create))

        assert provider.check({}, news).failures == []
        created = provider.create(news)
        outs = created.outs or {}
        assert outs["auth_string"] == AUTH_STRING  # kept for later calls; a secret output
        read = provider.read(created.id, outs)
        assert read.id == created.id
        assert case.resource(api_url).differs(case.create, resource_inputs(read.outs or {})) == []
        assert provider.diff(created.id, outs, news).changes is False

        # Rotation: the server now takes a new string and the config holds it. An update
        # (state gets the new string), never a replacement.
        stale = {**outs, "auth_string": "pricecheck-ops:the-old-one"}
        rotated = provider.diff(created.id, stale, news)
        assert rotated.changes is True and rotated.replaces == []

        updated_news = props(api_url, case.update, auth_string=AUTH_STRING)
        diff = provider.diff(created.id, outs, updated_news)
        assert diff.changes is True and diff.replaces == []
        outs = provider.update(created.id, outs, updated_news).outs or {}
        assert provider.diff(created.id, outs, updated_news).changes is False

        provider.delete(created.id, outs)
        provider.delete(created.id, outs)  # 404: already gone is success
        assert provider.read(created.id, outs).id == ""

    captured = capfd.readouterr()
    for text in (caplog.text, captured.out, captured.err):
        assert AUTH_STRING not in text


def test_credentials_are_connection_inputs_not_resource_fields(api_url: str) -> None:
    """Neither credential is ever sent to Prefect as a field of the resource."""
    body = resource_inputs(
        props(api_url, {"name": "x", "value": 1}, auth_string=AUTH_STRING, api_key="pnu_x")
    )
    assert body == {"name": "x", "value": 1}
    assert set(CREDENTIAL_KEYS) == {"api_key", "auth_string"}
