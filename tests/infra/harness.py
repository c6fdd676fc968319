"""Run the Pulumi program of a stack under `pulumi.runtime.set_mocks`, recording every
resource registration (type, name, parent, dependencies, secret flags) and every export.

The program reads the real `infra/Pulumi.<stack>.yaml`; this harness feeds the same file to
Pulumi's config (objects as JSON, as the CLI does) plus fake secret values standing in for
`pulumi config set --secret`.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import mocks, rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import reset_options

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "infra", ROOT / "infra" / "policy"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

PROJECT = "pricechecktn"
# What an operator would set with `pulumi config set --secret` on staging/prod.
FAKE_SECRETS = {
    "slackCriticalUrl": "https://hooks.slack.com/services/T0FAKE/B0CRIT/fakecriticalsecret",
    "slackWarningsUrl": "https://hooks.slack.com/services/T0FAKE/B0WARN/fakewarningsecret",
    "slackInfoUrl": "https://hooks.slack.com/services/T0FAKE/B0INFO/fakeinfosecret00",
    "smtpPassword": "fake-smtp-password-0001",
    "pagerdutyToken": "fake-pagerduty-api-token-0001",
    "prefectApiKey": "pnu_fakeprefectapikey000000000000000000",
}


def integration_key(name: str) -> str:
    """The integration key the mocked PagerDuty provider returns (in plain text, as the
    real one does)."""
    return f"R0FAKE{abs(hash(name)) % 10**12:012d}KEY"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    dependencies: list[str]
    secret_outputs: list[str]
    inputs: dict[str, Any]
    provider: str


@dataclass
class StackRun:
    stack: str
    resources: list[Registration] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def named(self, type_: str, name: str) -> Registration:
        return next(r for r in self.of_type(type_) if r.name == name)


class FakeClouds(pulumi.runtime.Mocks):
    """IDs and computed outputs as the real providers would return them."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        if args.typ.startswith("pulumi-python:dynamic/prefect:"):
            return f"{args.name}-id", state
        if args.typ == "pagerduty:index/serviceIntegration:ServiceIntegration":
            state["integration_key"] = integration_key(args.name)
        return f"P{args.name.upper()}", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        if args.token == "pagerduty:index/getUser:getUser":
            email = args.args["email"]
            return {"id": f"U-{email}", "email": email, "name": email.split("@")[0]}, []
        raise AssertionError(f"unexpected invoke {args.token}")


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, run: StackRun) -> None:
        super().__init__(FakeClouds())
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    dependencies=list(request.dependencies),
                    secret_outputs=list(request.additionalSecretOutputs),
                    inputs=rpc.deserialize_properties(request.object),
                    provider=request.provider,
                )
            )
        return response


def stack_file_config(stack: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "infra" / f"Pulumi.{stack}.yaml").read_text())
    return dict(data.get("config") or {})


def run_stack(stack: str, monkeypatch: pytest.MonkeyPatch, entry_point: bool = False) -> StackRun:
    """Run `infra`'s program for `stack` against mocks and return what it registered;
    `entry_point`: through `infra/__main__.py` as the Pulumi language host runs it."""
    from pricecheck_infra import program

    run = StackRun(stack)
    file_config = stack_file_config(stack)
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in file_config.items()}
    secret_keys = []
    if stack != "local":  # local's secrets are loopback URLs kept in the file
        for key, value in FAKE_SECRETS.items():
            config[f"{PROJECT}:{key}"] = value
            secret_keys.append(f"{PROJECT}:{key}")
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
        if entry_point:
            runpy.run_path(str(ROOT / "infra"), run_name="__main__")
        else:
            program.main(ROOT)
        return pulumi.Output.all(**run.exports).apply(run.exports.update)

    program_run()
    return run
