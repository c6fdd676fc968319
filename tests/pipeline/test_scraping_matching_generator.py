"""Parsing, matching, the generator, the model and the fixture sites, without Prefect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flows.config import RunSettings, load_sites
from flows.fixtures.generator import DataFaults, site_listings
from flows.fixtures.shops import FixtureSites, render_page
from flows.matching import brand_of, capacities, match_products, normalise
from flows.report_stats import RunRecord, deployment_stats, recovery_times, rule_of, summarise
from flows.review_corpus import labelled_sample, read_sample
from flows.review_model import train
from flows.scraping import (
    LayoutChangedError,
    ScrapedProduct,
    ScrapeHTTPError,
    parse_listing,
    parse_price,
    scrape,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 299,000 DT", 1299.0),
        ("1.299,500 TND", 1299.5),
        ("1,299.250 TND", 1299.25),
        ("2 499 DT", 2499.0),
        ("Prix: 899,900\u00a0DT", 899.9),
        ("12.345.678", 12345678.0),
        ("Prix sur demande", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_price(text: str | None, value: float | None) -> None:
    assert parse_price(text) == value


def test_parse_listing_keeps_hostile_text_intact() -> None:
    [site] = load_sites(["tunisianet"], env={})
    [listing] = site_listings("tunisianet", seed=3, products=1)
    hostile = listing.__class__(
        site="tunisianet",
        sku='X-"1"',
        name='Pc "Pro" l\'été\n🔥 حاسوب <script>alert(1)</script>',
        price_tnd=1299.5,
        url="/p?a=1&b=2",
        reviews=(listing.reviews[0].__class__('رائع 😍 "top"\n<b>', "ar", False),),
    )
    [product] = parse_listing(site, render_page(site, [hostile]))
    assert product.name == 'Pc "Pro" l\'été 🔥 حاسوب <script>alert(1)</script>'
    assert product.sku == 'X-"1"'
    assert product.url == "/p?a=1&b=2"
    assert product.price_tnd == 1299.5
    assert product.reviews == ('رائع 😍 "top" <b>',)


def test_changed_layout_parses_nothing() -> None:
    [site] = load_sites(["jumia"], env={})
    listings = site_listings("jumia", seed=3, products=5)
    assert len(parse_listing(site, render_page(site, listings))) == 5
    assert parse_listing(site, render_page(site, listings, layout_changed=True)) == []


def test_scrape_fixture_site_and_its_failure_modes() -> None:
    sites = FixtureSites(seed=2, products=120).start()
    try:
        [site] = load_sites(["mytek"], sites.urls, rate_limit_s=0, env={})
        result = scrape(site)
        assert len(result.products) == 120 and result.pages == 4  # 50/page + empty page
        assert sum(len(p.reviews) for p in result.products) > 200
        sites.set("mytek", "forbidden")
        with pytest.raises(ScrapeHTTPError, match=r"^HTTP 403 Forbidden from http://"):
            scrape(site)
        sites.set("mytek", "layout")
        with pytest.raises(LayoutChangedError, match="layout may have changed"):
            scrape(site)
        sites.set("mytek", "refused")
        with pytest.raises(httpx.ConnectError):
            scrape(site)
        sites.set("mytek", "ok")
        assert len(scrape(site).products) == 120  # listening again on the same port
        sites.set("mytek", "slow", delay_s=0.1)
        assert scrape(site).duration_s >= 0.4  # 4 requests, each delayed
        sites.set("mytek", "ok")
        [polite] = load_sites(["mytek"], sites.urls, rate_limit_s=0.1, env={})
        assert scrape(polite).duration_s >= 0.3  # a pause between consecutive pages
    finally:
        sites.stop()


def test_normalise_brand_capacity() -> None:
    a = normalise("PC Portable HP 15s-fq5 i5 8Go 1 To SSD 🔥")
    b = normalise("HP 15s-fq5 Laptop - Core i5 - 8GB RAM - 1 TB SSD - Silver")
    assert a == b == "hp 15s fq5 i5 8gb 1tb"
    assert brand_of("Pc portable LENOVO IdeaPad") == "lenovo"
    assert brand_of("حاسوب محمول") is None
    assert capacities("16 Go / 512 Go SSD") == frozenset({"16gb", "512gb"})


def _p(site: str, sku: str, name: str, price: float) -> ScrapedProduct:
    return ScrapedProduct(site, sku, name, None, price, None)


def test_matching_confidence_penalises_capacity_and_price() -> None:
    left = [_p("a", "1", "PC Portable HP 15s-fq5 i5 8Go 512Go SSD", 1500)]
    same = [_p("b", "x", "HP 15s-fq5 Laptop - Core i5 - 8GB RAM - 512GB SSD", 1520)]
    [match] = match_products(left, same)
    assert match.right_sku == "x" and match.confidence == 1.0
    other_ram = [_p("b", "y", "HP 15s-fq5 Laptop - Core i5 - 16GB RAM - 512GB SSD", 1520)]
    assert match_products(left, other_ram) == []  # capacity mismatch halves it below 0.6
    too_cheap = [_p("b", "z", "HP 15s-fq5 Laptop - Core i5 - 8GB RAM - 512GB SSD", 500)]
    assert match_products(left, too_cheap)[0].confidence == pytest.approx(0.6)
    other_brand = [_p("b", "w", "Dell 15s-fq5 i5 8Go 512Go SSD", 1500)]
    assert match_products(left, other_brand) == []


def test_generator_is_deterministic_and_faults_do_what_they_say() -> None:
    healthy = site_listings("mytek", seed=5)
    assert healthy == site_listings("mytek", seed=5)
    assert healthy != site_listings("mytek", seed=6)
    assert len(healthy) == 400
    assert len(site_listings("mytek", 5, DataFaults(volume_drop=True))) == 120
    assert len(site_listings("mytek", 5, DataFaults(duplicates=True))) == 500
    missing = site_listings("mytek", 5, DataFaults(missing_values=True))
    assert 0.15 < sum(item.price_tnd is None for item in missing) / 400 < 0.35
    drifted = site_listings("mytek", 5, DataFaults(price_drift=True))
    assert drifted[0].price_tnd == pytest.approx(healthy[0].price_tnd * 1.6, rel=1e-3)
    skewed = site_listings("mytek", 5, DataFaults(prediction_skew=True))
    share = sum(r.is_fake for i in skewed for r in i.reviews) / sum(len(i.reviews) for i in skewed)
    assert share > 0.9


def test_shipped_sample_is_the_seeded_one_and_model_beats_baseline() -> None:
    shipped = read_sample()
    assert [(r.text, r.is_fake) for r in shipped] == [
        (r.text, r.is_fake) for r in labelled_sample()
    ]
    assert {r.lang for r in shipped} == {"fr", "ar", "en"}
    model = train(shipped)
    assert 0.85 <= model.baseline_accuracy < 1.0
    assert model.holdout_accuracy(label_noise=0.5) < 0.75
    fake, genuine = model.score(
        [
            "Meilleur produit!!! achetez maintenant!!! 100%",
            "La batterie tient 5 heures, livraison en 3 jours.",
        ]
    )
    assert fake > 0.5 > genuine


def test_settings_from_env_and_site_overrides() -> None:
    settings = RunSettings.from_env(
        {"PRICECHECK_SCRAPE_RETRIES": "0", "PRICECHECK_FLOW_TIMEOUT_S": "5"}
    )
    assert (settings.scrape_retries, settings.flow_timeout_s) == (0, 5)
    assert (
        RunSettings.from_env({}).flow_retries,
        RunSettings.from_env({}).flow_retry_delay_s,
        RunSettings.from_env({}).scrape_retry_delay_s,
    ) == (2, 60, 30)
    with pytest.raises(ValueError, match="PRICECHECK_FLOW_RETRIES"):
        RunSettings.from_env({"PRICECHECK_FLOW_RETRIES": "two"})
    sites = load_sites(
        env={"PRICECHECK_SITE_URLS": '{"jumia": "http://x"}', "PRICECHECK_SITE_TIMEOUT_S": "2"}
    )
    assert [s.name for s in sites] == ["mytek", "tunisianet", "jumia"]
    assert sites[2].page_url(3) == "http://x/ordinateurs-portables/?page=3"
    assert {s.timeout_s for s in sites} == {2.0}
    with pytest.raises(ValueError, match="unknown site"):
        load_sites(["amazon"], env={})


def _run(name: str, state: str, start: int, end: int, state_name: str = "") -> RunRecord:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 11, 26, tzinfo=UTC)
    return RunRecord(
        name,
        state,
        state_name or state.title(),
        t0 + timedelta(seconds=start),
        t0 + timedelta(seconds=end),
        float(end - start),
    )


def test_report_arithmetic() -> None:
    runs = [
        _run("p", "COMPLETED", 0, 100),
        _run("p", "FAILED", 200, 250),
        _run("p", "FAILED", 300, 320, "TimedOut"),
        _run("p", "COMPLETED", 400, 500),
        _run("p", "COMPLETED", 600, 1000),
    ]
    assert recovery_times(runs) == [250.0]  # end of first failure (250) to recovery (500)
    stats = deployment_stats("p", runs, sla_s=300)
    assert (stats.runs, stats.completed, stats.failed) == (5, 3, 2)
    assert stats.slow == 2  # one over 300 s, one TimedOut
    assert stats.sla_attainment == pytest.approx(4 / 5)
    assert stats.avg_duration_s == pytest.approx((100 + 50 + 20 + 100 + 400) / 5)
    summary = summarise([*runs, _run("other", "CRASHED", 0, 5)], [], {"p": 300})
    assert summary.runs == 6 and summary.failed == 3
    assert summary.success_rate == pytest.approx(3 / 6)
    assert summary.mean_time_to_recovery_s == 250.0


def test_rule_of_automation_names() -> None:
    assert rule_of("pricechecktn/prod/task-run-failed") == ("prod", "task-run-failed")
    assert rule_of("pricechecktn/staging/run-duration-sla/pricechecktn-pipeline") == (
        "staging",
        "run-duration-sla",
    )
    assert rule_of("pricechecktn/local/flow-run-failed/resolve") is None
    assert rule_of("pricechecktn/local/retired-rule") == ("local", "retired-rule")
    assert rule_of("retrain-model__automation_1") is None
    assert rule_of("pricechecktn/") is None


def test_fixture_control_api_switches_modes_and_faults() -> None:
    from flows.fixtures.shops import serve_control

    sites = FixtureSites(seed=2, products=60).start()
    control = serve_control(sites)
    base = f"http://127.0.0.1:{control.server_address[1]}"
    try:
        described = httpx.get(base).json()
        assert set(described) == {"mytek", "tunisianet", "jumia"}
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        assert httpx.post(f"{base}/sites/mytek", json={"mode": "unauthorized"}).status_code == 200
        assert httpx.get(sites.urls["mytek"] + "/x").status_code == 401
        answer = httpx.post(f"{base}/sites/all", json={"faults": {"volume_drop": True}})
        assert answer.json()["jumia"]["faults"]["volume_drop"] is True
        [jumia] = load_sites(["jumia"], sites.urls, rate_limit_s=0, env={})
        assert len(scrape(jumia).products) == 18
        assert httpx.post(f"{base}/sites/all", json={"mode": "nope"}).status_code == 400
        assert httpx.post(f"{base}/sites/all", json={"faults": {"bogus": 1}}).status_code == 400
        assert httpx.post(f"{base}/sites/amazon", json={}).status_code == 404
    finally:
        control.shutdown()
        sites.stop()


def test_flow_retries_and_timeout_come_from_the_environment(project_root: Path) -> None:
    """What a deployment's job variables do: the worker's flow process reads them at import."""
    code = (
        "from flows.pipeline import pricechecktn_pipeline as f, scrape_site as t;"
        "print(f.retries, f.retry_delay_seconds, f.timeout_seconds, sorted(t.tags))"
    )
    env = {
        **os.environ,
        "PRICECHECK_FLOW_RETRIES": "0",
        "PRICECHECK_FLOW_RETRY_DELAY_S": "1",
        "PRICECHECK_FLOW_TIMEOUT_S": "42",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split("\n")[-2] == "0 1.0 42.0 ['scraping']"
    default_env = {k: v for k, v in env.items() if not k.startswith("PRICECHECK_FLOW_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project_root,
        env=default_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split("\n")[-2] == "2 60.0 3600.0 ['scraping']"
