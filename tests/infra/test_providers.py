"""The Prefect dynamic providers against the session's real Prefect server.

Every provider is first round-tripped through the SDK's own serialization (`serialize_provider`
+ `dill.loads`, as `pulumi up` stores it in state and the provider host loads it), and only
the deserialized copy is exercised: check, create, read, diff, update, replace, delete,
drift and idempotency.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dill
import pytest
from pricecheck_infra.providers import UNKNOWN, PrefectProvider, resource_inputs, strip_nulls
from pulumi.dynamic.dynamic import serialize_provider

from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.compile.resources import base_job_template, bind_block_ids, referenced_blocks
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack
from pricecheck_alerts.provision import (
    Automations,
    BlockDocuments,
    ConcurrencyLimits,
    PrefectResource,
    Variables,
    WorkPools,
)

from .harness import ROOT


def deserialized(kind: str) -> PrefectProvider:
    """The provider as the dynamic provider host gets it out of the Pulumi state."""
    provider = dill.loads(base64.b64decode(serialize_provider(PrefectProvider(kind))))
    assert isinstance(provider, PrefectProvider) and provider.kind == kind
    return provider


def unique(prefix: str) -> str:
    return f"pctest-{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Case:
    """One kind: inputs to create, an in-place change, a change that forces replacement,
    and an out-of-band edit (what a UI user would do)."""

    kind: str
    resource: type[PrefectResource]
    create: dict[str, Any]
    update: dict[str, Any]
    replace: dict[str, Any]
    replace_key: str
    drift: Callable[[PrefectResource, str, dict[str, Any]], None]


def _slack_block(api_url: str) -> str:
    blocks = BlockDocuments(api_url)
    return blocks.create(
        {
            "name": unique("slack"),
            "block_type_slug": "pricechecktn-slack-alert",
            "data": {"url": "http://127.0.0.1:9/slack"},
        }
    )


def _automation_body(api_url: str) -> dict[str, Any]:
    """A real compiled automation (local stack), renamed, bound to a fresh test block."""
    resources = compile_stack(load_catalog(ROOT), load_stack(ROOT, "local", {}))
    spec = next(a for a in resources.automations if a.name.endswith("/data-quality-low"))
    block_id = _slack_block(api_url)
    body = bind_block_ids(spec.body, {name: block_id for name in referenced_blocks(spec.body)})
    return {**body, "name": unique("automation")}


def _prod_pool_template() -> dict[str, Any]:
    stack = load_stack(ROOT, "prod", {})
    pool = stack.work_pool
    return base_job_template(
        pool.type, dict(pool.job_variables), copy.deepcopy(pool.base_job_template)
    )


def _edit(field: str, value: Any) -> Callable[[PrefectResource, str, dict[str, Any]], None]:
    def drift(resource: PrefectResource, resource_id: str, inputs: dict[str, Any]) -> None:
        resource.update(resource_id, {**inputs, field: value})

    return drift


def _cases(api_url: str) -> dict[str, Case]:
    pool_name = unique("pool")
    pool = {
        "name": pool_name,
        "type": "process",
        "description": "test pool",
        "concurrency_limit": 2,
        "base_job_template": base_job_template("process", {}),
    }
    block = {
        "name": unique("block"),
        "block_type_slug": "pricechecktn-slack-alert",
        "data": {"url": "http://127.0.0.1:9/one"},
    }
    automation = _automation_body(api_url)
    variable = {"name": unique("var").replace("-", "_"), "value": {"a": 1}, "tags": ["x", "a"]}
    limit = {"name": unique("limit"), "limit": 3, "slot_decay_per_second": 0.0}
    return {
        "work_pool": Case(
            "work_pool",
            WorkPools,
            pool,
            {**pool, "description": "changed", "concurrency_limit": 5},
            {**pool, "type": "kubernetes", "base_job_template": _prod_pool_template()},
            "type",
            _edit("concurrency_limit", 99),
        ),
        "block_document": Case(
            "block_document",
            BlockDocuments,
            block,
            {**block, "data": {"url": "http://127.0.0.1:9/two"}},
            {**block, "name": unique("block-renamed")},
            "name",
            _edit("data", {"url": "http://evil.example/hook"}),
        ),
        "automation": Case(
            "automation",
            Automations,
            automation,
            {**automation, "description": "changed description"},
            # Automations update everything in place, the name included: no replacement.
            {**automation, "name": automation["name"] + "-renamed"},
            "",
            _edit("enabled", False),
        ),
        "variable": Case(
            "variable",
            Variables,
            variable,
            {**variable, "value": {"a": 2}, "tags": ["y"]},
            {**variable, "name": variable["name"] + "_renamed"},
            "name",
            _edit("value", "edited in the UI"),
        ),
        "concurrency_limit": Case(
            "concurrency_limit",
            ConcurrencyLimits,
            limit,
            {**limit, "limit": 5},
            {**limit, "name": limit["name"] + "-renamed"},
            "name",
            _edit("limit", 42),
        ),
    }


KINDS = ["work_pool", "block_document", "automation", "variable", "concurrency_limit"]


@pytest.fixture(scope="module")
def api_url(prefect_server: Any) -> str:
    return str(prefect_server.api_url)


@pytest.fixture(scope="module")
def cases(api_url: str) -> dict[str, Case]:
    return _cases(api_url)


def props(api_url: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"api_url": api_url, **inputs, **extra}


@pytest.mark.parametrize("kind", KINDS)
def test_lifecycle_from_deserialized_provider(
    kind: str, api_url: str, cases: dict[str, Case]
) -> None:
    case = cases[kind]
    provider = deserialized(kind)
    news = props(api_url, case.create)

    assert provider.check({}, news).failures == []
    created = provider.create(news)
    resource_id = created.id
    assert created.outs is not None and created.outs["api_url"] == api_url

    # read returns the live state, in input shape.
    read = provider.read(resource_id, created.outs)
    assert read.id == resource_id
    assert case.resource(api_url).differs(case.create, resource_inputs(read.outs or {})) == []

    # Idempotent: the same inputs again are no change.
    same = provider.diff(resource_id, created.outs, news)
    assert same.changes is False and same.replaces == []

    # In-place update.
    updated_news = props(api_url, case.update)
    diff = provider.diff(resource_id, created.outs, updated_news)
    assert diff.changes is True and diff.replaces == []
    outs = provider.update(resource_id, created.outs, updated_news).outs or {}
    assert provider.diff(resource_id, outs, updated_news).changes is False
    live = case.resource(api_url).read(resource_id)
    assert case.resource(api_url).differs(case.update, live) == []

    # A change the API cannot make in place is a (delete-first) replacement.
    replace = provider.diff(resource_id, outs, props(api_url, case.replace))
    assert replace.changes is True
    if case.replace_key:
        assert replace.replaces == [case.replace_key]
        assert replace.delete_before_replace is True
    else:
        assert replace.replaces == []

    # Delete; a second delete (404) is success; read reports it gone.
    provider.delete(resource_id, outs)
    provider.delete(resource_id, outs)
    assert provider.read(resource_id, outs).id == ""
    # Gone from the server (deleted in the UI): the next diff recreates it.
    gone = provider.diff(resource_id, outs, updated_news)
    assert gone.changes is True and gone.replaces


@pytest.mark.parametrize("kind", KINDS)
def test_drift_is_detected_and_put_back(kind: str, api_url: str, cases: dict[str, Case]) -> None:
    case = cases[kind]
    provider = deserialized(kind)
    inputs = {**case.create, "name": case.create["name"] + "-drift"}
    if kind == "variable":
        inputs["name"] = inputs["name"].replace("-", "_")
    news = props(api_url, inputs)
    created = provider.create(news)
    try:
        case.drift(case.resource(api_url), created.id, inputs)  # an edit in the UI
        drifted = provider.diff(created.id, created.outs or {}, news)
        assert drifted.changes is True and drifted.replaces == []
        refreshed = provider.read(created.id, created.outs or {})  # `pulumi refresh`
        assert case.resource(api_url).differs(inputs, resource_inputs(refreshed.outs or {}))
        provider.update(created.id, created.outs or {}, news)  # `pulumi up` puts it back
        assert provider.diff(created.id, created.outs or {}, news).changes is False
    finally:
        provider.delete(created.id, created.outs or {})


def test_replacement_creates_the_new_resource(api_url: str, cases: dict[str, Case]) -> None:
    """The engine's replace = delete old (delete_before_replace), create new."""
    case = cases["work_pool"]
    provider = deserialized("work_pool")
    old = provider.create(props(api_url, {**case.create, "name": unique("pool-replace")}))
    new_inputs = {**case.replace, "name": old.id}
    assert provider.diff(old.id, old.outs or {}, props(api_url, new_inputs)).replaces == ["type"]
    provider.delete(old.id, old.outs or {})
    new = provider.create(props(api_url, new_inputs))
    try:
        live = WorkPools(api_url).read(new.id)
        assert live is not None and live["type"] == "kubernetes"
        properties = live["base_job_template"]["variables"]["properties"]
        assert properties["image"]["default"] == "ghcr.io/pricechecktn/pipeline:stable"
        assert properties["memory_request"]["default"] == "2Gi"
    finally:
        provider.delete(new.id, new.outs or {})


