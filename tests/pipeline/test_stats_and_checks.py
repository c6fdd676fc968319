"""The statistics and checks against values worked out by hand; no server needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flows.checks import (
    SiteOutcome,
    check_accuracy,
    check_drift,
    check_latency,
    check_matching,
    check_predictions,
    check_quality,
    check_scraping,
    check_volume,
    quality_scores,
)
from flows.matching import Match
from flows.scraping import ScrapedProduct
from flows.stats import ks_test, mean_relative_change, percentile, psi, psi_from_shares
from pricecheck_alerts.config.loader import load_slas

T = load_slas().thresholds


def test_psi_from_shares_known_value() -> None:
    # (0.3-0.5)ln(0.3/0.5) + (0.7-0.5)ln(0.7/0.5) = 0.2*(ln(5/3)+ln(7/5)) = 0.2*ln(7/3)
    assert psi_from_shares([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.2 * math.log(7 / 3))
    assert psi_from_shares([0.25] * 4, [0.25] * 4) == 0.0


def test_psi_on_samples_uses_baseline_quantile_bins() -> None:
    baseline = np.arange(100, dtype=float)  # deciles: 10 values per bin
    assert psi(baseline, baseline) == pytest.approx(0.0)
    # All current values in the top decile: 9 bins at epsilon, one at 1.0.
    value = psi(baseline, np.full(50, 95.0))
    expected = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (1 - 0.1) * math.log(1 / 0.1)
    assert value == pytest.approx(expected)
    assert value > T.drift.psi_critical


def test_psi_catches_a_shift_and_ignores_resampling() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(100, 10, 5000)
    assert psi(base, rng.normal(100, 10, 5000)) < T.drift.psi_warning
    assert psi(base, rng.normal(115, 10, 5000)) > T.drift.psi_critical


def test_ks_has_a_minimum_sample_guard() -> None:
    assert ks_test([1, 2, 3], [4, 5, 6], min_samples=5) is None
    result = ks_test(list(range(50)), list(range(50)), min_samples=50)
    assert result is not None and result.statistic == 0 and result.p_value == 1.0
    shifted = ks_test(list(range(100)), list(range(50, 150)), min_samples=50)
    assert shifted is not None and shifted.statistic == pytest.approx(0.5)
    assert shifted.p_value < 1e-5


def test_mean_relative_change_and_percentile() -> None:
    assert mean_relative_change([10, 10], [11.5, 11.5]) == pytest.approx(0.15)
    assert mean_relative_change([0, 0], [0]) == 0.0
    assert mean_relative_change([0, 0], [1]) == math.inf
    assert percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert percentile([], 95) is None


def test_drift_secondary_signal_needs_ks_and_mean_change() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(100, 1, 2000)
    # Same quantile bins would hide nothing here; PSI alone is already critical.
    finding, [feature] = check_drift({"x": base}, {"x": base * 1.2}, T.drift)
    assert finding.breached and feature.level == "critical"
    finding, [feature] = check_drift({"x": base}, {"x": base}, T.drift)
    assert not finding.breached and feature.level == "none"
    assert finding.facts["features_drifted"] == []


def _product(
    sku: str, price: float | None = 100.0, name: str | None = "HP 15s 8Go", url: str | None = "/p"
) -> ScrapedProduct:
    return ScrapedProduct("mytek", sku, name, None if price is None else "100 DT", price, url)


def test_quality_scores() -> None:
    rows = [_product("a"), _product("b", price=None), _product("c", price=-5.0), _product("a")]
    scores = quality_scores(rows)
    assert (scores.completeness, scores.validity, scores.consistency) == (0.75, 0.5, 0.75)
    finding = check_quality("mytek", rows, T.data_quality)
    assert finding.breached
    assert finding.facts["metric"] == "completeness,validity,consistency"
    assert (finding.facts["observed"], finding.facts["threshold"]) == (0.5, 0.9)  # validity
    assert not check_quality(
        "mytek", [_product(str(i)) for i in range(10)], T.data_quality
    ).breached


@pytest.mark.parametrize(
    ("count", "breached", "direction"),
    [
        (299, True, "low"),
        (300, False, "ok"),
        (500, False, "ok"),
        (501, True, "high"),
        (0, True, "low"),
    ],
)
def test_volume_range_is_inclusive(count: int, breached: bool, direction: str) -> None:
    finding = check_volume("tunisianet", count, T.scraping)
    assert finding.breached is breached
    assert finding.facts["direction"] == direction


def test_accuracy_threshold_is_baseline_minus_drop() -> None:
    assert check_accuracy(0.80, T.model).breached is False
    assert check_accuracy(0.79, T.model).breached is True
    assert check_accuracy(0.79, T.model).facts["threshold"] == pytest.approx(0.80)


def test_prediction_checks() -> None:
    assert not check_predictions([0.2, 0.3, 0.5, 0.4], T.model).breached
    assert check_predictions([0.92] * 10, T.model).facts["metric"] == "mean_fake_score"
    assert check_predictions([0.05] * 10, T.model).breached
    high = [0.1] * 8 + [0.99] * 2  # 20 % above 0.95, mean fine
    facts = check_predictions(high, T.model).facts
    assert (facts["metric"], facts["observed"], facts["threshold"]) == ("share_above_095", 0.2, 0.1)
    assert not check_predictions([0.1] * 9 + [0.99], T.model).breached  # exactly 10 %


def test_matching_latency_and_scraping_checks() -> None:
    assert check_matching([], T.matching).facts["metric"] == "too_few_matches"
    low = [Match("a", "1", "b", "2", 0.6, 1.0, 0.6)] * 3
    facts = check_matching(low, T.matching).facts
    assert (facts["metric"], facts["observed"], facts["threshold"]) == ("mean_confidence", 0.6, 0.7)
    assert not check_matching([Match("a", "1", "b", "2", 0.9, 1.0, 0.9)], T.matching).breached
    assert check_latency("score", 5.01, 10, T.model).breached
    assert not check_latency("score", 5.0, 10, T.model).breached
    outcomes = [SiteOutcome("mytek", True, 400, 700.0), SiteOutcome("jumia", True, 400, 2.0)]
    rate, *per_site = check_scraping(outcomes, T.scraping)
    assert not rate.breached and rate.facts["seconds_per_item"] == pytest.approx(702 / 800)
    assert [f.breached for f in per_site] == [True, False]
    rate, *_ = check_scraping([*outcomes, SiteOutcome("x", False, error="HTTP 403")], T.scraping)
    assert rate.breached and rate.facts["sites_failed"] == ["x"]
