"""Pure statistics for customer-experience metrics: NPS, CSAT and CES with intervals, comparisons, anomalies.

Everything takes plain sequences and returns plain floats (never numpy scalars), so results serialise as they
are. Undefined quantities (no responses, one response, zero variance) come back as None rather than raising;
inputs that are wrong (NaN, a count above its total, a p-value above 1) raise ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

Values = Sequence[float] | np.ndarray[Any, Any]  # a list, or an array when there are many
MAD_SCALE = 1.4826  # 1/Φ⁻¹(3/4): makes the MAD estimate σ for normal data
MEAN_AD_SCALE = 1.2533  # √(π/2): makes the mean absolute deviation estimate σ for normal data


@dataclass(frozen=True)
class Estimate:
    """A metric with its interval; None where there are no responses or the interval is undefined."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Group a minus group b: the difference, its interval and a two-sided p-value; None where undefined."""

    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(values: Values, what: str = "values") -> np.ndarray[Any, Any]:
    array = np.asarray(values, dtype=float).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{what} must be finite numbers; got {array[bad[0]]} at index {int(bad[0])}")
    return array


def nps(scores: Sequence[float], z: float = 1.96) -> Estimate:
    """Net Promoter Score on 0–10: 100·(P − D), P the share of 9–10 and D of 0–6, ± z·100·√((P + D − (P − D)²)/n).

    The interval is the normal approximation for a difference of two multinomial shares, clipped to [−100, 100].
    """
    s = _finite(scores, "scores")
    n = int(s.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    promoters, detractors = float(np.mean(s >= 9)), float(np.mean(s <= 6))
    value = promoters - detractors
    variance = max(0.0, (promoters + detractors - value**2) / n)  # ≥ 0 in exact arithmetic; guard rounding
    half = z * math.sqrt(variance)
    return Estimate(100 * value, max(-100.0, 100 * (value - half)), min(100.0, 100 * (value + half)), n)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for successes/n: (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).

    With n == 0 nothing is known, so the whole range (0, 1) comes back.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n; got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    # The interval always contains p̂; rounding at p̂ = 0 or 1 could put it a hair outside, so pin it.
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def csat(scores: Sequence[float], satisfied: float = 4, z: float = 1.96) -> Estimate:
    """CSAT on 1–5: the share of scores ≥ `satisfied`, with its Wilson score interval."""
    s = _finite(scores, "scores")
    n = int(s.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    hits = int(np.count_nonzero(s >= satisfied))
    low, high = wilson(hits, n, z)
    return Estimate(hits / n, low, high, n)


def ces(scores: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Customer Effort Score: the mean, ± t(1−α/2, n−1)·s/√n (Student t interval); no interval when n == 1."""
    s = _finite(scores, "scores")
    n = int(s.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = float(np.mean(s))
    if n == 1:
        return Estimate(mean, None, None, 1)
    quantile: float = float(sps.t.ppf((1 + confidence) / 2, n - 1))
    half = quantile * float(np.std(s, ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def compare_means(a: Values, b: Values, confidence: float = 0.95) -> Comparison:
    """Welch's t-test of mean(a) − mean(b): t = d/√(s²a/na + s²b/nb) on Welch–Satterthwaite df.

    The difference needs one value on each side; the interval and p-value need two, and some variance.
    """
    xa, xb = _finite(a, "a"), _finite(b, "b")
    na, nb = int(xa.size), int(xb.size)
    if na == 0 or nb == 0:
        return Comparison(None, None, None, None, na, nb)
    difference = float(np.mean(xa) - np.mean(xb))
    if na < 2 or nb < 2:
        return Comparison(difference, None, None, None, na, nb)
    va, vb = float(np.var(xa, ddof=1)) / na, float(np.var(xb, ddof=1)) / nb
    if va + vb == 0:  # both groups constant: t and df are 0/0
        return Comparison(difference, None, None, None, na, nb)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = float(sps.t.ppf((1 + confidence) / 2, df)) * se
    p_value: float = float(2 * sps.t.sf(abs(difference) / se, df))
    return Comparison(difference, difference - half, difference + half, min(1.0, p_value), na, nb)


def compare_shares(successes_a: int, n_a: int, successes_b: int, n_b: int, z: float = 1.96) -> Comparison:
    """Difference of proportions pa − pb with Newcombe's hybrid score interval (his method 10, from two Wilson
    intervals) and the pooled two-proportion z-test: z = d/√(p(1−p)(1/na + 1/nb)), p the pooled share.

    Newcombe rather than Wald because it stays inside [−1, 1] and keeps its coverage near 0 or 1 and for small n.
    """
    if n_a == 0 or n_b == 0:
        for successes, n in ((successes_a, n_a), (successes_b, n_b)):
            wilson(successes, n)  # still reject impossible counts
        return Comparison(None, None, None, None, n_a, n_b)
    (la, ua), (lb, ub) = wilson(successes_a, n_a, z), wilson(successes_b, n_b, z)
    pa, pb = successes_a / n_a, successes_b / n_b
    d = pa - pb
    low = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    # Pooled share 0 or 1: every answer agrees, so the test statistic is 0/0.
    p_value = None if se == 0 else float(math.erfc(abs(d) / se / math.sqrt(2)))
    return Comparison(d, max(-1.0, low), min(1.0, high), p_value, n_a, n_b)


def robust_z(values: Sequence[float]) -> list[float]:
    """Modified z-scores (x − median) / (1.4826·MAD); with MAD = 0, (x − median) / (1.2533·mean|x − median|).

    When both spreads are 0 every value equals the median, and every score is 0.
    """
    x = _finite(values)
    if x.size == 0:
        return []
    deviation = x - np.median(x)
    mad = float(np.median(np.abs(deviation)))
    # More than half the values tie at the median (e.g. a mostly flat series): fall back to the mean deviation.
    scale = MAD_SCALE * mad if mad > 0 else MEAN_AD_SCALE * float(np.mean(np.abs(deviation)))
    if scale == 0:
        return [0.0] * int(x.size)
    return [float(v) for v in deviation / scale]


def anomalies(values: Sequence[float], threshold: float = 3.5) -> list[int]:
    """Indices whose robust z-score is beyond ±threshold (3.5 is Iglewicz and Hoaglin's cut-off)."""
    return [i for i, score in enumerate(robust_z(values)) if abs(score) > threshold]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjustment: the i-th smallest of m becomes max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎).

    Returned in the input order; controls the family-wise error rate when many touchpoints are tested at once.
    """
    p = _finite(p_values, "p_values")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got {p[(p < 0) | (p > 1)][0]}")
    m = int(p.size)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)  # monotone: a smaller p never gets a larger adjustment
    return [float(v) for v in adjusted]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values: the i-th smallest of m becomes min over j ≥ i of min(1, m·p₍ⱼ₎/j).

    Returned in the input order. Keeping every adjusted p ≤ q keeps the expected share of false discoveries
    among those kept at q or below (independent or positively dependent tests); when nothing is real, that is
    the chance of keeping anything at all.
    """
    p = _finite(p_values, "p_values")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got {p[(p < 0) | (p > 1)][0]}")
    m = int(p.size)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.empty(m)
    # Monotone: the running minimum from the largest down, so a smaller p never gets a larger adjustment.
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return [float(v) for v in adjusted]
