"""The Pulumi program of staging and prod with the Prefect auth string as secret config
(`pricechecktn:prefectAuthString`), under Pulumi's mocks: every Prefect resource carries it
as a secret input and a secret output, it appears nowhere outside a secret wrapper, the
policy pack accepts such a stack and refuses one without any Prefect credential, and a
plain-text auth string is refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra.harness import engine_config, run_stack
from infra.test_policy import _as_res
from infra.test_program import plaintext_strings
from pricecheck_policy import rules
from pulumi.runtime import rpc

from devtools.pulumi_mocks import PROJECT, StackRun
from pricecheck_alerts.config.loader import ConfigError

from .conftest import AUTH_STRING

PREFECT_PREFIX = "pulumi-python:dynamic/prefect:"
AUTH_KEY = f"{PROJECT}:prefectAuthString"
API_KEY = f"{PROJECT}:prefectApiKey"


def run_with(
    stack: str, monkeypatch: pytest.MonkeyPatch, *, auth: bool, api_key: bool, secret: bool = True
) -> StackRun:
    """The stack's program with its file config, the fake secrets, and the chosen Prefect
    credentials (the auth string set with `--secret` unless `secret=False`)."""
    config, secret_keys = engine_config(stack)
    if not api_key:
        config.pop(API_KEY, None)
        secret_keys = [k for k in secret_keys if k != API_KEY]
    if auth:
        config[AUTH_KEY] = AUTH_STRING
        if secret:
            secret_keys = [*secret_keys, AUTH_KEY]
    return run_stack(stack, monkeypatch, config=config, secret_keys=secret_keys)


def prefect_resources(run: StackRun) -> list[Any]:
    found = [r for r in run.resources if r.type.startswith(PREFECT_PREFIX)]
    assert found
    return found


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_auth_string_reaches_every_prefect_resource_as_a_secret(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_with(stack, monkeypatch, auth=True, api_key=False)
    for registration in prefect_resources(run):
        value = registration.inputs["auth_string"]
        assert rpc.is_rpc_secret(value), registration.name
        assert rpc.unwrap_rpc_secret(value) == AUTH_STRING
        assert "auth_string" in registration.secret_outputs
        assert "api_key" not in registration.inputs
    for registration in run.resources:
        inputs = {k: v for k, v in registration.inputs.items() if k != "__provider"}
        leaked = [s for s in plaintext_strings(inputs) if AUTH_STRING in s]
        assert leaked == [], f"{registration.name} holds the auth string in plain text"
    assert AUTH_STRING not in repr(run.exports)
    problems = [p for res in _as_res(run) for p in rules.authenticated_connection(res, stack)]
    problems += [p for res in _as_res(run) for p in rules.plaintext_secrets(res)]
    assert problems == []


def test_a_stack_without_prefect_credentials_is_refused_by_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = run_with("staging", monkeypatch, auth=False, api_key=False)
    resources = _as_res(run)
    problems = [p for res in resources for p in rules.authenticated_connection(res, "staging")]
    assert len(problems) == len(prefect_resources(run))
    assert all("prefectAuthString" in p and "prefectApiKey" in p for p in problems)
    # The embedded default is a loopback server: no credentials needed there.
    local = _as_res(run_stack("local", monkeypatch))
    assert [p for res in local for p in rules.authenticated_connection(res, "local")] == []


def test_either_credential_satisfies_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    for auth, api_key in ((True, False), (False, True), (True, True)):
        run = run_with("prod", monkeypatch, auth=auth, api_key=api_key)
        resources = _as_res(run)
        assert [p for r in resources for p in rules.authenticated_connection(r, "prod")] == []


def test_a_plain_text_auth_string_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception) as caught:
        run_with("prod", monkeypatch, auth=True, api_key=False, secret=False)
    error = caught.value
    while not isinstance(error, ConfigError) and error.__cause__ is not None:
        error = error.__cause__  # type: ignore[assignment]
    assert isinstance(error, ConfigError), repr(caught.value)
    assert any("prefectAuthString" in p and "--secret" in p for p in error.problems)
    assert AUTH_STRING not in "\n".join(error.problems)


def test_the_policy_wants_the_auth_string_marked_secret() -> None:
    """A Prefect resource whose `auth_string` output is not secret would write it into the
    state in clear: the no-plaintext-secrets rule refuses it."""
    urn = f"urn:pulumi:prod::{PROJECT}::{rules.VARIABLE}::v"
    props = {"name": "v", "value": 1, "auth_string": AUTH_STRING}
    unmarked = rules.Res(rules.VARIABLE, "v", urn, props, ("api_key",))
    assert rules.plaintext_secrets(unmarked) == [
        "v: 'auth_string' holds a secret but is not a secret output"
    ]
    marked = rules.Res(rules.VARIABLE, "v", urn, props, ("api_key", "auth_string"))
    assert rules.plaintext_secrets(marked) == []
    assert rules.authenticated_connection(marked, "prod") == []
