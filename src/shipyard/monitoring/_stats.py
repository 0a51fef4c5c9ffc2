"""The statistics behind :class:`~shipyard.monitoring.drift.DriftDetector`: pure NumPy
functions on sorted arrays and counts, and the multiple-testing corrections."""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy.stats import anderson_ksamp, distributions

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ANDERSON_SAMPLE = 5_000
"""Most values per side the Anderson-Darling test looks at (a fixed-seed sample)."""
PSI_EPSILON = 1e-4
"""Share given to empty bins or categories in the population stability index."""
MIN_EXPECTED = 5.0
"""Chi-square cells expected to hold fewer values than this are pooled into "other"."""

# --------------------------------------------------------------------------- multiple testing


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (NaN entries pass through and are not counted).

    Example:
        >>> benjamini_hochberg([0.01, 0.04, float("nan"), 0.03]).round(3).tolist()
        [0.03, 0.04, nan, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    out = np.full(flat.shape, np.nan)
    present = ~np.isnan(flat)
    q = flat[present]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        scaled = q[order] * m / np.arange(1, m + 1)
        scaled = np.minimum.accumulate(scaled[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(scaled, 1.0)
        out[present] = adjusted
    return out.reshape(p.shape)


def bonferroni(p_values: npt.ArrayLike) -> FloatArray:
    """Bonferroni adjusted p-values: ``min(1, p * m)``, m the non-NaN count (NaN passes).

    Example:
        >>> bonferroni([0.01, 0.2, float("nan")]).tolist()
        [0.02, 0.4, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = int(np.count_nonzero(~np.isnan(p)))
    return np.minimum(p * m, 1.0)


def holm(p_values: npt.ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values: the family-wise error rate, like Bonferroni, but
    more powerful (NaN passes through and is not counted).

    Example:
        >>> holm([0.01, 0.04, float("nan"), 0.03]).round(3).tolist()
        [0.03, 0.06, nan, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    out = np.full(flat.shape, np.nan)
    present = ~np.isnan(flat)
    q = flat[present]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        scaled = np.maximum.accumulate(q[order] * (m - np.arange(m)))
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(scaled, 1.0)
        out[present] = adjusted
    return out.reshape(p.shape)


def adjust(p: FloatArray, correction: str) -> FloatArray:
    """``p`` corrected by ``correction`` (``bh``, ``holm``, ``bonferroni`` or ``none``)."""
    if correction == "bh":
        return benjamini_hochberg(p)
    if correction == "holm":
        return holm(p)
    if correction == "bonferroni":
        return bonferroni(p)
    return p.copy()


# --------------------------------------------------------------------------- statistics


def ks_wasserstein(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    """KS statistic D and Wasserstein-1 distance of two sorted samples, in one merge.

    ``D`` equals ``scipy.stats.ks_2samp``'s bit for bit (the same counts and divisions at
    the largest gap, found in exact integers), ``W1`` ``scipy.stats.wasserstein_distance``'s
    to rounding.
    """
    n, m = a.size, b.size
    total = n + m
    merged = np.concatenate((a, b))
    order = np.argsort(merged, kind="stable")  # two sorted runs: timsort merges them
    merged = merged[order]
    count_a = np.cumsum(order < n)  # values <= merged[k] taken from a (last of ties: exact)
    scaled = count_a * total  # n * m * (F_a - F_b) = count_a * m - count_b * n, exact
    scaled -= np.arange(n, n * (total + 1), n, dtype=np.int64)
    last = np.empty(total, dtype=bool)  # the last of each run of equal values
    np.not_equal(merged[1:], merged[:-1], out=last[:-1])
    last[-1] = True
    jumps = scaled[last]
    peak = max(int(jumps.max()), -int(jumps.min()))
    d = 0.0
    if peak:
        at = np.flatnonzero(last & (np.abs(scaled) == peak))
        ca = count_a[at]
        d = float(np.abs(ca / n - (at + 1 - ca) / m).max())
    w1 = float((np.diff(merged) * np.abs(scaled[:-1])).sum()) / n / m
    return d, w1


def ks_p_value(d: float, n: int, m: int) -> float:
    """Two-sided asymptotic p-value of the two-sample KS statistic ``d`` (sizes n and m).

    The value of ``scipy.stats.ks_2samp(method="asymp")``: the one-sample Kolmogorov
    distribution ``kstwo`` at ``round(n m / (n + m))``. Where scipy sums Smirnov's exact
    series one term at a time (small p-values of large samples, O(n) in C, 80 ms at
    n = 50,000), the same series is summed vectorised in log space (agreement ~1e-10);
    above an effective size of 1,000,000 Hodges' approximation replaces it.
    """
    big, small = max(n, m), min(n, m)
    en = float(np.round(big * small / (big + small)))
    if en < 1 or d <= 0:
        return 1.0
    t = en * d * d
    if en > 140 and 1.0 < en * d < en - 1 and (d >= 0.5 or t >= 2.2):
        if d < 0.5 and t >= 370.0:
            return 0.0
        if en > 1_000_000:
            z = math.sqrt(t)
            p = 2.0 * math.exp(-2.0 * t - 2.0 * z / (3.0 * math.sqrt(en)))
        else:
            p = 2.0 * smirnov_sf(int(en), d)
        return float(min(max(p, 0.0), 1.0))
    return float(min(max(float(distributions.kstwo.sf(d, en)), 0.0), 1.0))


def smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x), the Smirnov-Birnbaum-Tingey series summed in log space."""
    top = math.floor(n * (1.0 - x))
    j = np.arange(0, top + 1, dtype=np.float64)
    log_binom = np.empty(top + 1)
    log_binom[0] = 0.0
    np.cumsum(np.log((n - j[1:] + 1.0) / j[1:]), out=log_binom[1:])
    with np.errstate(divide="ignore"):
        log_terms = (
            log_binom
            + (n - j) * np.log(np.maximum((n - j) - n * x, 0.0) / n)
            + (j - 1.0) * np.log((n * x + j) / n)
        )
    peak = float(log_terms.max())
    return float(x * math.exp(peak) * np.exp(log_terms - peak).sum())


def anderson(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    samples = [
        s if s.size <= ANDERSON_SAMPLE else s[rng.choice(s.size, ANDERSON_SAMPLE, replace=False)]
        for s in (a, b)
    ]
    if np.unique(np.concatenate(samples)).size < 2:
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "p-value capped/floored"
        res = anderson_ksamp(samples, variant="midrank")
    return float(res.statistic), float(res.pvalue)


def psi(expected: FloatArray, actual: FloatArray) -> float:
    e = np.maximum(expected, PSI_EPSILON)
    a = np.maximum(actual, PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(p: FloatArray, q: FloatArray) -> float:
    """Jensen-Shannon distance, base 2 (in [0, 1]), of two probability vectors."""
    mid = (p + q) / 2.0
    div = (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum()) / 2.0
    return float(min(math.sqrt(max(float(div), 0.0) / math.log(2.0)), 1.0))


def chi_square(r: IntArray, c: IntArray) -> tuple[float, float, int]:
    """Chi-square test of the 2 x k table (rows: reference, current); rare cells pooled.

    Returns ``(statistic, p_value, number of categories pooled)``. Without pooling the
    values equal ``scipy.stats.chi2_contingency(table, correction=False)``'s.
    """
    n1, n2 = float(r.sum()), float(c.sum())
    total = n1 + n2
    col = r + c
    small = min(n1, n2) * col / total < MIN_EXPECTED
    pooled = int(small.sum())
    if pooled and pooled < col.size:
        r = np.append(r[~small], r[small].sum())
        c = np.append(c[~small], c[small].sum())
        col = r + c
        if min(n1, n2) * col[-1] / total < MIN_EXPECTED and col.size > 2:
            # "other" itself too rare: merge it into the smallest remaining category
            j = int(np.argmin(col[:-1]))
            r[j] += r[-1]
            c[j] += c[-1]
            r, c, col = r[:-1], c[:-1], col[:-1]
    elif pooled:
        r, c, col = np.array([r.sum()]), np.array([c.sum()]), np.array([col.sum()])
    if col.size < 2:
        return 0.0, 1.0, pooled
    e1 = n1 * col / total
    e2 = n2 * col / total
    stat = float(np.sum((r - e1) ** 2 / e1) + np.sum((c - e2) ** 2 / e2))
    return stat, float(special.chdtrc(col.size - 1, stat)), pooled


def z_test(r: IntArray, c: IntArray) -> tuple[float, float]:
    """Two-proportion z-test on the share of the first (most frequent reference) category."""
    n1, n2 = float(r.sum()), float(c.sum())
    p1, p2 = r[0] / n1, c[0] / n2
    pooled = (r[0] + c[0]) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0:
        return 0.0, 1.0
    z = float((p2 - p1) / se)
    return z, float(2.0 * special.ndtr(-abs(z)))
