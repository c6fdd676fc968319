"""A Prefect server with basic auth refuses strangers, and `pricecheck-alerts` gets in with
PREFECT_API_AUTH_STRING from its environment, or stops in one line naming that variable.

The CLI runs as a subprocess, as an operator or CI runs it: Prefect reads its settings
(the auth string among them) from the environment when it is imported.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from prefect.client.orchestration import get_client

from devtools.local_server import LocalPrefectServer
from pricecheck_alerts import naming
from pricecheck_alerts.provision import BlockDocuments

from .conftest import AUTH_STRING

CREDENTIAL_VARS = (
    "PREFECT_API_AUTH_STRING",
    "PREFECT_SERVER_API_AUTH_STRING",
    "PREFECT_API_KEY",
)


def basic(auth_string: str) -> dict[str, str]:
    token = base64.b64encode(auth_string.encode()).decode()
    return {"Authorization": f"Basic {token}"}


def cli(
    args: list[str], root: Path, credentials: dict[str, str], api_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`pricecheck-alerts ARGS` with exactly `credentials` as its Prefect credentials."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [sys.executable, "-m", "pricecheck_alerts.cli", *args],
        cwd=root,
        env={**env, **credentials},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def assert_one_line_naming_the_variable(
    result: subprocess.CompletedProcess[str], url: str, variable: str = "PREFECT_API_AUTH_STRING"
) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and url in lines[0]
    assert variable in lines[0]
    assert "HTTP 401" in lines[0]


def test_strangers_are_refused(auth_server: LocalPrefectServer) -> None:
    api = auth_server.api_url
    # Anyone may probe health (load balancers, Kubernetes); nothing else.
    assert httpx.get(f"{api}/health").status_code == 200
    for headers in ({}, basic("pricecheck-ops:not-the-password")):
        assert httpx.get(f"{api}/hello", headers=headers).status_code == 401
        assert httpx.get(f"{api}/block_types/", headers=headers).status_code == 401
        # Writes meet the CSRF check first (403), and its token is only handed out after
        # logging in (401): a stranger gets no token, so no write passes either check.
        token = httpx.get(f"{api}/csrf-token", params={"client": "x"}, headers=headers)
        assert token.status_code == 401
        forged = {**headers, "Prefect-Csrf-Token": "forged", "Prefect-Csrf-Client": "x"}
        for path in ("block_documents/filter", "automations/filter", "variables/"):
            assert httpx.post(f"{api}/{path}", headers=headers, json={}).status_code == 403
            assert httpx.post(f"{api}/{path}", headers=forged, json={}).status_code == 403
    # The right string opens reads; a write still needs its CSRF token.
    assert httpx.get(f"{api}/hello", headers=basic(AUTH_STRING)).status_code == 200
    unprotected = httpx.post(f"{api}/variables/", headers=basic(AUTH_STRING), json={})
    assert unprotected.status_code == 403 and "CSRF" in unprotected.text
    # Prefect's own client, with the auth string from this process's settings, does both.
    with get_client(sync_client=True) as client:
        assert client.hello().status_code == 200
        assert client.read_block_types() is not None


def test_apply_with_the_auth_string_provisions_the_stack(
    auth_server: LocalPrefectServer, project_root: Path
) -> None:
    api = auth_server.api_url
    first = cli(
        ["apply", "--stack", "local", "--server", api],
        project_root,
        {"PREFECT_API_AUTH_STRING": AUTH_STRING},
    )
    assert first.returncode == 0, first.stderr
    assert f"apply: stack local -> {api}" in first.stdout
    again = cli(
        ["apply", "--stack", "local", "--server", api],
        project_root,
        {"PREFECT_API_AUTH_STRING": AUTH_STRING},
    )
    assert again.returncode == 0, again.stderr
    assert "0 writes" in again.stdout.splitlines()  # idempotent through the auth too
    for output in (first.stdout, first.stderr, again.stdout, again.stderr):
        assert AUTH_STRING not in output
    with get_client(sync_client=True) as client:
        tags = [set(a.tags) for a in client.read_automations()]
    assert any(naming.MANAGED_TAG in t and naming.stack_tag("local") in t for t in tags)


@pytest.mark.parametrize(
    ("credentials", "variable"),
    [
        ({}, "PREFECT_API_AUTH_STRING"),
        ({"PREFECT_API_AUTH_STRING": "pricecheck-ops:stale-password"}, "PREFECT_API_AUTH_STRING"),
        ({"PREFECT_API_KEY": "pnu_notakeyforthisserver000000000000"}, "PREFECT_API_KEY"),
    ],
    ids=["none", "wrong", "api-key"],
)
def test_apply_without_the_right_auth_string_stops_in_one_line(
    auth_server: LocalPrefectServer, project_root: Path, credentials: dict[str, str], variable: str
) -> None:
    api = auth_server.api_url
    result = cli(["apply", "--stack", "local", "--server", api], project_root, credentials)
    assert_one_line_naming_the_variable(result, api, variable)
    assert result.returncode == 1 and "writes" not in result.stdout
    for secret in (AUTH_STRING, *credentials.values()):
        assert secret not in result.stdout + result.stderr


def test_smoke_without_credentials_stops_in_one_line(
    auth_server: LocalPrefectServer, project_root: Path
) -> None:
    api = auth_server.api_url
    result = cli(["smoke", "--stack", "local", "--timeout", "5"], project_root, {}, api)
    assert_one_line_naming_the_variable(result, api)


def test_who_can_read_a_block_secret(auth_server: LocalPrefectServer) -> None:
    """What docs/security.md says, checked: an API user with the auth string reads secret
    fields in clear (`include_secrets`), and so does anyone who can read the SQLite file,
    because the key that encrypts them is stored in the same file."""
    hook = f"http://127.0.0.1:9/slack/{secrets.token_hex(8)}"
    block_id = BlockDocuments(auth_server.api_url).create(
        {
            "name": "security-probe",
            "block_type_slug": "pricechecktn-slack-alert",
            "data": {"url": hook},
        }
    )
    api, headers = auth_server.api_url, basic(AUTH_STRING)
    token = httpx.get(f"{api}/csrf-token", params={"client": "probe"}, headers=headers).json()
    headers |= {"Prefect-Csrf-Token": token["token"], "Prefect-Csrf-Client": "probe"}
    wanted = {"block_documents": {"id": {"any_": [block_id]}}}
    hidden = httpx.post(f"{api}/block_documents/filter", headers=headers, json=wanted)
    assert hidden.status_code == 200 and hook not in hidden.text
    shown = httpx.post(
        f"{api}/block_documents/filter", headers=headers, json={**wanted, "include_secrets": True}
    )
    assert shown.status_code == 200 and hook in shown.text

    with closing(sqlite3.connect(auth_server.home / "prefect.db")) as db:
        [(key,)] = db.execute("SELECT value FROM configuration WHERE key = 'ENCRYPTION_KEY'")
        [(data,)] = db.execute("SELECT data FROM block_document WHERE id = ?", (block_id,))
    assert hook not in str(data)  # encrypted at rest...
    fernet = Fernet(json.loads(key)["fernet_key"].encode())
    assert hook in fernet.decrypt(str(data).strip('"').encode()).decode()  # ...with its key


def test_the_auth_string_is_not_in_the_server_log(auth_server: LocalPrefectServer) -> None:
    """The server logs refused requests and its own work; never the credential."""
    log = (auth_server.home / "server.log").read_text(errors="replace")
    assert AUTH_STRING not in log
    assert base64.b64encode(AUTH_STRING.encode()).decode() not in log
