"""`pricechecktn-pipeline`: scrape each site → validate → match → score reviews → check.

A site that fails (after its task's retries) does not sink the run: the others are still
worth matching, and the failure is already visible as a failed `scraping` task (alerted
with its cause) and in the scraping success rate. Only when no site at all could be
scraped does the flow fail, so flow retries are spent where a retry can help.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.utilities.annotations import quote

from flows.baseline import load_or_build
from flows.check_tasks import (
    CheckReport,
    check_matching_task,
    check_scraping_task,
    monitor_model,
    validate_data,
)
from flows.checks import SiteOutcome
from flows.config import RunSettings, SiteConfig, load_sites
from flows.fixtures.generator import RunFaults
from flows.matching import Match, match_across_sites
from flows.review_model import FakeReviewModel, load_or_train
from flows.scraping import ScrapedProduct, SiteScrape, scrape
from flows.snapshot import save as save_snapshot
from pricecheck_alerts import naming

SETTINGS = RunSettings.from_env()


@task(name="scrape-site", tags=["scraping"], cache_policy=NO_CACHE)
def scrape_site(site: SiteConfig) -> SiteScrape:
    """All listing pages of one site. HTTP errors, timeouts and refused connections surface
    as they are, so the failed-task alert can say which it was.

    Each site takes a slot of the stack's `pricechecktn-scraping` global concurrency limit
    (provisioned from `concurrencyLimits`), so a stack decides how many sites are scraped at
    once; without that limit on the server, scraping is not held back."""
    with concurrency(naming.SCRAPING_LIMIT, occupy=1):
        result = scrape(site)
    get_run_logger().info(
        "%s: %d products from %d pages in %.2fs",
        site.name,
        len(result.products),
        result.pages,
        result.duration_s,
    )
    return result


@task(name="match-products", cache_policy=NO_CACHE)
def match_products_task(by_site: dict[str, list[ScrapedProduct]]) -> list[Match]:
    return match_across_sites(by_site)


@task(name="score-reviews", cache_policy=NO_CACHE)
def score_reviews(
    model: FakeReviewModel, texts: list[str], injected_delay_s: float = 0.0
) -> tuple[list[float], float]:
    """`fake_score` per review and the wall time it took (the slow-task check's input).

    `injected_delay_s` is the generator's "slow prediction" fault.
    """
    started = time.perf_counter()
    if injected_delay_s:
        time.sleep(injected_delay_s)
    scores = model.score(texts).tolist()
    return scores, time.perf_counter() - started


def _scrape_all(
    sites: list[SiteConfig], settings: RunSettings
) -> tuple[dict[str, SiteScrape], list[SiteOutcome]]:
    futures = [
        (
            site,
            scrape_site.with_options(
                name=f"scrape-{site.name}",
                tags={"scraping", f"site:{site.name}"},
                retries=settings.scrape_retries,
                retry_delay_seconds=settings.scrape_retry_delay_s,
            ).submit(site),
        )
        for site in sites
    ]
    scraped: dict[str, SiteScrape] = {}
    outcomes: list[SiteOutcome] = []
    for site, future in futures:
        try:
            result = future.result()
        except Exception as exc:
            outcomes.append(SiteOutcome(site.name, False, error=f"{type(exc).__name__}: {exc}"))
            continue
        scraped[site.name] = result
        outcomes.append(SiteOutcome(site.name, True, len(result.products), result.duration_s))
    return scraped, outcomes


def _busy(scraped: dict[str, SiteScrape]) -> dict[str, list[float]]:
    """When each site was being scraped: [start, end] in epoch seconds."""
    return {name: [s.started_at, s.finished_at] for name, s in scraped.items()}


@flow(
    name="pricechecktn-pipeline",
    retries=SETTINGS.flow_retries,
    retry_delay_seconds=SETTINGS.flow_retry_delay_s,
    timeout_seconds=SETTINGS.flow_timeout_s,
)
def pricechecktn_pipeline(
    sites: list[str] | None = None,
    site_urls: dict[str, str] | None = None,
    rate_limit_s: float | None = None,
    faults: RunFaults | None = None,
) -> dict[str, Any]:
    """The nightly run. `site_urls` points sites elsewhere (fixture sites in tests and the
    demo); `faults` injects the pipeline-side faults (slow prediction, degraded holdout);
    data faults (`DataFaults`) are served by the fixture sites themselves."""
    started = time.perf_counter()
    logger = get_run_logger()
    settings = RunSettings.from_env()
    thresholds = settings.slas().thresholds
    faults = faults or RunFaults()
    configs = load_sites(sites, site_urls, rate_limit_s)
    stages: dict[str, float] = {}
    checks = CheckReport()

    mark = time.perf_counter()
    scraped, outcomes = _scrape_all(configs, settings)
    stages["scrape"] = time.perf_counter() - mark
    checks.merge(check_scraping_task(outcomes, thresholds))
    checks_wall = time.perf_counter() - mark - stages["scrape"]
    if not scraped:
        raise RuntimeError(
            "no site could be scraped: " + "; ".join(f"{o.site}: {o.error}" for o in outcomes)
        )

    # quote(): big inputs are passed as they are, without Prefect walking every element
    # looking for futures (that walk alone costs more than the checks).
    by_site = {name: result.products for name, result in scraped.items()}
    products = [p for items in by_site.values() for p in items]
    mark = time.perf_counter()
    checks.merge(validate_data(quote(by_site), thresholds))
    checks_wall += time.perf_counter() - mark

    mark = time.perf_counter()
    matches = match_products_task(quote(by_site))
    stages["match"] = time.perf_counter() - mark
    mark = time.perf_counter()
    checks.merge(check_matching_task(quote(matches), thresholds))
    checks_wall += time.perf_counter() - mark

    mark = time.perf_counter()
    model = load_or_train(settings.state_dir)
    baseline = load_or_build(settings.state_dir, model)
    stages["load_model"] = time.perf_counter() - mark
    texts = [review for p in products for review in p.reviews]
    mark = time.perf_counter()
    scores, latency = score_reviews(model, quote(texts), faults.slow_prediction_s)
    stages["score"] = time.perf_counter() - mark
    mark = time.perf_counter()
    checks.merge(
        monitor_model(
            model,
            quote(products),
            quote(scores),
            quote(baseline),
            thresholds,
            latency,
            faults.holdout_label_noise,
        )
    )
    checks_wall += time.perf_counter() - mark

    mark = time.perf_counter()
    save_snapshot(settings.state_dir, products, scores)
    stages["snapshot"] = time.perf_counter() - mark

    summary = {
        "sites": {o.site: {"ok": o.ok, "products": o.products, "error": o.error} for o in outcomes},
        "scraping_windows": _busy(scraped),
        "products": len(products),
        "matches": len(matches),
        "reviews": len(texts),
        "signals": checks.signals,
        "stage_seconds": {k: round(v, 4) for k, v in stages.items()},
        "checks_seconds": round(checks.seconds, 4),
        "checks_wall_seconds": round(checks_wall, 4),
        "total_seconds": round(time.perf_counter() - started, 4),
    }
    logger.info("pipeline summary: %s", {k: v for k, v in summary.items() if k != "sites"})
    return summary
