"""Anomalies in per-period series that respect sample size, noise and season.

Each complete period's events, CSAT and comment sentiment are tested against what was expected of them:
- the **expected count** of events is like for like when the data holds the same period in another year: a year
  earlier (else a year later), scaled by the series' level change between them (its neighbours now against the
  same neighbours then), so a Christmas peak that comes every year is expected, in the first year too;
  otherwise the median of the period's neighbours. Only the series' own life counts: before its first events and
  after its last (a touchpoint not started yet), and its first and last periods with events, are left out;
- the **expected share** (CSAT) or **mean** (sentiment) is the neighbours' answers pooled (see `_pooled`);
- **events** get a negative-binomial test whose dispersion is estimated robustly from the series, so growth and
  ordinary noise are not anomalies; **CSAT** a beta-binomial test (the binomial test against the expected
  share, widened by the uncertainty of that share itself); **sentiment** a t test;
- the false discovery rate is controlled (Benjamini–Hochberg) across every test of one call, and a flagged
  period must also be practically large (`Rules`). Partial periods are neither tested nor used as reference.

Pure: series in, anomalies out; no engine, no clock. Each series is laid on a regular grid of periods, so a
period's neighbours and its year-ago period are fixed offsets and every step is an array operation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from scipy import stats as sps

from touchlens.analytics import stats

Array = np.ndarray[Any, Any]
# Per period: the offsets of a period's neighbours on the grid, and of its like a year earlier. Days compare
# with the same weekday (weekends are not anomalies): four weeks either side, and 364 days back.
NEIGHBOURS = {"day": (-28, -21, -14, -7, 7, 14, 21, 28), "week": (-6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6),
              "month": (-3, -2, -1, 1, 2, 3)}  # fmt: skip
YEAR = {"day": 364, "week": 52, "month": 12}
MIN_RESPONSES = 10  # a period's CSAT or sentiment on fewer answers is not tested
MIN_SENTIMENT_CHANGE = 0.2  # a tenth of VADER's −1..1 scale
Q3 = 0.6744897501960817  # Φ⁻¹(3/4): the median |z| of a standard normal


@dataclass(frozen=True)
class Point:
    """One period of one series. `sentiment` is the mean of `sentiment_n` comments' scores, `sentiment_sd`
    their sample standard deviation. `complete`: the events cover the whole period; `feedback_complete`: the
    feedback does (the two can start and end on different days)."""

    period: date
    events: int
    csat_n: int = 0
    satisfied: int = 0
    sentiment: float | None = None
    sentiment_n: int = 0
    sentiment_sd: float | None = None
    complete: bool = True
    feedback_complete: bool = True


@dataclass(frozen=True)
class Rules:
    """How sure and how large a departure must be to be reported (defaults: the `[insights]` settings)."""

    fdr: float = 0.05
    min_csat_points: float = 10.0
    min_volume_change: float = 0.3
    min_sentiment_change: float = MIN_SENTIMENT_CHANGE
    min_responses: int = MIN_RESPONSES


@dataclass(frozen=True)
class Test:
    """One period's value against its expected value; `p_value` raw from the test, adjusted once kept."""

    series: str
    period: date
    metric: str
    value: float
    expected: float
    n: int
    p_value: float
    large: bool


def find(series: Mapping[str, Sequence[Point]], period: str, rules: Rules | None = None) -> dict[str, list[Test]]:
    """Every series' anomalies: tests adjusted together (Benjamini–Hochberg), kept when sure and large."""
    rules = rules or Rules()
    tests = [t for key, points in series.items() if points for t in _series_tests(key, points, period, rules)]
    adjusted = stats.benjamini_hochberg([t.p_value for t in tests])
    found: dict[str, list[Test]] = {key: [] for key in series}
    for t, p in zip(tests, adjusted, strict=True):
        if p <= rules.fdr and t.large:
            found[t.series].append(Test(t.series, t.period, t.metric, t.value, t.expected, t.n, p, t.large))
    return found


