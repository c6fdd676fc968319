"""The pipeline's self-checks: pure functions from observations + thresholds to findings.

Each returns `Finding`s; `breached` ones are emitted as events by `emit_findings`, the only
side effect here. Thresholds always come from `Slas.thresholds` (automations/slas.yaml), so
the alert rules and the checks cannot disagree about what "bad" means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flows.matching import Match
from flows.scraping import ScrapedProduct
from flows.stats import ks_test, mean_relative_change, psi
from pricecheck_alerts.config.models import (
    DataQualityThresholds,
    DriftThresholds,
    MatchingThresholds,
    ModelThresholds,
    ScrapingThresholds,
)
from pricecheck_alerts.signals import Signal, emit_signal


@dataclass(frozen=True)
class Finding:
    """One check's verdict; `facts` is the flat event payload."""

    signal: str
    check: str
    breached: bool
    facts: dict[str, Any] = field(default_factory=dict)


def _r(value: float | None, digits: int = 4) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), digits)


# --- data volume and quality -------------------------------------------------------------


def check_volume(site: str, count: int, t: ScrapingThresholds) -> Finding:
    low, high = t.min_products_per_site, t.max_products_per_site
    return Finding(
        Signal.data_volume_anomaly,
        f"volume:{site}",
        not low <= count <= high,
        {
            "metric": "products_scraped",
            "site": site,
            "observed": count,
            "threshold": f"{low}-{high}",
            "min_expected": low,
            "max_expected": high,
            "direction": "low" if count < low else "high" if count > high else "ok",
        },
    )


@dataclass(frozen=True)
class QualityScores:
    rows: int
    completeness: float
    validity: float
    consistency: float


def quality_scores(products: Sequence[ScrapedProduct]) -> QualityScores:
    """Completeness (name, price, url present), validity (price parsed and > 0 TND, name
    non-empty) and consistency (share of rows that are not duplicates of an earlier row)."""
    n = len(products)
    if n == 0:
        return QualityScores(0, 0.0, 0.0, 0.0)
    complete = sum(1 for p in products if p.name and p.price_text and p.url)
    valid = sum(1 for p in products if p.name and p.price_tnd is not None and p.price_tnd > 0)
    keys = {(p.site, p.sku or p.url or p.name) for p in products}
    return QualityScores(n, complete / n, valid / n, len(keys) / n)


def check_quality(
    site: str, products: Sequence[ScrapedProduct], t: DataQualityThresholds
) -> Finding:
    s = quality_scores(products)
    measured = [
        ("completeness", s.completeness, t.min_completeness),
        ("validity", s.validity, t.min_validity),
        ("consistency", s.consistency, t.min_consistency),
    ]
    failing = [name for name, value, limit in measured if value < limit]
    # The headline is the dimension furthest below its limit.
    _, worst, limit = min(measured, key=lambda m: m[1] - m[2])
    return Finding(
        Signal.data_quality_low,
        f"quality:{site}",
        bool(failing),
        {
            "metric": ",".join(failing) or "none",
            "site": site,
            "rows": s.rows,
            "observed": _r(worst),
            "threshold": limit,
            "completeness": _r(s.completeness),
            "validity": _r(s.validity),
            "consistency": _r(s.consistency),
            "min_completeness": t.min_completeness,
            "min_validity": t.min_validity,
            "min_consistency": t.min_consistency,
        },
    )


# --- drift ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float | None
    ks_p_value: float | None
    mean_relative_change: float
    level: str  # "none" | "warning" | "critical"


def feature_drift(
    feature: str, baseline: Sequence[float], current: Sequence[float], t: DriftThresholds
) -> FeatureDrift:
    """PSI decides the level; a significant KS test backed by a mean shift above
    `max_mean_relative_change` counts as a warning on its own (a shift PSI's bins hide)."""
    value = psi(baseline, current)
    ks = ks_test(baseline, current, t.ks_min_samples)
    change = mean_relative_change(baseline, current)
    if value >= t.psi_critical:
        level = "critical"
    elif value >= t.psi_warning or (
        ks is not None and ks.p_value < t.ks_p_value and change > t.max_mean_relative_change
    ):
        level = "warning"
    else:
        level = "none"
    return FeatureDrift(
        feature, value, ks.statistic if ks else None, ks.p_value if ks else None, change, level
    )


def check_drift(
    baseline: Mapping[str, Sequence[float]],
    current: Mapping[str, Sequence[float]],
    t: DriftThresholds,
) -> tuple[Finding, list[FeatureDrift]]:
    """One finding for all features (one retrain per run, not one per feature)."""
    results = [
        feature_drift(name, baseline[name], values, t)
        for name, values in current.items()
        if name in baseline and len(values) and len(baseline[name])
    ]
    drifted = [r for r in results if r.level != "none"]
    worst = max(results, key=lambda r: r.psi, default=None)
    facts: dict[str, Any] = {
        "metric": "psi",
        "level": "critical"
        if any(r.level == "critical" for r in drifted)
        else "warning"
        if drifted
        else "none",
        "features_drifted": [r.feature for r in drifted],
        "worst_feature": worst.feature if worst else None,
        "observed": _r(worst.psi) if worst else None,
        "threshold": t.psi_warning,
        "psi_warning": t.psi_warning,
        "psi_critical": t.psi_critical,
        "ks_p_value_threshold": t.ks_p_value,
        "max_mean_relative_change": t.max_mean_relative_change,
    }
    for r in results:
        facts[f"psi_{r.feature}"] = _r(r.psi)
        facts[f"ks_p_{r.feature}"] = _r(r.ks_p_value, 6)
        facts[f"mean_change_{r.feature}"] = _r(r.mean_relative_change)
    return Finding(Signal.model_drift, "drift", bool(drifted), facts), results


