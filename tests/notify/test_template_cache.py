"""In the server, each notification template is parsed and compiled once, whatever the
number of alerts, and renders exactly as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect.server.utilities import user_templates

import pricecheck_alerts.notify  # noqa: F401  (installs the cache, as the server's import does)
from pricecheck_alerts.notify.facts import AlertFacts
from tests.notify.rendering import body_template


def test_a_template_is_parsed_and_compiled_once_and_renders_the_same(project_root: Path) -> None:
    template = body_template(project_root, "pricechecktn/local/flow-run-failed")
    environment = user_templates._template_environment
    parsed = environment.parse.cache_info().misses
    compiled = environment.from_string.cache_info().misses

    for _ in range(20):  # what the server does when it loads and checks the actions
        user_templates.validate_user_template(template)
    names = [f"run-{n}" for n in range(50)]
    bodies = [
        asyncio.run(
            user_templates.render_user_template(
                template,
                {"flow_run": {"name": name}, "event": {"event": "prefect.flow-run.Failed"}},
            )
        )
        for name in names
    ]
    assert environment.parse.cache_info().misses == parsed + 1
    assert environment.from_string.cache_info().misses == compiled + 1
    assert [AlertFacts.parse(body).flow_run.name for body in bodies] == names


def test_other_calls_go_straight_through() -> None:
    environment = user_templates._template_environment
    template = environment.from_string("{{ x }}", globals={"x": 1})  # not cached: globals
    assert asyncio.run(template.render_async()) == "1"
    assert asyncio.run(user_templates.render_user_template("plain text", {})) == "plain text"