@dataclass(frozen=True)
class Grid:
    """A series on a regular grid of periods: `at[i]` is the point at grid index i, or None (a missing period)."""

    at: list[Point | None]
    period: str

    @staticmethod
    def of(points: Sequence[Point], period: str) -> Grid:
        index = {p.period: _index(p.period, period) for p in points}
        first = min(index.values())
        at: list[Point | None] = [None] * (max(index.values()) - first + 1)
        for p in points:
            at[index[p.period] - first] = p
        return Grid(at, period)

    def date_at(self, i: int) -> date:
        point = self.at[i]
        if point is None:  # only periods with a point are tested: reaching here is a bug
            raise IndexError(f"no period at grid index {i}")
        return point.period

    def column(self, value: Any, usable: Any) -> Array:
        """One number per grid period, NaN where the period is missing or not `usable`."""
        return np.array([value(p) if p is not None and usable(p) else np.nan for p in self.at], dtype=float)

    def shifted(self, values: Array, offsets: Sequence[int]) -> Array:
        """values[i + offset] for every period i (rows) and offset (columns); NaN off the grid."""
        n, pad = len(values), max(abs(k) for k in offsets)
        padded = np.concatenate([np.full(pad, np.nan), values, np.full(pad, np.nan)])
        return np.stack([padded[pad + k : pad + n + k] for k in offsets], axis=1)


def _index(d: date, period: str) -> int:
    if period == "month":
        return d.year * 12 + d.month - 1
    return d.toordinal() // 7 if period == "week" else d.toordinal()


def _series_tests(key: str, points: Sequence[Point], period: str, rules: Rules) -> list[Test]:
    grid = Grid.of(points, period)
    return [
        *_volume_tests(key, grid, rules),
        *_rate_tests(key, grid, "csat", rules),
        *_rate_tests(key, grid, "sentiment", rules),
    ]


def _tests(key: str, grid: Grid, metric: str, rows: Array, value: Array, expected: Array, n: Array,
           p: Array, large: Array) -> list[Test]:  # fmt: skip
    """Tests for the grid periods `rows` (the other arrays hold one entry per row); NaN p-values left out."""
    return [
        Test(key, grid.date_at(int(i)), metric, float(value[j]), float(expected[j]), int(n[j]), float(p[j]),
             bool(large[j]))
        for j, i in enumerate(rows) if not math.isnan(p[j])
    ]  # fmt: skip


# -- events: negative binomial around the expected count ----------------------------------------------------


def _volume_expected(grid: Grid, counts: Array) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """Two expectations of each period's count, each with c such that Var(expected) ≈ c·dispersion·expected:
    like for like — the same period a year earlier (else a year later: the season recurs either way) times the
    level ratio of the neighbours now to the same neighbours then — and the median of its neighbours."""
    offsets, year = NEIGHBOURS[grid.period], YEAR[grid.period]
    near = grid.shifted(counts, offsets)
    earlier = _seasonal(grid, counts, near, offsets, -year)
    later = _seasonal(grid, counts, near, offsets, year)
    k = (~np.isnan(near)).sum(axis=1)
    before = (~np.isnan(near[:, [i for i, o in enumerate(offsets) if o < 0]])).sum(axis=1)
    # Neighbours on both sides: at the edge of the data a growing customer base cannot be told from an anomaly.
    both = (before >= 1) & (k - before >= 1)
    like = np.where(both, np.where(~np.isnan(earlier[0]), earlier[0], later[0]), np.nan)
    ratio = np.where(~np.isnan(earlier[0]), earlier[1], later[1])
    with np.errstate(all="ignore"):  # a period with no neighbours has no median: it is not tested
        median = np.nanmedian(np.where(k[:, None] >= 2, near, 0.0), axis=1)
    # Var(ratio·x) = ratio²·φ·x = ratio·φ·expected; a median of k varies about π/2 times as much as a mean.
    return (like, ratio), (np.where(both, median, np.nan), math.pi / (2 * np.maximum(k, 1)))


def _seasonal(grid: Grid, counts: Array, near: Array, offsets: Sequence[int], shift: int) -> tuple[Array, Array]:
    """The count `shift` periods away scaled by the level ratio of the neighbours now to the neighbours then,
    and that ratio; NaN where the other year's period or enough paired neighbours are missing."""
    then = grid.shifted(counts, [k + shift for k in offsets])
    paired = ~np.isnan(near) & ~np.isnan(then)
    now_sum, then_sum = np.where(paired, near, 0).sum(axis=1), np.where(paired, then, 0).sum(axis=1)
    other = grid.shifted(counts, [shift])[:, 0]
    usable = (other > 0) & (paired.sum(axis=1) >= 2) & (then_sum > 0)
    ratio = now_sum / np.where(then_sum > 0, then_sum, 1)
    return np.where(usable, other * ratio, np.nan), np.where(usable, ratio, np.nan)


