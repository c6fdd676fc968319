"""Pure statistics for the checks: PSI, two-sample KS with a sample guard, relative change.

Kept free of Prefect and I/O so they can be tested against values worked out by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

PSI_EPSILON = 1e-4  # stands in for an empty bin so the log term stays finite


def psi(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """Population Stability Index of `actual` against `expected`.

    Bins are the quantiles of `expected` (so each holds ~1/bins of the baseline), widened
    to ±inf at the ends so no actual value falls outside. PSI = Σ (a - e) · ln(a / e).
    """
    exp = np.asarray(expected, dtype=float)
    act = np.asarray(actual, dtype=float)
    exp, act = exp[~np.isnan(exp)], act[~np.isnan(act)]
    if exp.size == 0 or act.size == 0:
        raise ValueError("psi needs at least one value on each side")
    edges = np.unique(np.quantile(exp, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    if edges.size < 2:
        edges = np.array([-np.inf, np.inf])
    e = np.histogram(exp, edges)[0] / exp.size
    a = np.histogram(act, edges)[0] / act.size
    return psi_from_shares(e, a)


def psi_from_shares(
    expected_shares: Sequence[float] | np.ndarray, actual_shares: Sequence[float] | np.ndarray
) -> float:
    """PSI from bin shares (each summing to 1); empty bins count as PSI_EPSILON."""
    e = np.clip(np.asarray(expected_shares, dtype=float), PSI_EPSILON, None)
    a = np.clip(np.asarray(actual_shares, dtype=float), PSI_EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class KsResult:
    statistic: float
    p_value: float


def ks_test(
    baseline: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, min_samples: int
) -> KsResult | None:
    """Two-sample Kolmogorov-Smirnov test, or None when either side has < `min_samples`.

    With a handful of values the test says nothing useful, and a p-value from it would
    page someone over noise.
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    b, c = b[~np.isnan(b)], c[~np.isnan(c)]
    if b.size < min_samples or c.size < min_samples:
        return None
    result = scipy_stats.ks_2samp(b, c)
    return KsResult(float(result.statistic), float(result.pvalue))


def mean_relative_change(
    baseline: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> float:
    """|mean(current) - mean(baseline)| / |mean(baseline)| (inf if the baseline mean is 0)."""
    b = float(np.nanmean(np.asarray(baseline, dtype=float)))
    c = float(np.nanmean(np.asarray(current, dtype=float)))
    if b == 0:
        return 0.0 if c == 0 else math.inf
    return abs(c - b) / abs(b)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None
