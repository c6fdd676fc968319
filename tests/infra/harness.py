"""Run the Pulumi program of a stack under `pulumi.runtime.set_mocks`, recording every
resource registration (type, name, parent, dependencies, secret flags) and every export.

The program reads only Pulumi's config; this harness feeds it the values of
`infra/Pulumi.<stack>.yaml` (objects as JSON text, as the CLI does) plus fake secret values
standing in for `pulumi config set --secret`. How the engine launches the program (a
subprocess, its working directory and sys.path) is reproduced by `test_launch.py`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import reset_options

from devtools.pulumi_mocks import (
    FAKE_SECRETS,
    PROJECT,
    FakeClouds,
    RecordingMonitor,
    StackRun,
)

ROOT = Path(__file__).resolve().parents[2]


def stack_file_config(stack: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "infra" / f"Pulumi.{stack}.yaml").read_text())
    return dict(data.get("config") or {})


def engine_config(stack: str) -> tuple[dict[str, str], list[str]]:
    """The config the engine hands the program: every `pricechecktn:` value as a string
    (structured ones as JSON), and which keys are secret."""
    file_config = stack_file_config(stack)
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in file_config.items()}
    secret_keys = []
    if stack != "local":  # local's secrets are loopback URLs kept in the file
        for key, value in FAKE_SECRETS.items():
            config[f"{PROJECT}:{key}"] = value
            secret_keys.append(f"{PROJECT}:{key}")
    return config, secret_keys


def run_stack(
    stack: str,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, str] | None = None,
    root: Path = ROOT,
    secret_keys: list[str] | None = None,
) -> StackRun:
    """Run `infra`'s program for `stack` against mocks and return what it registered;
    `config` and `secret_keys` replace the stack file's, `root` holds `automations/`."""
    from pricecheck_infra import program

    run = StackRun(stack)
    file_config = stack_file_config(stack)
    default_config, default_secret_keys = engine_config(stack)
    config = default_config if config is None else config
    secret_keys = default_secret_keys if secret_keys is None else secret_keys
    run.secrets = {k.split(":", 1)[1]: v for k, v in config.items() if k in secret_keys}
    for key in ("slackCriticalUrl", "slackWarningsUrl", "slackInfoUrl", "pagerdutyRoutingKey"):
        if f"{PROJECT}:{key}" in file_config:
            run.secrets[key] = file_config[f"{PROJECT}:{key}"]

    # Pulumi's SDK creates futures on the current loop; an earlier `asyncio.run` in the
    # session (Prefect clients do this) leaves none, so give each program run its own.
    asyncio.set_event_loop(asyncio.new_event_loop())
    reset_options(project=PROJECT, stack=stack)
    set_all_config(config, secret_keys)
    pulumi.runtime.set_mocks(
        FakeClouds(), project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(run)
    )
    monkeypatch.setattr(pulumi, "export", lambda name, value: run.exports.__setitem__(name, value))

    @pulumi.runtime.test
    def program_run() -> pulumi.Output[Any]:
        program.main(root)
        return pulumi.Output.all(**run.exports).apply(run.exports.update)

    program_run()
    return run
