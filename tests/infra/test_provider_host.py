"""Drive the Pulumi SDK's dynamic provider host over its gRPC interface, launched as the
engine launches it, for every kind of Prefect resource.

From pulumi/pulumi: the engine loads the `pulumi-python` resource plugin, the script
`sdk/python/dist/pulumi-resource-pulumi-python`, in the program's folder (`infra/`,
`ctx.Pwd`), with each Pulumi.yaml runtime option as `PULUMI_RUNTIME_<OPTION>`
(`PULUMI_RUNTIME_TOOLCHAIN=uv`, `PULUMI_RUNTIME_VIRTUALENV=../.venv`), `PULUMI_PROJECT` and
the `pulumi-python` config in `PULUMI_CONFIG`. The script runs
`"$VENV/bin/python" -u -m pulumi.dynamic <engine>`, which prints its port. The host
unpickles our provider from `__provider` (dill, by reference to module + class: the module
must import the same way there), and every property must survive protobuf's Struct
encoding (numbers become floats, nulls inside maps are dropped) without a spurious diff.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from pricecheck_infra.providers import PrefectProvider, changed_keys
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import provider_pb2_grpc

from .harness import ROOT
from .test_providers import KINDS, Case, _cases


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    return asyncio.run(rpc.serialize_properties(props, {}))


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct))


@pytest.fixture(scope="module")
def host() -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    venv = ROOT / ".venv"
    process = subprocess.Popen(
        [str(venv / "bin" / "python"), "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
        cwd=ROOT / "infra",
        env={
            **os.environ,
            "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv),
            "PULUMI_RUNTIME_TOOLCHAIN": "uv",
            "PULUMI_RUNTIME_VIRTUALENV": "../.venv",
            "PULUMI_PROJECT": "pricechecktn",
            "PULUMI_CONFIG": "{}",
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        stub.Configure(proto.ConfigureRequest(args=struct_pb2.Struct()))
        yield stub
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def cases(prefect_server: Any) -> dict[str, Case]:
    return _cases(str(prefect_server.api_url))


@pytest.mark.parametrize("kind", KINDS)
def test_crud_through_the_provider_host(
    kind: str,
    host: provider_pb2_grpc.ResourceProviderStub,
    cases: dict[str, Case],
    prefect_server: Any,
) -> None:
    case = cases[kind]
    urn = f"urn:pulumi:test::pricechecktn::pulumi-python:dynamic/prefect:{kind}::{kind}"
    news = {
        "__provider": serialize_provider(PrefectProvider(kind)),
        "api_url": str(prefect_server.api_url),
        **case.create,
    }
    checked = host.Check(proto.CheckRequest(urn=urn, olds=to_struct({}), news=to_struct(news)))
    assert list(checked.failures) == []

    created = host.Create(proto.CreateRequest(urn=urn, properties=checked.inputs))
    assert created.id
    outs = from_struct(created.properties)
    try:
        same = host.Diff(
            proto.DiffRequest(id=created.id, urn=urn, olds=created.properties, news=checked.inputs)
        )
        assert same.changes == proto.DiffResponse.DIFF_NONE

        updated = {**news, **case.update}
        diff = host.Diff(
            proto.DiffRequest(
                id=created.id, urn=urn, olds=created.properties, news=to_struct(updated)
            )
        )
        assert diff.changes == proto.DiffResponse.DIFF_SOME and list(diff.replaces) == []
        host.Update(
            proto.UpdateRequest(
                id=created.id, urn=urn, olds=created.properties, news=to_struct(updated)
            )
        )
        read = host.Read(proto.ReadRequest(id=created.id, urn=urn, properties=created.properties))
        assert read.id == created.id
        assert from_struct(read.properties)["name"] == case.update["name"]
        resource = case.resource(str(prefect_server.api_url))
        assert changed_keys(resource, case.update, resource.read(created.id)) == []
    finally:
        host.Delete(proto.DeleteRequest(id=created.id, urn=urn, properties=to_struct(outs)))
    gone = host.Read(proto.ReadRequest(id=created.id, urn=urn, properties=created.properties))
    assert gone.id == ""