# --- model ---------------------------------------------------------------------------------


def check_accuracy(accuracy: float, t: ModelThresholds) -> Finding:
    limit = t.min_accuracy - t.max_accuracy_drop
    return Finding(
        Signal.model_degraded,
        "model:holdout-accuracy",
        accuracy < limit,
        {
            "metric": "holdout_accuracy",
            "observed": _r(accuracy),
            "baseline": t.min_accuracy,
            "max_drop": t.max_accuracy_drop,
            "threshold": _r(limit),
        },
    )


def check_predictions(scores: Sequence[float] | np.ndarray, t: ModelThresholds) -> Finding:
    values = np.asarray(scores, dtype=float)
    mean = float(values.mean()) if values.size else float("nan")
    share_high = float((values > 0.95).mean()) if values.size else 0.0
    reasons = []
    if values.size and not t.min_mean_fake_score <= mean <= t.max_mean_fake_score:
        reasons.append("mean_fake_score")
    if share_high > t.max_share_scores_above_095:
        reasons.append("share_above_095")
    return Finding(
        Signal.prediction_anomaly,
        "model:predictions",
        bool(reasons),
        {
            "metric": ",".join(reasons) or "none",
            "reviews": int(values.size),
            "observed": _r(share_high if reasons[:1] == ["share_above_095"] else mean),
            "threshold": t.max_share_scores_above_095
            if reasons[:1] == ["share_above_095"]
            else f"{t.min_mean_fake_score}-{t.max_mean_fake_score}",
            "mean_fake_score": _r(mean),
            "share_above_095": _r(share_high),
            "min_mean": t.min_mean_fake_score,
            "max_mean": t.max_mean_fake_score,
            "max_share_above_095": t.max_share_scores_above_095,
        },
    )


def check_latency(task: str, seconds: float, items: int, t: ModelThresholds) -> Finding:
    return Finding(
        Signal.slow_task,
        f"latency:{task}",
        seconds > t.max_prediction_latency_s,
        {
            "metric": "prediction_latency_s",
            "task": task,
            "observed": _r(seconds, 3),
            "threshold": t.max_prediction_latency_s,
            "items": items,
        },
    )


# --- matching and scraping -----------------------------------------------------------------


def check_matching(matches: Sequence[Match], t: MatchingThresholds) -> Finding:
    mean = float(np.mean([m.confidence for m in matches])) if matches else 0.0
    reasons = []
    if len(matches) < t.min_matches:
        reasons.append("too_few_matches")
    if matches and mean < t.min_mean_confidence:
        reasons.append("mean_confidence")
    return Finding(
        Signal.matching_quality_low,
        "matching",
        bool(reasons),
        {
            "metric": ",".join(reasons) or "none",
            "matches": len(matches),
            "observed": len(matches) if reasons[:1] == ["too_few_matches"] else _r(mean),
            "threshold": t.min_matches
            if reasons[:1] == ["too_few_matches"]
            else t.min_mean_confidence,
            "mean_confidence": _r(mean),
            "min_matches": t.min_matches,
            "min_mean_confidence": t.min_mean_confidence,
        },
    )


@dataclass(frozen=True)
class SiteOutcome:
    """How scraping one site went (error is the final exception message, if it failed)."""

    site: str
    ok: bool
    products: int = 0
    duration_s: float = 0.0
    error: str | None = None


def check_scraping(outcomes: Sequence[SiteOutcome], t: ScrapingThresholds) -> list[Finding]:
    """Success rate over sites, and per-site duration against `max_site_duration_s`."""
    findings = []
    total = len(outcomes)
    ok = [o for o in outcomes if o.ok]
    rate = len(ok) / total if total else 1.0
    items = sum(o.products for o in ok)
    seconds = sum(o.duration_s for o in ok)
    findings.append(
        Finding(
            Signal.scraping_success_low,
            "scraping",
            rate < t.min_success_rate,
            {
                "metric": "site_success_rate",
                "observed": _r(rate),
                "threshold": t.min_success_rate,
                "sites_total": total,
                "sites_failed": [o.site for o in outcomes if not o.ok],
                "products": items,
                "seconds_per_item": _r(seconds / items if items else None, 5),
            },
        )
    )
    for o in outcomes:
        findings.append(
            Finding(
                Signal.slow_task,
                f"scrape:{o.site}",
                o.duration_s > t.max_site_duration_s,
                {
                    "metric": "site_scrape_duration_s",
                    "task": f"scrape:{o.site}",
                    "site": o.site,
                    "observed": _r(o.duration_s, 3),
                    "threshold": t.max_site_duration_s,
                    "items": o.products,
                    "seconds_per_item": _r(o.duration_s / o.products if o.products else None, 5),
                },
            )
        )
    return findings


def emit_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Emit an event for each breached finding; return the ones emitted."""
    emitted = []
    for finding in findings:
        if finding.breached:
            emit_signal(finding.signal, finding.check, finding.facts)
            emitted.append(finding)
    return emitted