def test_api_key_is_an_input_and_a_key_rotation_is_an_update(
    api_url: str, cases: dict[str, Case]
) -> None:
    provider = deserialized("variable")
    inputs = {**cases["variable"].create, "name": unique("var_key").replace("-", "_")}
    created = provider.create(props(api_url, inputs, api_key="pnu_first"))
    try:
        assert created.outs is not None and created.outs["api_key"] == "pnu_first"
        rotated = provider.diff(created.id, created.outs, props(api_url, inputs, api_key="pnu_2"))
        assert rotated.changes is True and rotated.replaces == []
        moved = provider.diff(
            created.id, created.outs, props("http://127.0.0.1:1/api", inputs, api_key="pnu_first")
        )
        assert moved.replaces == ["api_url"]
    finally:
        provider.delete(created.id, created.outs or {})


def test_check_reports_missing_and_invalid_inputs(api_url: str, cases: dict[str, Case]) -> None:
    failures = deserialized("work_pool").check({}, {"api_url": api_url, "name": "x"}).failures
    assert {f.property for f in failures} == {"type", "description", "base_job_template"}
    bad = {**cases["automation"].create, "trigger": {"type": "event", "posture": "Sideways"}}
    failures = deserialized("automation").check({}, props(api_url, bad)).failures
    assert [f.property for f in failures] == ["trigger"]
    assert deserialized("variable").check({}, {"name": "x", "value": 1}).failures[0].property == (
        "api_url"
    )