def _active(counts: Array) -> Array:
    """The counts inside the series' own life, NaN before it starts and after it ends: a touchpoint that has not
    started yet (a win-back e-mail before anyone has lapsed) is no anomaly, and when it starts (or stops) inside
    the data, its first (last) period with events is partial in its own life: neither tested nor a reference."""
    out = counts.copy()
    seen = np.flatnonzero(np.nan_to_num(counts) > 0)
    if seen.size == 0:
        return np.full_like(counts, np.nan)
    start = seen[0] + 1 if seen[0] > 0 else 0  # starting mid-series: its first period is only partly lived
    end = seen[-1] if seen[-1] < counts.size - 1 else counts.size
    out[:start] = np.nan
    out[end:] = np.nan
    return out


def _volume_tests(key: str, grid: Grid, rules: Rules) -> list[Test]:
    """A period is anomalous only when neither its season nor its neighbours explain it: a peak that came last
    year too is expected, and so is a level its neighbours share when last year's period was itself unusual."""
    counts = _active(grid.column(lambda p: p.events, lambda p: p.complete))
    (like, like_spread), (median, median_spread) = _volume_expected(grid, counts)
    rows = np.flatnonzero(~np.isnan(counts) & (~np.isnan(like) | ~np.isnan(median)))
    if not rows.size:
        return []
    x = counts[rows]
    dispersion = _dispersion(x, median[rows], median_spread[rows])
    p_like = _volume_p(x, like[rows], like_spread[rows], dispersion)
    p_median = _volume_p(x, median[rows], median_spread[rows], dispersion)
    seasonal = np.nan_to_num(p_like, nan=-1.0) >= np.nan_to_num(p_median, nan=-1.0)
    expected = np.where(seasonal, like[rows], median[rows])
    p = np.where(seasonal, p_like, p_median)
    mean = np.maximum(expected, 0.5)
    large = np.abs(x - mean) >= rules.min_volume_change * mean
    return _tests(key, grid, "events", rows, x, expected, x, p, large)


def _dispersion(x: Array, expected: Array, spread: Array) -> float:
    """Dispersion from the median Pearson residual, so the anomalies looked for cannot inflate it; never below
    Poisson's 1."""
    ok = ~np.isnan(expected)
    if not ok.any():
        return 1.0
    mean = np.maximum(expected[ok], 0.5)  # a touchpoint with nothing expected can still start
    residual = np.abs(x[ok] - mean) / np.sqrt(mean * (1 + spread[ok]))
    return max(1.0, (float(np.median(residual)) / Q3) ** 2)


def _volume_p(x: Array, expected: Array, spread: Array, dispersion: float) -> Array:
    mean = np.maximum(np.nan_to_num(expected, nan=0.5), 0.5)
    p = _negative_binomial_p(x, mean, dispersion * (1 + np.nan_to_num(spread, nan=0.0)))
    return np.where(np.isnan(expected), np.nan, p)


def _negative_binomial_p(x: Array, mean: Array, ratio: Array) -> Array:
    """Two-sided p-values of counts x under a negative binomial with this mean and variance/mean ratio (> 1)."""
    ratio = np.maximum(ratio, 1 + 1e-9)
    size, success = mean / (ratio - 1), 1 / ratio
    low, high = sps.nbinom.cdf(x, size, success), sps.nbinom.sf(x - 1, size, success)
    return np.asarray(np.minimum(1.0, 2 * np.minimum(low, high)))


# -- CSAT and sentiment: against the expected share or mean ------------------------------------------------


def _rate_columns(grid: Grid, metric: str) -> tuple[Array, Array, Array]:
    """Answers, their sum and their sum of squares per period (so periods pool by adding)."""
    usable: Any = lambda p: p.feedback_complete  # noqa: E731
    if metric == "csat":
        n = grid.column(lambda p: p.csat_n, usable)
        total = grid.column(lambda p: p.satisfied, usable)
        return n, total, total  # a 0/1 answer is its own square
    n = grid.column(lambda p: p.sentiment_n if p.sentiment is not None else 0, usable)
    mean = grid.column(lambda p: p.sentiment or 0.0, usable)
    sd = grid.column(lambda p: p.sentiment_sd or 0.0, usable)
    return n, n * mean, np.maximum(n - 1, 0) * sd**2 + n * mean**2


