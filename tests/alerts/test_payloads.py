"""Facts rendering with Prefect's own template engine, and each destination's payload,
with hostile text, within limits, checked by the same validators the receivers use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from prefect.server.events.actions import JinjaTemplateAction
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.schemas.core import FlowRun
from prefect.server.schemas.states import State, StateType
from prefect.server.utilities.user_templates import render_user_template_sync

from pricecheck_alerts.alerts import AlertFacts, classify_scraping_error
from pricecheck_alerts.catalog import load_catalog
from pricecheck_alerts.compiler import compile_stack
from pricecheck_alerts.payloads import (
    clip,
    email_message,
    mrkdwn,
    pagerduty_event,
    slack_message,
    units,
)
from pricecheck_alerts.receivers import pagerduty_problems, slack_problems
from pricecheck_alerts.scenarios import HOSTILE_MESSAGE
from pricecheck_alerts.stacks import load_stack
from pricecheck_alerts.templates import escape_jinja

HOSTILE = [
    "quotes \" and ' and \\ backslash",
    "new\nlines\r\nand\ttabs",
    "emoji 🚨🔥👩‍💻 " * 300,
    "عربي: فشل التشغيل " * 400,
    "français : échec du scraping — « réessayer »",
    "<script>alert('x')</script> & {{ not a template }} {% nor this %}",
    HOSTILE_MESSAGE,
    "x" * 20_000,
]
ROUTING_KEY = "R" * 32


def body_template(root: Path, automation: str) -> str:
    resources = compile_stack(load_catalog(root), load_stack(root, "local", {}))
    [spec] = [a for a in resources.automations if a.name == automation]
    return spec.body["actions"][0]["body"]


def render(
    template: str,
    message: str,
    payload: dict | None = None,
    task: bool = False,
    deployment: str = "pricechecktn-pipeline",
    missing_objects: bool = False,
) -> AlertFacts:
    """Render like the server does: its template environment and filters, its event and
    object models, and None for objects it could not read."""
    JinjaTemplateAction._register_filters_if_needed()
    state = State(type=StateType.FAILED, name="Failed", message=message)
    run_id = UUID("6f1c1c9e-0000-4000-8000-000000000001")
    if task:
        name, resource = (
            "prefect.task-run.Failed",
            {
                "prefect.resource.id": "prefect.task-run.7a0c",
                "prefect.resource.name": "scrape-mytek-0",
                "prefect.run-count": "4",
            },
        )
        payload = {"task_run": {"empirical_policy": {"retries": 3}, "tags": ["scraping"]}}
    elif payload:
        name, resource = (
            "pricechecktn.data.quality_low",
            {
                "prefect.resource.id": "pricechecktn.check.quality",
                "prefect.resource.name": "quality",
            },
        )
    else:
        name, resource = (
            "prefect.flow-run.Failed",
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.name": "brave-lynx",
            },
        )
    event = ReceivedEvent(
        occurred=datetime(2026, 11, 26, 2, 0, 5, 123000, tzinfo=UTC),
        event=name,
        resource=resource,
        payload=payload or {},
        id=uuid4(),
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": "brave-lynx",
            },
            {
                "prefect.resource.id": "prefect.flow.f1",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "pricechecktn-pipeline",
            },
            {
                "prefect.resource.id": "prefect.deployment.d1",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": deployment,
            },
        ],
    )
    objects = {
        "flow_run": FlowRun(
            id=run_id,
            flow_id=uuid4(),
            name="brave-lynx",
            state=state,
            tags=["scraping", message[:20]],
            run_count=1,
            start_time=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        ),
        "flow": SimpleNamespace(name="pricechecktn-pipeline"),
        "deployment": SimpleNamespace(id="d1", name=deployment),
        "task_run": SimpleNamespace(id="t1", name="scrape-mytek-0", state=state) if task else None,
    }
    if missing_objects:  # the API read failed or the objects do not exist
        objects = dict.fromkeys(objects)
    rendered = render_user_template_sync(template, {"event": event, **objects})
    json.loads(rendered)  # valid JSON whatever the message held
    return AlertFacts.parse(rendered)


@pytest.mark.parametrize("message", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_yields_valid_payloads_within_limits(
    project_root: Path,
    message: str,
) -> None:
    template = body_template(project_root, "pricechecktn/local/flow-run-failed")
    facts = render(template, message, deployment=message[:300])
    assert facts.flow_run.message == message
    assert facts.static.rule == "flow-run-failed"

    slack = slack_message(facts)
    assert slack_problems(slack) == []
    assert units(slack["text"]) <= 4000
    assert all(units(b["text"]["text"]) <= 150 for b in slack["blocks"] if b["type"] == "header")

    event = pagerduty_event(facts, ROUTING_KEY)
    raw = json.dumps(event, ensure_ascii=False).encode()
    assert pagerduty_problems(event, len(raw)) == []
    assert units(event["payload"]["summary"]) <= 1024
    assert len(event["dedup_key"]) <= 255
    assert len(raw) < 512 * 1024

    mail = email_message(facts, "alerts@x.tn", ["oncall@x.tn"])
    assert "\n" not in mail["Subject"] and "\r" not in mail["Subject"]
    assert str(mail["Subject"]).startswith("CRITICAL [local] Flow run failed")
    mail.as_bytes()  # serialisable as a real message


def test_template_text_in_rules_is_inert() -> None:
    escaped = escape_jinja(json.dumps({"a": "{{ x }} {% y %} {# z #}"}))
    assert json.loads(render_user_template_sync(escaped, {})) == {"a": "{{ x }} {% y %} {# z #}"}


def test_dedup_key_is_stable_across_runs_and_never_the_run_id(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/flow-run-failed")
    first, second = render(template, "a"), render(template, "b")
    assert first.dedup_key == second.dedup_key
    assert first.dedup_key == (
        "pricechecktn/local/pricechecktn-pipeline/pricechecktn-pipeline/flow-run-failed"
    )
    assert "6f1c1c9e" not in first.dedup_key


def test_slack_blocks_carry_what_is_needed_to_act(project_root: Path) -> None:
    facts = render(body_template(project_root, "pricechecktn/local/flow-run-failed"), "boom <b>&")
    slack = slack_message(facts)
    text = json.dumps(slack, ensure_ascii=False)
    for needed in (
        "*Environment*\\nlocal",
        "*Flow*\\npricechecktn-pipeline",
        "*State*\\nFailed",
        "boom &lt;b&gt;&amp;",
        "Runbook",
        "docs/runbooks/flow-run-failed.md",
        "http://127.0.0.1:4200/runs/flow-run/6f1c1c9e",
    ):
        assert needed in text, needed
    buttons = next(b for b in slack["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons][-1] == "Runbook"


def test_pagerduty_trigger_fields(project_root: Path) -> None:
    facts = render(body_template(project_root, "pricechecktn/local/flow-run-failed"), "boom")
    event = pagerduty_event(facts, ROUTING_KEY)
    payload = event["payload"]
    assert event["event_action"] == "trigger"
    assert payload["severity"] == "critical"
    assert payload["source"] == "prefect/local"
    assert payload["class"] == "flow-run-failed"
    assert payload["timestamp"] == "2026-11-26T02:00:05.123000+00:00"
    assert payload["custom_details"]["message"].endswith("boom")
    assert [link["text"] for link in event["links"]] == ["Open flow run", "Runbook"]


def test_pipeline_signal_shows_its_facts(project_root: Path) -> None:
    facts = render(
        body_template(project_root, "pricechecktn/local/data-quality-low"),
        "m",
        payload={"metric": "completeness", "value": 0.71, "threshold": 0.9, "site": "mytek"},
    )
    slack = json.dumps(slack_message(facts))
    assert "*metric*\\ncompleteness" in slack and "*value*\\n0.71" in slack
    assert "*threshold*\\n0.9" in slack


def test_task_failure_carries_retries_and_advice(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/task-run-failed")
    facts = render(template, "HTTPStatusError: Client error '403 Forbidden' for url", task=True)
    slack = json.dumps(slack_message(facts), ensure_ascii=False)
    assert "*Attempts*\\n4 (retries allowed: 3)" in slack
    assert "Cause: http-401-403" in slack
    assert facts.advice is not None


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("ReadTimeout: timed out", "timeout"),
        ("httpx.ConnectTimeout: connection timeout", "timeout"),
        ("HTTPStatusError: Client error '401 Unauthorized'", "http-401-403"),
        ("Client error '403 Forbidden' for url 'https://tunisianet.com.tn'", "http-401-403"),
        ("ConnectError: [Errno 111] Connection refused", "connection"),
        ("[Errno -2] Name or service not known", "connection"),
        ("ValueError: could not parse price '1 299,000 DT'", "other"),
        ("ValueError: could not parse price '403,500 DT'", "other"),
        ("OverflowError: datetime outside supported range", "other"),
        ("KeyError: 'time_out_ms'", "other"),
        ("TimeoutError()", "timeout"),
    ],
)
def test_scraping_errors_are_classified(message: str, cause: str) -> None:
    assert classify_scraping_error(message)[0] == cause


def test_clip_and_escape_respect_utf16_limits() -> None:
    assert clip("🚨" * 10, 5) == "🚨🚨…"
    assert units(clip("🚨" * 10, 5)) <= 5
    assert mrkdwn("a&b", 10) == "a&amp;b"
    cut = mrkdwn("&" * 10, 12)
    assert cut.endswith("…") and units(cut) <= 12 and "&am…" not in cut


def test_identity_comes_from_the_event_when_objects_are_missing(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/flow-run-failed")
    full = render(template, "boom")
    bare = render(template, "boom", missing_objects=True)
    # trigger and resolve agree even if one of them could not read the API objects
    assert bare.dedup_key == full.dedup_key
    assert bare.subject == "pricechecktn-pipeline"
    assert slack_problems(slack_message(bare)) == []


def test_slack_text_cannot_ping_or_fake_links(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/flow-run-failed")
    facts = render(template, "<!channel> see <https://evil.example|Open run>")
    slack = slack_message(facts)
    assert "<!channel>" not in json.dumps(slack) and "<https://evil" not in json.dumps(slack)
    assert "&lt;!channel&gt;" in slack["text"]


def test_signal_facts_cannot_overwrite_pagerduty_details(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/model-degradation")
    facts = render(template, "m", payload={"rule": "spoofed", "accuracy": 0.71})
    details = pagerduty_event(facts, ROUTING_KEY)["payload"]["custom_details"]
    assert details["rule"] == "model-degradation"
    assert details["facts"] == {"rule": "spoofed", "accuracy": "0.71"}
