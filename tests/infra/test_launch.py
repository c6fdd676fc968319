"""The Pulumi project launched the way the Pulumi engine launches it, each in a subprocess.

The CLI cannot run here, so each test reproduces one launch as Pulumi's source describes it
(pulumi/pulumi; the Python SDK and pulumi-policy as installed):

- The program: `pkg/engine/project.go` (`getPwdMain`) runs a `main: __main__.py` *file* with
  its folder (`infra/`) as working directory; `sdk/python/cmd/pulumi-language-python/main.go`
  starts the project virtualenv's interpreter (uv toolchain, `virtualenv: ../.venv`) with
  the config as JSON in `PULUMI_CONFIG` / `PULUMI_CONFIG_SECRET_KEYS` and no PYTHONPATH;
  `pulumi-language-python-exec` calls `runpy.run_path(program)`, which does not put a
  file's folder on sys.path. `devtools/language_host.py` does exactly that, under mocks.
- The uv toolchain (`sdk/python/toolchain/uv.go`) lists packages from `uv.lock` and runs
  `uv sync --inexact`; the pip toolchain would run `python -m pip list`, which a uv-made
  virtualenv cannot answer (it has no pip).
- The policy pack: `sdk/python/cmd/pulumi-language-python/main.go` (`RunPlugin`) starts
  `python -u -m pulumi.policy <engine> <pack dir>` in the pack's folder, with the
  project, stack and config in `PULUMI_PROJECT`, `PULUMI_STACK`, `PULUMI_DRY_RUN`,
  `PULUMI_CONFIG`; the pack serves the Analyzer gRPC service on the port it prints.
- The dynamic provider host: see `test_provider_host.py`.

Each launch imports `pricecheck_infra` / `pricecheck_policy` only as the virtualenv has
them installed (`uv sync` installs infra/ as the `pricecheck-infra` package): with the
package uninstalled these tests fail with ModuleNotFoundError, as `pulumi up` would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from devtools.pulumi_mocks import PROJECT
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import copy_config, load_catalog
from pricecheck_alerts.config.stacks import load_stack

from .harness import ROOT, engine_config

VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
LANGUAGE_HOST = ROOT / "devtools" / "language_host.py"
POLICY_PACK = ROOT / "infra" / "policy"


def engine_env(extra: dict[str, str]) -> dict[str, str]:
    """What the language host's child sees: the virtualenv activated (`VIRTUAL_ENV`, its
    bin first on PATH, no PYTHONHOME), no PYTHONPATH, plus what the host adds."""
    return {
        "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
        "VIRTUAL_ENV": str(VENV),
        "HOME": os.environ.get("HOME", "/root"),
        **extra,
    }


def launch_program(stack: str, program_dir: Path) -> dict[str, Any]:
    config, secret_keys = engine_config(stack)
    env = engine_env(
        {
            "PULUMI_CONFIG": json.dumps(config),
            "PULUMI_CONFIG_SECRET_KEYS": json.dumps(secret_keys),
        }
    )
    command = [str(PYTHON), str(LANGUAGE_HOST), "--project", PROJECT, "--stack", stack]
    done = subprocess.run(
        [*command, "--pwd", str(program_dir), "__main__.py"],
        cwd=program_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_project_files_name_the_uv_toolchain_and_a_file_entry_point() -> None:
    project = yaml.safe_load((ROOT / "infra" / "Pulumi.yaml").read_text())
    pack = yaml.safe_load((POLICY_PACK / "PulumiPolicy.yaml").read_text())
    assert project["main"] == "__main__.py" and (ROOT / "infra" / "__main__.py").is_file()
    for folder, options in ((ROOT / "infra", project), (POLICY_PACK, pack)):
        runtime = options["runtime"]["options"]
        assert runtime["toolchain"] == "uv"
        assert (folder / runtime["virtualenv"]).resolve() == VENV.resolve()


def test_the_virtualenv_has_no_pip_so_only_the_uv_toolchain_works() -> None:
    """The pip toolchain's `python -m pip list` fails in a uv-made virtualenv; the uv
    toolchain reads uv.lock instead (found upwards from infra/)."""
    done = subprocess.run([str(PYTHON), "-m", "pip", "--version"], capture_output=True)
    assert done.returncode != 0 and b"No module named pip" in done.stderr
    assert (ROOT / "uv.lock").is_file()


def compiled(stack: str) -> Any:
    return compile_stack(load_catalog(ROOT), load_stack(ROOT, stack, {}))


def prefect_resources(launched: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (r["type"].rsplit(":", 1)[1], r["name"])
        for r in launched["resources"]
        if r["type"].startswith("pulumi-python:dynamic/prefect:")
    )


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_program_runs_as_the_engine_runs_it(stack: str) -> None:
    launched = launch_program(stack, ROOT / "infra")
    assert launched["program_dir_on_sys_path"] is False
    resources = compiled(stack)
    assert launched["exports"]["automationNames"] == sorted(a.name for a in resources.automations)
    limits = [n for kind, n in prefect_resources(launched) if kind == "ConcurrencyLimit"]
    assert limits == sorted(c.name for c in resources.concurrency_limits)
    blocks = [name for kind, name in prefect_resources(launched) if kind == "BlockDocument"]
    assert blocks == sorted(b.name for b in resources.blocks)
    protected = sum(r["protect"] for r in launched["resources"])
    assert protected == (10 if stack == "prod" else 0)


def test_program_needs_no_stack_file(tmp_path: Path) -> None:
    """Only `automations/` and the entry point on disk; every setting arrives through the
    engine's config (what ESC, `--config-file` or a remote stack hand over)."""
    copy_config(ROOT, tmp_path)
    for stack_file in (tmp_path / "infra").glob("Pulumi.*.yaml"):
        stack_file.unlink()
    shutil.copy(ROOT / "infra" / "__main__.py", tmp_path / "infra" / "__main__.py")
    assert not list(tmp_path.rglob("Pulumi*.yaml"))
    without = launch_program("staging", tmp_path / "infra")
    with_files = launch_program("staging", ROOT / "infra")
    assert sorted((r["type"], r["name"]) for r in without["resources"]) == sorted(
        (r["type"], r["name"]) for r in with_files["resources"]
    )
    assert without["exports"] == with_files["exports"]


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    config, _ = engine_config("prod")
    env = engine_env(
        {
            "PULUMI_PROJECT": PROJECT,
            "PULUMI_STACK": "prod",
            "PULUMI_DRY_RUN": "true",
            "PULUMI_ORGANIZATION": "organization",
            "PULUMI_CONFIG": json.dumps(config),
        }
    )
    process = subprocess.Popen(
        [str(PYTHON), "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY_PACK)],
        cwd=POLICY_PACK,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.isdigit(), process.stderr.read() if process.stderr else line
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_policy_pack_runs_as_the_policy_host_runs_it(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "pricechecktn-alerting"
    assert {p.name for p in info.policies} >= {
        "no-plaintext-secrets",
        "prod-critical-rules-page-pagerduty",
        "automation-has-runbook-link",
        "sla-within-bounds",
    }


def test_analyzer_finds_a_secret_inside_an_automations_actions(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    """The real analyzer wraps inputs in its proxies; a Slack URL in `actions[0]` is still
    found and reported as mandatory."""
    type_ = "pulumi-python:dynamic/prefect:Automation"
    leak = "https://hooks.slack.com/services/T0/B0/leak"
    body = json.dumps({"static": {"runbook": "https://example.org/r.md"}, "x": leak})
    props = struct_pb2.Struct()
    props.update(
        {
            "name": "pricechecktn/prod/flow-run-failed",
            "tags": ["severity:critical"],
            "routes": ["pricechecktn-prod-pagerduty-pipeline"],
            "actions": [{"type": "send-notification", "body": body}],
            "trigger": {"posture": "Reactive", "within": 0},
            "api_key": "",
        }
    )
    request = analyzer_pb2.AnalyzeRequest(
        type=type_,
        name="pricechecktn/prod/flow-run-failed",
        urn=f"urn:pulumi:prod::{PROJECT}::{type_}::pricechecktn/prod/flow-run-failed",
        properties=props,
        options=analyzer_pb2.AnalyzerResourceOptions(additionalSecretOutputs=["api_key"]),
    )
    diagnostics = analyzer.Analyze(request).diagnostics
    found = [(d.policyName, d.message) for d in diagnostics]
    assert any(
        name == "no-plaintext-secrets" and "Slack webhook URL in plain input 'actions[0].body'" in m
        for name, m in found
    ), found
