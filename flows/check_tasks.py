"""Prefect tasks that run the checks and emit their events, shared by several flows.

The pipeline runs them inline after each stage; `data_validation` and `model_monitoring`
run the same tasks on the latest snapshot. Each returns the findings it emitted and the
seconds it spent, which the benchmark uses to measure the checks' overhead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.baseline import Baseline, features
from flows.checks import (
    Finding,
    SiteOutcome,
    check_accuracy,
    check_drift,
    check_latency,
    check_matching,
    check_predictions,
    check_quality,
    check_scraping,
    check_volume,
    emit_findings,
)
from flows.matching import Match
from flows.review_model import FakeReviewModel
from flows.scraping import ScrapedProduct
from pricecheck_alerts.config.models import Thresholds


@dataclass
class CheckReport:
    """What a group of checks found and emitted, and how long it took."""

    findings: list[Finding] = field(default_factory=list)
    emitted: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, findings: Sequence[Finding], started: float) -> CheckReport:
        self.findings.extend(findings)
        self.emitted.extend(emit_findings(findings))
        self.seconds += time.perf_counter() - started
        return self

    def merge(self, other: CheckReport) -> CheckReport:
        self.findings += other.findings
        self.emitted += other.emitted
        self.seconds += other.seconds
        return self

    @property
    def signals(self) -> list[str]:
        return [str(f.signal) for f in self.emitted]


@task(name="check-scraping", cache_policy=NO_CACHE)
def check_scraping_task(outcomes: list[SiteOutcome], t: Thresholds) -> CheckReport:
    started = time.perf_counter()
    return CheckReport().add(check_scraping(outcomes, t.scraping), started)


@task(name="validate-data", cache_policy=NO_CACHE)
def validate_data(by_site: Mapping[str, list[ScrapedProduct]], t: Thresholds) -> CheckReport:
    """Volume and quality per scraped site."""
    started = time.perf_counter()
    findings = []
    for site, products in by_site.items():
        findings.append(check_volume(site, len(products), t.scraping))
        findings.append(check_quality(site, products, t.data_quality))
    return CheckReport().add(findings, started)


@task(name="check-matching", cache_policy=NO_CACHE)
def check_matching_task(matches: list[Match], t: Thresholds) -> CheckReport:
    started = time.perf_counter()
    return CheckReport().add([check_matching(matches, t.matching)], started)


@task(name="monitor-model", cache_policy=NO_CACHE)
def monitor_model(
    model: FakeReviewModel,
    products: list[ScrapedProduct],
    scores: list[float],
    baseline: Baseline,
    t: Thresholds,
    prediction_latency_s: float | None = None,
    holdout_label_noise: float = 0.0,
) -> CheckReport:
    """Holdout accuracy, prediction shape, latency, and drift of inputs and fake_score."""
    started = time.perf_counter()
    findings = [
        check_accuracy(model.holdout_accuracy(holdout_label_noise), t.model),
        check_predictions(np.asarray(scores), t.model),
    ]
    if prediction_latency_s is not None:
        findings.append(check_latency("score-reviews", prediction_latency_s, len(scores), t.model))
    drift, _ = check_drift(baseline.features, features(products, scores), t.drift)
    findings.append(drift)
    return CheckReport().add(findings, started)
