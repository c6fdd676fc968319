"""Facts rendered by Prefect's own template engine: valid JSON whatever the run said, the
same identity and dedup key for every destination, text within each destination's limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.server.utilities.user_templates import render_user_template_sync

from devtools.receivers import pagerduty_problems, slack_problems
from pricecheck_alerts.compile.template import escape_jinja
from pricecheck_alerts.notify.email import email_message
from pricecheck_alerts.notify.pagerduty import pagerduty_event
from pricecheck_alerts.notify.slack import slack_message
from pricecheck_alerts.notify.text import clip, mrkdwn, units
from tests.notify.rendering import HOSTILE, ROUTING_KEY, body_template, render


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


def test_identity_comes_from_the_event_when_objects_are_missing(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/flow-run-failed")
    full = render(template, "boom")
    bare = render(template, "boom", missing_objects=True)
    # trigger and resolve agree even if one of them could not read the API objects
    assert bare.dedup_key == full.dedup_key
    assert bare.subject == "pricechecktn-pipeline"
    assert slack_problems(slack_message(bare)) == []


def test_clip_and_escape_respect_utf16_limits() -> None:
    assert clip("🚨" * 10, 5) == "🚨🚨…"
    assert units(clip("🚨" * 10, 5)) <= 5
    assert mrkdwn("a&b", 10) == "a&amp;b"
    cut = mrkdwn("&" * 10, 12)
    assert cut.endswith("…") and units(cut) <= 12 and "&am…" not in cut
