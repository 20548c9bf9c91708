"""Protocol v3's statistics over seeds: intervals valid at n ≈ 10, tests of the sign, Holm's
correction across workloads, the smallest detectable effect and the size-trend slope.

* k (per seed, some possibly censored, :mod:`benchmarks.effective`): with no seed censored, the
  geometric mean of k with the Student-t interval on mean log k, and the Wilcoxon signed-rank test
  of log k = 0 (exact p at n ≤ 50); with a seed censored, the median of k with its distribution-free
  order-statistic interval (a censored seed is only ordered, never given a value) and the exact sign
  test. Each result names its method.
* Holm's step-down adjustment of a family of p-values.
* The smallest detectable k: exp((t_{1−α/2} + t_{power}) · sd(log k) / √n) (paired t design).
* The slope of log k against log parameters: least squares over the widths' central log k, with
  its Student-t interval on n − 2 degrees of freedom.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

LEVEL = 0.95
POWER = 0.8


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t interval (needs >= 2 values)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError(f"t_interval needs at least 2 values, got {len(x)}")
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def median_interval(values, level: float = LEVEL) -> tuple[float, float, float, float]:
    """Median and the order-statistic interval [x_(r), x_(n+1−r)] with the largest r whose coverage
    1 − 2·P(Bin(n, ½) ≤ r − 1) is at least ``level`` (±inf allowed: censored seeds); returns
    (median, low, high, coverage). With n too small for ``level``, the range and its coverage."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("median_interval needs at least 1 value")
    r = 1
    while r + 1 <= (n + 1) // 2 and 1 - 2 * stats.binom.cdf(r, n, 0.5) >= level:
        r += 1
    coverage = 1 - 2 * stats.binom.cdf(r - 1, n, 0.5)
    middle = (x[(n - 1) // 2] + x[n // 2]) / 2 if np.isfinite(x[(n - 1) // 2] + x[n // 2]) else x[(n - 1) // 2]
    return float(middle), float(x[r - 1]), float(x[n - r]), float(coverage)


def sign_test(values) -> float:
    """Exact two-sided sign test of median 0 (zeros dropped; ±inf count by their sign)."""
    x = np.asarray(values, dtype=float)
    x = x[x != 0]
    if len(x) == 0:
        return 1.0
    return float(stats.binomtest(int((x > 0).sum()), len(x), 0.5).pvalue)


def wilcoxon(values) -> float:
    """Two-sided Wilcoxon signed-rank test of median 0 (finite values; 1.0 when all are 0)."""
    x = np.asarray(values, dtype=float)
    if not np.any(x != 0):
        return 1.0
    return float(stats.wilcoxon(x, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(pvalues: dict) -> dict:
    """Holm-adjusted p-values: sorted ascending, p_(i) × (m − i + 1), made non-decreasing, capped at 1."""
    names = sorted(pvalues, key=lambda n: pvalues[n])
    m, running, out = len(names), 0.0, {}
    for i, name in enumerate(names):
        running = max(running, min(1.0, (m - i) * pvalues[name]))
        out[name] = running
    return out


def detectable(sd: float, n: int, alpha: float = 0.05, power: float = POWER) -> float | None:
    """The smallest k (or 1/k) a paired t design with ``n`` seeds detects at two-sided ``alpha``
    with ``power``, for a spread ``sd`` of log k; None for n < 2 or an unknown spread."""
    if n < 2 or not math.isfinite(sd):
        return None
    df = n - 1
    return math.exp((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * sd / math.sqrt(n))


def log_ratio_summary(log_values, level: float = LEVEL, alpha_detect: float = 0.05) -> dict:
    """Central value, interval, p-value and detectable effect of per-seed log ratios (±inf: censored),
    exponentiated back to ratios; names the interval and test it used."""
    x = np.asarray(log_values, dtype=float)
    if np.isnan(x).any():
        raise ValueError("log_ratio_summary: a missing (nan) seed must be left out before, not averaged")
    finite = x[np.isfinite(x)]
    censored = int(len(x) - len(finite))
    out = dict(n=len(x), censored=censored, above=int((x == math.inf).sum()), below=int((x == -math.inf).sum()))
    if len(x) >= 2 and censored == 0:
        mean, lo, hi = t_interval(x, level)
        out.update(
            value=math.exp(mean),
            low=math.exp(lo),
            high=math.exp(hi),
            method="geometric mean, Student-t interval on mean log k",
            p=wilcoxon(x),
            test="Wilcoxon signed-rank on log k",
        )
    else:
        mid, lo, hi, coverage = median_interval(x, level)
        out.update(
            value=math.exp(mid),
            low=math.exp(lo),
            high=math.exp(hi),
            method=f"median, order-statistic interval ({coverage:.1%} coverage; censored seeds ordered only)",
            p=sign_test(x),
            test="exact sign test on log k",
        )
    sd = float(np.std(finite, ddof=1)) if len(finite) >= 2 else math.nan
    out["detectable"] = detectable(sd, len(x), alpha_detect)
    return out


def slope(xs, ys, level: float = LEVEL) -> dict:
    """Least-squares slope of ``ys`` on ``xs`` with its Student-t interval (n − 2 df; needs n >= 3)."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(x) < 3:
        raise ValueError(f"slope needs at least 3 points, got {len(x)}")
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + level / 2, len(x) - 2) * fit.stderr
    return dict(slope=float(fit.slope), low=float(fit.slope - half), high=float(fit.slope + half), n=len(x))
