"""The real pipeline flow against the fixture sites, on the session's Prefect server.

Each fault switch must produce its signal (read back from the server), and a healthy run
must produce none. Failing sites must fail their `scraping` task with a message the
task-failure alert can classify, without sinking the whole run.
"""

from __future__ import annotations

from typing import Any

import pytest
from prefect.states import State

from flows.fixtures.generator import DataFaults, RunFaults
from flows.fixtures.shops import FixtureSites
from flows.pipeline import pricechecktn_pipeline
from tests.pipeline.conftest import just_before, signals_of_run, task_runs_of

pipeline = pricechecktn_pipeline.with_options(retries=0, timeout_seconds=120)

pytestmark = pytest.mark.usefixtures("pipeline_env")


def run(fixture: FixtureSites, **params: Any) -> tuple[State, dict[str, Any], list[dict[str, Any]]]:
    since = just_before()
    state = pipeline(site_urls=fixture.urls, rate_limit_s=0, return_state=True, **params)
    flow_run_id = state.state_details.flow_run_id
    summary = state.result() if state.is_completed() else {}
    events = signals_of_run(flow_run_id, since, "monitor-model" if state.is_completed() else None)
    return state, summary, events


def names(events: list[dict[str, Any]]) -> set[str]:
    return {e["event"] for e in events}


def test_healthy_run_completes_and_emits_no_signal(sites: FixtureSites) -> None:
    state, summary, events = run(sites)
    assert state.is_completed(), state.message
    assert all(s["ok"] and s["products"] == 400 for s in summary["sites"].values())
    assert summary["matches"] > 300
    assert summary["reviews"] > 2000
    assert summary["signals"] == []
    assert events == []


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("volume_drop", {"pricechecktn.data.volume_anomaly"}),
        ("missing_values", {"pricechecktn.data.quality_low"}),
        ("duplicates", {"pricechecktn.data.quality_low"}),
        ("price_drift", {"pricechecktn.model.drift_detected"}),
        (
            "prediction_skew",
            {"pricechecktn.model.prediction_anomaly", "pricechecktn.model.drift_detected"},
        ),
    ],
)
def test_each_data_fault_emits_its_signal(
    sites: FixtureSites, fault: str, expected: set[str]
) -> None:
    sites.set_all(faults=DataFaults(**{fault: True}))
    state, summary, events = run(sites)
    assert state.is_completed(), state.message
    assert names(events) == expected
    assert set(summary["signals"]) == expected
    for event in events:
        assert event["resource"]["prefect.resource.id"].startswith("pricechecktn.check.")
        assert {"metric", "observed", "threshold"} <= set(event["payload"])
    if fault == "price_drift":
        facts = events[0]["payload"]
        assert facts["level"] == "critical"
        assert facts["features_drifted"] == ["price_tnd"]
        assert facts["psi_price_tnd"] >= facts["psi_critical"] == 0.25
        assert facts["ks_p_price_tnd"] < 0.05
        assert facts["mean_change_price_tnd"] > 0.15


def test_volume_drop_facts_name_site_and_range(sites: FixtureSites) -> None:
    sites.set("jumia", faults=DataFaults(volume_drop=True))
    _, _, events = run(sites)
    [event] = events
    assert event["event"] == "pricechecktn.data.volume_anomaly"
    assert event["payload"] == {
        "metric": "products_scraped",
        "site": "jumia",
        "observed": 120,
        "threshold": "300-500",
        "min_expected": 300,
        "max_expected": 500,
        "direction": "low",
    }


def test_slow_prediction_emits_slow_task(sites: FixtureSites, tight_slas: dict[str, Any]) -> None:
    tight_slas["data"]["thresholds"]["model"]["max_prediction_latency_s"] = 0.4
    tight_slas["write"]()
    _, _, events = run(sites, faults=RunFaults(slow_prediction_s=0.6).model_dump())
    [event] = events
    assert event["event"] == "pricechecktn.performance.slow_task"
    assert event["payload"]["task"] == "score-reviews"
    assert event["payload"]["observed"] >= 0.6
    assert event["payload"]["threshold"] == 0.4


def test_degraded_model_emits_model_degraded(sites: FixtureSites) -> None:
    _, _, events = run(sites, faults={"holdout_label_noise": 0.5})
    [event] = events
    assert event["event"] == "pricechecktn.model.degraded"
    assert event["payload"]["observed"] < event["payload"]["threshold"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("forbidden", "ScrapeHTTPError: HTTP 403 Forbidden"),
        ("unauthorized", "ScrapeHTTPError: HTTP 401 Unauthorized"),
        ("timeout", "ReadTimeout"),
        ("refused", "ConnectError"),
        ("layout", "LayoutChangedError: mytek: 0 products parsed"),
    ],
)
def test_failing_site_fails_its_scraping_task_only(
    sites: FixtureSites, mode: str, message: str
) -> None:
    sites.set("mytek", mode, hang_s=3)
    before = sites.sites["mytek"].requests
    state, summary, events = run(sites)
    assert state.is_completed(), state.message
    assert summary["sites"]["mytek"]["ok"] is False
    assert summary["sites"]["tunisianet"]["ok"] and summary["sites"]["jumia"]["ok"]

    scrape_runs = {
        t.name.rsplit("-", 1)[0]: t
        for t in task_runs_of(state.state_details.flow_run_id)
        if "scraping" in t.tags
    }
    assert set(scrape_runs) == {"scrape-mytek", "scrape-tunisianet", "scrape-jumia"}
    failed = scrape_runs["scrape-mytek"]
    assert failed.state.is_failed()
    assert message in failed.state.message
    assert "site:mytek" in failed.tags
    assert failed.run_count == 2  # PRICECHECK_SCRAPE_RETRIES=1: tried twice
    if mode != "refused":
        assert sites.sites["mytek"].requests - before == 2

    [event] = [e for e in events if e["event"] == "pricechecktn.scraping.success_rate_low"]
    assert event["payload"]["sites_failed"] == ["mytek"]
    assert event["payload"]["observed"] == pytest.approx(2 / 3, abs=1e-3)


def test_no_site_reachable_fails_the_flow(sites: FixtureSites) -> None:
    sites.set_all("forbidden")
    state, _, _ = run(sites)
    assert state.is_failed()
    assert "no site could be scraped" in state.message


def test_hostile_names_survive_the_whole_run(sites: FixtureSites) -> None:
    """Quotes, newlines, emoji, Arabic and markup in names are scraped and matched intact."""
    state, _, _ = run(sites, sites=["mytek"])
    assert state.is_completed()
    from flows.config import RunSettings
    from flows.snapshot import load

    names = [p.name or "" for p in load(RunSettings.from_env().state_dir).products]
    assert any("حاسوب" in n for n in names)
    assert any("🔥" in n for n in names)
    assert any("<b>&amp; garantie</b>" in n for n in names)
    assert not any("\n" in n for n in names)  # whitespace collapsed, not split into rows