def test_provider_state_holds_only_the_kind() -> None:
    """No client, session or lock is pickled: the provider is its class and kind."""
    provider = PrefectProvider("automation")
    assert vars(provider) == {"kind": "automation"}
    payload = base64.b64decode(serialize_provider(provider))
    assert b"pricecheck_infra.providers" in payload and len(payload) < 2000
    with pytest.raises(ValueError, match="unknown Prefect resource kind"):
        PrefectProvider("deployment")


def test_resources_written_by_apply_show_no_diff_after_the_engine(api_url: str) -> None:
    """`apply` sends the template with nulls; through the engine they are dropped (protobuf
    maps): the provider must not see that as a change."""
    pools = WorkPools(api_url)
    inputs = {
        "name": unique("pool-apply"),
        "type": "process",
        "description": "written by apply",
        "concurrency_limit": None,
        "base_job_template": base_job_template("process", {}),
    }
    assert "None" in repr(inputs["base_job_template"])  # the case this test is about
    resource_id = pools.create(inputs)
    try:
        through_engine = strip_nulls(props(api_url, inputs))
        provider = deserialized("work_pool")
        assert provider.diff(resource_id, through_engine, through_engine).changes is False
    finally:
        pools.delete(resource_id)


def test_preview_with_unknown_block_ids(api_url: str, cases: dict[str, Case]) -> None:
    """On a first preview the blocks do not exist yet: their ids are unknown, so check
    cannot validate the automation and diff can only say "changes"."""
    body = copy.deepcopy(cases["automation"].create)
    body["actions"][0]["block_document_id"] = UNKNOWN
    provider = deserialized("automation")
    assert provider.check({}, props(api_url, body)).failures == []
    diff = provider.diff("00000000-0000-0000-0000-000000000000", {}, props(api_url, body))
    assert diff.changes is True