def _variance(n: Array, total: Array, squares: Array) -> Array:
    """Sample variance of one answer from pooled sums (a 0/1 CSAT answer: about p(1 − p)); 0 below 2."""
    with np.errstate(all="ignore"):
        return np.where(n >= 2, np.maximum(0.0, (squares - total**2 / n) / (n - 1)), 0.0)


def _pooled(grid: Grid, n: Array, total: Array, squares: Array) -> tuple[Array, Array]:
    """(expected share or mean, its variance): the neighbours' answers pooled, the period itself left out.

    Not a year-ago share: one period's answers are too few to be the reference (comparing with them would
    halve the power to see a real drop), and shares do not grow with the business as counts do.
    """
    offsets = NEIGHBOURS[grid.period]
    sums = [np.nansum(grid.shifted(column, offsets), axis=1) for column in (n, total, squares)]
    with np.errstate(all="ignore"):
        expected = np.where(sums[0] > 0, sums[1] / sums[0], np.nan)
        return expected, _variance(*sums) / sums[0]


def _rate_tests(key: str, grid: Grid, metric: str, rules: Rules) -> list[Test]:
    n, total, squares = _rate_columns(grid, metric)
    expected, variance = _pooled(grid, n, total, squares)
    rows = np.flatnonzero((np.nan_to_num(n) >= rules.min_responses) & ~np.isnan(expected))
    if not rows.size:
        return []
    n, total, squares, expected, variance = (a[rows] for a in (n, total, squares, expected, variance))
    value = total / n
    if metric == "csat":
        expected = np.clip(expected, 0.0, 1.0)
        p = _beta_binomial_p(total, n, expected, variance)
        minimum = rules.min_csat_points / 100
    else:
        p = _t_p(value, _variance(n, total, squares), n, expected, variance)
        minimum = rules.min_sentiment_change
    large = np.abs(value - expected) >= minimum
    return _tests(key, grid, metric, rows, value, expected, n, p, large)


def _beta_binomial_p(successes: Array, n: Array, expected: Array, variance: Array) -> Array:
    """Two-sided p of `successes` of `n` when the share is `expected`, known to `variance`: the binomial test,
    with the share's own uncertainty as a Beta of the same mean and variance (Jeffreys' half added)."""
    # A share known to variance v is worth p(1 − p)/v answers (as good as certain when v = 0).
    with np.errstate(all="ignore"):
        size = np.where(variance > 0, expected * (1 - expected) / variance, 1e9)
    a, b = expected * size + 0.5, (1 - expected) * size + 0.5
    low, high = _beta_binomial_tails(successes, n, a, b)
    return np.asarray(np.minimum(1.0, 2 * np.minimum(low, high)))


def _beta_binomial_tails(x: Array, n: Array, a: Array, b: Array) -> tuple[Array, Array]:
    """P(X ≤ x) and P(X ≥ x) for each row, summed from the mass function (scipy's cdf sums it one value at a
    time, a hundred times slower), a block of rows at a time so that memory stays bounded."""
    low, high = np.empty(len(x)), np.empty(len(x))
    k = np.arange(int(n.max()) + 1)
    step = max(1, 1_000_000 // len(k))
    for i in range(0, len(x), step):
        rows = slice(i, i + step)
        mass = sps.betabinom.pmf(k, n[rows, None], a[rows, None], b[rows, None])  # 0 beyond each row's n
        low[rows] = np.where(k <= x[rows, None], mass, 0.0).sum(axis=1)
        high[rows] = np.where(k >= x[rows, None], mass, 0.0).sum(axis=1)
    return low, high


def _t_p(value: Array, spread: Array, n: Array, expected: Array, variance: Array) -> Array:
    """Two-sided p of a period's mean against the expected mean: t on n − 1 degrees of freedom; NaN where every
    comment scored the same and so did the reference (nothing to test)."""
    se = np.sqrt(spread / n + variance)
    with np.errstate(all="ignore"):
        t = np.where(se > 0, np.abs(value - expected) / se, np.nan)
    return np.asarray(2 * sps.t.sf(t, np.maximum(n - 1, 1)))
