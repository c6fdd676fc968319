"""`pricecheck-alerts apply` writes only to the server the stack names, and says in one
line what is wrong when it cannot (no traceback, nothing written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devtools.local_server import free_port
from devtools.stack_tree import add_stack
from pricecheck_alerts.cli import main
from pricecheck_alerts.provision import Automations
from pricecheck_alerts.provision.apply import managed_automations


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--root", str(root), "apply", "--stack", "local", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_refuses_without_a_server(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never a throwaway server: Prefect would start one and the apply would 'succeed'."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    code, out, err = run(capsys, tree)
    assert code == 2 and out == ""
    assert err.startswith("error: PREFECT_API_URL is not set") and err.count("\n") == 1


def test_refuses_another_stacks_server_unless_told(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "https://prefect.staging.example/api")
    code, _, err = run(capsys, tree)
    assert code == 2
    assert "is not stack 'local''s prefectApiUrl (http://127.0.0.1:4200/api)" in err


def test_a_stopped_server_is_one_line(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    code, out, err = run(capsys, tree, "--server", url)
    assert code == 1 and out == ""
    assert (
        err
        == f"error: cannot reach the Prefect API at {url} (connection refused): is it running?\n"
    )


def test_a_url_without_api_is_one_line(
    tree: Path, prefect_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, tree, "--server", prefect_server.url)
    assert code == 1 and err.count("\n") == 1
    assert f"the URL must end with /api (try {prefect_server.url}/api)" in err


def test_applies_to_the_stacks_own_server(
    tree: Path,
    prefect_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stack (`clitest`, so no other test's automations are touched) that names the test
    server: apply says where it writes, then writes there."""
    secrets = add_stack(tree, tree, "clitest", api_url=prefect_server.api_url)
    for var, value in secrets.items():  # outside `local`, secrets come from the environment
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url + "/")
    capsys.readouterr()
    code = main(["--root", str(tree), "apply", "--stack", "clitest", "--allow-non-local"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.startswith(f"apply: stack clitest -> {prefect_server.api_url}/\n")
    managed = managed_automations("clitest")
    assert managed and all("/clitest/" in name for name in managed)
    automations = Automations()
    for ids in managed.values():  # leave the shared server as it was
        for automation_id in ids:
            automations.delete(automation_id)


def test_dry_run_plans_by_name_and_writes_nothing(
    tree: Path,
    prefect_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secrets = add_stack(tree, tree, "plantest", api_url=prefect_server.api_url)
    for var, value in secrets.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    command = ["--root", str(tree), "apply", "--stack", "plantest", "--allow-non-local"]

    def apply(*extra: str) -> list[str]:
        capsys.readouterr()
        assert main([*command, *extra]) == 0
        return capsys.readouterr().out.splitlines()

    try:
        plan = apply("--dry-run")
        assert plan[0].startswith("apply --dry-run: stack plantest on ")
        assert "created           automation         pricechecktn/plantest/flow-run-failed" in plan
        assert "created           block_document     pricechecktn-plantest-slack-critical" in plan
        assert managed_automations("plantest") == {}  # nothing written

        done = apply()  # the same names, printed as they are written
        created = [line for line in done if line.startswith("created ")]
        assert created == [line for line in plan if line.startswith("created ")]

        assert apply("--dry-run")[1:] == ["no change", "0 writes planned"]

        flow_runs = tree / "automations" / "rules" / "flow-runs.yaml"
        text = flow_runs.read_text()
        flow_runs.write_text(
            text.replace("    message: Flow run failed\n", "    message: Flow run failed!\n")
        )
        plan = apply("--dry-run")
        updated = [line for line in plan if line.startswith("updated ")]
        assert updated == [
            "updated           automation         pricechecktn/plantest/flow-run-failed (actions)",
            "updated           automation         pricechecktn/plantest/flow-run-failed/resolve "
            "(actions)  ! restarts its open windows",
        ]
        assert plan[-1].startswith("note: updating these would restart their open windows")
        flow_runs.write_text(text.replace(text[text.index("  - name: flow-run-crashed") :], ""))
        plan = apply("--dry-run")
        assert "deleted           automation         pricechecktn/plantest/flow-run-crashed" in plan
        assert (
            "deleted           automation         pricechecktn/plantest/flow-run-crashed/resolve"
            in plan
        )
        assert "pricechecktn/plantest/flow-run-crashed" in managed_automations("plantest")
    finally:
        automations = Automations()
        for ids in managed_automations("plantest").values():
            for automation_id in ids:
                automations.delete(automation_id)
