"""Pulumi's SDK mocks standing in for the engine and the clouds, recording what a program
registers: used in-process by the infra tests and by `devtools.language_host` in the
subprocess that reproduces the engine's launch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc

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
    protect: bool = False


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

    def to_json(self) -> dict[str, Any]:
        """A JSON-able record (secret values show as Pulumi's secret marker dicts)."""
        return {
            "stack": self.stack,
            "resources": [asdict(r) for r in self.resources],
            "exports": self.exports,
        }


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
    """The SDK's mock monitor, keeping every registration with its options."""

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
                    protect=bool(request.protect),
                )
            )
        return response
