"""The real pipeline's story, end to end: `prefect deploy --all`, a process worker, fixture
shops switched between runs, and the alerts that actually arrive (what `make demo` tells).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local_server import LocalPrefectServer, free_port_block
from devtools.pipeline_story import StoryPlace, play_story, start_pipeline, stop_pipeline
from devtools.receivers import Delivery, Receivers
from devtools.scenarios import Expected, identify, wait_for_alerts
from pricecheck_alerts.compile.compiler import compile_stack
from pricecheck_alerts.config.loader import load_catalog
from pricecheck_alerts.config.stacks import load_stack, resolve_secrets
from pricecheck_alerts.provision.apply import apply_stack


@pytest.fixture(scope="module")
def story(
    prefect_server: LocalPrefectServer,
    receivers: Receivers,
    project_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Counter[Expected], bool, list[Delivery]]]:
    environ = {
        **receivers.urls(),
        "PRICECHECK_PAGERDUTY_ROUTING_KEY": "S" * 32,
        "PRICECHECK_PREFECT_UI_URL": prefect_server.url,
    }
    resources = compile_stack(
        load_catalog(project_root), load_stack(project_root, "local", environ)
    )
    apply_stack(resources, resolve_secrets(project_root, "local", environ))
    # the control API and the three shops take four consecutive ports
    place = StoryPlace(tmp_path_factory.mktemp("story"), free_port_block(4), receivers.smtp_port)
    start_pipeline(project_root, place, resources.work_pools[0].name)
    try:
        receivers.store.clear()
        expected, states_ok = play_story(place)
        arrived = wait_for_alerts(receivers.store.all, expected, timeout=120, settle=5)
        yield expected, states_ok, arrived
    finally:
        stop_pipeline(place)


def test_every_run_ends_as_the_story_says(story: tuple) -> None:
    _, states_ok, _ = story
    assert states_ok


def test_exactly_the_story_alerts_arrive(story: tuple) -> None:
    expected, _, arrived = story
    got = Counter(identify(d) for d in arrived)
    assert got == expected, f"missing {expected - got}, unexpected {got - expected}"
    assert [d.error for d in arrived if d.status >= 300] == []


def test_blocked_shop_alert_names_the_cause(story: tuple) -> None:
    _, _, arrived = story
    blocked = [
        d
        for d in arrived
        if identify(d) == Expected("slack-warnings", "task-run-failed")
        and "403" in json.dumps(d.body)
    ]
    assert blocked, "no task alert for the shop answering 403"
    assert "Cause: http-401-403" in json.dumps(blocked[0].body, ensure_ascii=False)


def test_the_failed_night_pages_and_resolves_with_one_key(story: tuple) -> None:
    _, _, arrived = story
    pages = [d.body for d in arrived if d.channel == "pagerduty"]
    assert [p["event_action"] for p in pages] == ["trigger", "resolve"]
    assert (
        pages[0]["dedup_key"]
        == pages[1]["dedup_key"]
        == ("pricechecktn/local/pricechecktn-pipeline/pricechecktn-pipeline/flow-run-failed")
    )
