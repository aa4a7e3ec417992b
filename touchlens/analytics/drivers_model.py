"""Key-driver models on a small customer × factor matrix: the plain comparison, logistic effects, relative weights
and Shapley R².

Rows are customers (or periods), columns are factors (seen a touchpoint, scored it low, waited, ...), y is the
outcome. Every model works on standardised columns, so effects compare across factors measured in different
units. Constant columns carry no information: they get effect 0 and are still reported, never dropped or crashed
on. `Driver` and `Drivers` are the shaped result of `touchlens.analytics.drivers`: each factor's outcome rate with
it and without, the difference in rate points with its interval, and the model's odds ratio with its interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from touchlens.analytics import stats

MAX_SHAPLEY_PREDICTORS = 12  # 2¹² = 4096 subset regressions; each further predictor doubles the work
ALPHA = 0.05
MAX_NEWTON = 100
TOLERANCE = 1e-9  # the fits stop when no coefficient moves by more than this (per sd of its factor)
CHUNK = 25  # resamples refitted together: 25 weight vectors over the distinct rows at once
DEPTH = 5  # steps a resample's refit mixes (`_refit`): 2-8 all converge in 10-12 steps on the 10M demo
# Chunks of resamples drawn and refitted at once, each on a thread: the draws, matrix products and logistic
# functions release the GIL, so two chunks use two cores (each chunk draws from its own seed: the same intervals).
WORKERS = 2
LATER_ONLY = 0.9  # a factor met this often after a first conversion is compared with those periods only
# Each feature kind as a person would say it of a customer; the query's default windows are in the words.
FEATURE_WORDS = {
    "seen": "saw it",
    "repeated": "came back to it within 7 days",
    "waited": "reached it after waiting 3+ days",
    "switched": "switched channel to reach it",
    "low_score": "gave it a low score",
    "negative": "left a negative comment",
}
# What one outcome is, in a sentence; and the periods each outcome is measured over.
OUTCOME_WORDS = {"conversion": "a conversion", "repeat": "a repeat purchase", "churn": "churn"}
SCOPE = {
    "conversion": "periods",
    "repeat": "periods after a first conversion",
    "churn": "periods after a first conversion",
}


@dataclass(frozen=True)
class Effect:
    """One factor's standardised log-odds effect on the outcome, its bootstrap interval, and the plain rates."""

    name: str
    coefficient: float
    odds_ratio: float
    low: float | None  # percentile bootstrap 95% interval of `coefficient`
    high: float | None
    share_with: float | None  # outcome rate among rows with the factor (> 0)
    share_without: float | None
    lift: float | None  # share_with / share_without

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Weight:
    """One predictor's part of R²: `weight` in R² units (they sum to R²), `share` = weight / R²."""

    name: str
    weight: float
    share: float | None  # None when R² is 0: there is nothing to share

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Driver:
    """One factor's effect: the plain comparison (rate with it against without, tested, and their difference in
    rate points with a 95% interval) and, for the factors in the model, its standardised logistic effect with a
    bootstrap interval (odds ratio per standard deviation of the factor)."""

    feature: str
    kind: str
    touchpoint: str | None
    periods_with: int
    periods_without: int
    rate_with: float | None
    rate_without: float | None
    comparison: stats.Comparison  # rate_with − rate_without, Newcombe's interval
    p_value: float | None  # Holm-adjusted over every factor tested
    compared_with: str  # "all periods" or "periods after a first conversion"
    effect: Effect | None = None

    @property
    def lift(self) -> float | None:
        w, wo = self.rate_with, self.rate_without
        return w / wo if w is not None and wo else None

    @property
    def significant(self) -> bool:
        """The plain comparison holds after Holm's correction (p < 0.05), and the model, where the factor is in
        it, does not contradict it (its interval excludes zero on the same side)."""
        d = self.comparison.difference
        if self.p_value is None or self.p_value >= ALPHA or not d:
            return False
        e = self.effect
        if e is None or e.low is None or e.high is None:
            return True
        return e.low > 0 if d > 0 else e.high < 0

    @property
    def direction(self) -> str | None:
        """ "raises" or "lowers" the outcome's rate when significant; None when the data cannot tell."""
        if not self.significant:
            return None
        return "raises" if (self.comparison.difference or 0) > 0 else "lowers"

    def to_dict(self) -> dict[str, Any]:
        e, c = self.effect, self.comparison
        # `low`/`high` bound the coefficient (log-odds); the odds ratio has its own bounds, on its own scale.
        return {
            "feature": self.feature,
            "kind": self.kind,
            "touchpoint": self.touchpoint,
            "direction": self.direction,
            "periods_with": self.periods_with,
            "periods_without": self.periods_without,
            "rate_with": self.rate_with,
            "rate_without": self.rate_without,
            "difference": c.difference,
            "difference_low": c.low,
            "difference_high": c.high,
            "lift": self.lift,
            "p_value": self.p_value,
            "compared_with": self.compared_with,
            "coefficient": e.coefficient if e else None,
            "low": e.low if e else None,
            "high": e.high if e else None,
            "odds_ratio": e.odds_ratio if e else None,
            "odds_ratio_low": _exp(e.low) if e else None,
            "odds_ratio_high": _exp(e.high) if e else None,
            "significant": self.significant,
        }


def _exp(x: float | None) -> float | None:
    return None if x is None else math.exp(x)


@dataclass
class Drivers:
    """Every factor's effect on one outcome, or, when the data cannot answer, `message` saying why in words."""

    outcome: str
    periods: int
    base_rate: float | None
    drivers: list[Driver]
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "periods": self.periods,
            "base_rate": self.base_rate,
            "message": self.message,
            "drivers": [d.to_dict() for d in self.drivers],
        }

    def raising(self) -> list[Driver]:
        """Significant drivers that raise the outcome's rate, strongest lift first."""
        found = [d for d in self.drivers if d.direction == "raises"]
        return sorted(found, key=lambda d: -(d.lift or 0))

    def find(self, kind: str, touchpoint: str) -> Driver | None:
        return next((d for d in self.drivers if d.kind == kind and d.touchpoint == touchpoint), None)


@dataclass
class DriversReport:
    """Drivers of every outcome the map defines, and for each it does not, the map lines to add."""

    outcomes: list[Drivers] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (outcome, message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcomes": [d.to_dict() for d in self.outcomes],
            "missing": [{"outcome": o, "message": m} for o, m in self.missing],
        }


def points(value: float | None) -> str:
    """A rate difference (0.21) as signed percentage points ("+21.0"), with a true minus sign."""
    return "–" if value is None else f"{value * 100:+.1f}".replace("-", "\u2212")


def difference_text(d: dict[str, Any]) -> str:
    """A driver row's difference with its interval: "+21.0 points (+15.2 to +26.8)"."""
    if d["difference"] is None:
        return "–"
    return f"{points(d['difference'])} points ({points(d['difference_low'])} to {points(d['difference_high'])})"


def compare(
    names: Sequence[str], x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], later: np.ndarray[Any, Any]
) -> list[Driver]:
    """Each factor's outcome rate with it against without, like with like: a factor met almost only after a
    first conversion is compared with the other periods after a first conversion. P-values are Holm-adjusted."""
    outcome, later = np.asarray(y) > 0, np.asarray(later, dtype=bool)
    rows = [_compared(name, x[:, j] > 0, outcome, later) for j, name in enumerate(names)]
    raw = [1.0 if r.comparison.p_value is None else r.comparison.p_value for r in rows]
    for row, p in zip(rows, stats.holm(raw) if raw else [], strict=True):
        row.p_value = p
    return rows


def _compared(name: str, has: np.ndarray[Any, Any], y: np.ndarray[Any, Any], later: np.ndarray[Any, Any]) -> Driver:
    """One factor's comparison; `has`, `y` (the outcome) and `later` are boolean. Counts of masks, not the rows
    they pick out: a hundred factors over a million periods."""
    met = int(np.count_nonzero(has))
    only_later = met > 0 and np.count_nonzero(later & has) / met >= LATER_ONLY and not later.all()
    with_, without = (has & later, ~has & later) if only_later else (has, ~has)
    n1, n0 = int(np.count_nonzero(with_)), int(np.count_nonzero(without))
    k1, k0 = int(np.count_nonzero(y & with_)), int(np.count_nonzero(y & without))
    test = stats.compare_shares(k1, n1, k0, n0)
    kind, _, touchpoint = name.partition(":")
    return Driver(
        name,
        kind,
        touchpoint or None,
        n1,
        n0,
        k1 / n1 if n1 else None,
        k0 / n0 if n0 else None,
        test,
        None,
        "periods after a first conversion" if only_later else "all periods",
    )


def _check(
    X: np.ndarray[Any, Any], y: np.ndarray[Any, Any], names: Sequence[str]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """X and y as float arrays, after checking they agree in shape with each other and with `names`."""
    x_arr, y_arr = np.asarray(X, dtype=float), np.asarray(y, dtype=float).reshape(-1)
    if x_arr.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix (rows × factors); got {x_arr.ndim} dimension(s)")
    if x_arr.shape[0] != y_arr.size or x_arr.shape[1] != len(names):
        raise ValueError(
            f"X is {x_arr.shape[0]} × {x_arr.shape[1]}, so y needs {x_arr.shape[0]} values and names "
            f"{x_arr.shape[1]}; got {y_arr.size} and {len(names)}"
        )
    if not (np.isfinite(x_arr).all() and np.isfinite(y_arr).all()):
        raise ValueError("X and y must be finite numbers (drop or impute missing values first)")
    return x_arr, y_arr


def _standardise(
    x: np.ndarray[Any, Any], counts: np.ndarray[Any, Any] | None = None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Columns scaled to mean 0 and (population) sd 1, and a mask of the constant columns, left at 0. With
    `counts`, row i stands for counts[i] rows (distinct rows of a larger matrix): its mean and sd are used."""
    if counts is None:
        sd, mean = (x.std(axis=0), x.mean(axis=0)) if x.shape[0] else (np.zeros(x.shape[1]), np.zeros(x.shape[1]))
    else:
        total = max(float(counts.sum()), 1.0)
        mean = counts @ x / total
        sd = np.sqrt(counts @ (x - mean) ** 2 / total)
    varying = sd > 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0, initial=0.0))  # relative: ignore float noise
    z = np.zeros_like(x)
    if x.shape[0]:
        z[:, varying] = (x[:, varying] - mean[varying]) / sd[varying]
    return z, varying


def _fit(
    z: np.ndarray[Any, Any], y: np.ndarray[Any, Any], c: float, weights: np.ndarray[Any, Any] | None = None
) -> np.ndarray[Any, Any]:
    """The coefficients (intercept left out) of the L2 logistic regression of y on z (see `_newton`)."""
    w = np.ones(y.size) if weights is None else weights
    return _newton(_with_intercept(z), y, w, c)[:-1]


def _with_intercept(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.column_stack([z, np.ones(z.shape[0])])


def _penalty(d: int, c: float) -> np.ndarray[Any, Any]:
    """The L2 penalty's weight per coefficient, 1/C, and none on the intercept (the last)."""
    return np.append(np.full(d - 1, 1.0 / c), 0.0)


def _p(eta: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The logistic function, by tanh: no overflow for any η."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * eta)))


def _hessian(x1: np.ndarray[Any, Any], w: np.ndarray[Any, Any], beta: np.ndarray[Any, Any], c: float) -> Any:
    p = _p(x1 @ beta)
    return (x1 * (w * p * (1 - p))[:, None]).T @ x1 + np.diag(_penalty(x1.shape[1], c))


def _newton(
    x1: np.ndarray[Any, Any], y: np.ndarray[Any, Any], w: np.ndarray[Any, Any], c: float, start: Any = None
) -> np.ndarray[Any, Any]:
    """Minimises Σ wᵢ·(log(1 + e^ηᵢ) − yᵢηᵢ) + |β|²/(2C), η = x1·β, the intercept (x1's last column) unpenalised:
    scikit-learn's `LogisticRegression(C=C)` objective, solved by Newton's method with step halving, to a
    precision its L-BFGS (tolerance 1e-4) does not reach. The problem is strictly convex: one optimum."""
    penalty = _penalty(x1.shape[1], c)

    def objective(beta: np.ndarray[Any, Any]) -> float:
        eta = x1 @ beta
        return float(w @ (np.logaddexp(0.0, eta) - y * eta) + 0.5 * penalty @ beta**2)

    beta = np.zeros(x1.shape[1]) if start is None else np.array(start, dtype=float)
    loss = objective(beta)
    for _ in range(MAX_NEWTON):
        gradient = x1.T @ (w * (_p(x1 @ beta) - y)) + penalty * beta
        step, shrink = np.linalg.solve(_hessian(x1, w, beta, c), gradient), 1.0
        while (new_loss := objective(beta - shrink * step)) > loss and shrink > 1e-6:
            shrink /= 2  # far from the optimum a full step can overshoot
        beta, loss = beta - shrink * step, new_loss
        if np.abs(shrink * step).max() < TOLERANCE:
            break
    return beta


def _rates(
    z: np.ndarray[Any, Any], y: np.ndarray[Any, Any], counts: np.ndarray[Any, Any]
) -> list[tuple[float | None, float | None, float | None]]:
    """Each column's outcome rate with the factor and without, and their ratio, over distinct rows standing for
    `counts` rows each: two products for every column at once."""
    present = (z > 0).astype(float)  # counts and durations too: any repeat, any wait, counts as having the factor
    n_with, k_with = counts @ present, (counts * y) @ present
    n_without, k_without = counts.sum() - n_with, counts @ y - k_with
    out = []
    for n1, k1, n0, k0 in zip(n_with.tolist(), k_with.tolist(), n_without.tolist(), k_without.tolist(), strict=True):
        share_with, share_without = (k1 / n1 if n1 else None), (k0 / n0 if n0 else None)
        lift = share_with / share_without if share_with is not None and share_without else None
        out.append((share_with, share_without, lift))
    return out


def logistic_effects(
    X: np.ndarray[Any, Any] | Sequence[np.ndarray[Any, Any]],
    y: np.ndarray[Any, Any],
    names: Sequence[str],
    samples: int = 200,
    seed: int = 7,
    C: float = 1.0,
) -> list[Effect]:
    """L2-regularised logistic regression of y (0/1) on standardised X: coefficient βⱼ per sd, odds ratio e^βⱼ,
    with a percentile bootstrap 95% interval (rows resampled `samples` times; one-class resamples skipped).

    X is a matrix (rows × factors) or its columns (boolean, integer or float arrays): columns are never stacked
    into one float matrix of every row, so millions of rows need little more memory than the columns themselves.
    When y has one class (or no rows) there is nothing to fit: every effect is 0 with no interval, and the plain
    rates are still given. Sorted by |coefficient|, strongest first.
    """
    columns, outcome = _columns(X, y, names)
    if not np.isin(outcome, (0.0, 1.0)).all():
        raise ValueError("y must be a 0/1 outcome")
    rows = _Collapsed.of(columns, outcome)  # the distinct rows of the factors as given, before any scaling
    counts = rows.counts()
    z, varying = _standardise(rows.z, counts)
    coefficients, low, high = np.zeros(len(names)), np.full(len(names), np.nan), np.full(len(names), np.nan)
    if np.unique(outcome).size == 2 and varying.any():
        scaled = _Collapsed(z[:, varying], rows.y, rows.group)
        x1 = np.asfortranarray(_with_intercept(scaled.z))  # by column: the products below run faster
        # Products of a few dozen columns gain nothing from BLAS threads; beside other work on a small machine
        # their waits for each other made each product ten to thirty times slower.
        with threadpool_limits(limits=1, user_api="blas"):
            fitted, draws = _bootstrap(scaled, x1, lambda: _newton(x1, scaled.y, counts, C), samples, seed, C)
        coefficients[varying] = fitted[:-1]
        if draws.shape[0]:
            low[varying], high[varying] = np.percentile(draws, [2.5, 97.5], axis=0)
    effects = []
    for j, (name, rates) in enumerate(zip(names, _rates(rows.z, rows.y, counts), strict=True)):
        beta = float(coefficients[j])
        lo, hi = (float(low[j]), float(high[j])) if np.isfinite(low[j]) else (None, None)
        effects.append(Effect(name, beta, math.exp(beta), lo, hi, *rates))
    return sorted(effects, key=lambda e: -abs(e.coefficient))


def _columns(
    X: np.ndarray[Any, Any] | Sequence[np.ndarray[Any, Any]], y: np.ndarray[Any, Any], names: Sequence[str]
) -> tuple[list[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    """X's columns (views, not copies) and y as floats, after checking they agree in shape with each other and
    with `names`, and hold finite numbers."""
    y_arr = np.asarray(y, dtype=float).reshape(-1)
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D matrix (rows × factors); got {X.ndim} dimension(s)")
        columns, rows = [X[:, j] for j in range(X.shape[1])], X.shape[0]
    else:
        columns = [np.asarray(c) for c in X]
        if any(c.ndim != 1 for c in columns):
            raise ValueError("X's columns must each be a 1-D array")
        rows = columns[0].size if columns else y_arr.size
    if any(c.size != rows for c in columns) or rows != y_arr.size or len(columns) != len(names):
        raise ValueError(
            f"X is {rows} × {len(columns)}, so y needs {rows} values and names {len(columns)}; got {y_arr.size} "
            f"and {len(names)}"
        )
    if any(c.dtype.kind not in "biuf" for c in columns):
        raise ValueError("X must hold numbers (booleans, integers or floats)")
    if not (all(np.isfinite(c).all() for c in columns if c.dtype.kind == "f") and np.isfinite(y_arr).all()):
        raise ValueError("X and y must be finite numbers (drop or impute missing values first)")
    return columns, y_arr


@dataclass(frozen=True)
class _Collapsed:
    """Rows as their distinct (z, y) values and how many rows each stands for: logistic regression's loss is a
    sum over rows, so a distinct row weighted by its count fits exactly as its copies do. Periods described by
    a few binary features repeat a lot (the 520,000 periods of the 10M demo's conversion drivers hold 123,000
    distinct rows)."""

    z: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    group: np.ndarray[Any, Any]  # each original row's distinct row

    @staticmethod
    def of(columns: Sequence[np.ndarray[Any, Any]], y: np.ndarray[Any, Any]) -> _Collapsed:
        """The distinct rows of `columns` and y (z: those rows as floats), one column at a time: no matrix of
        every row is made."""
        every = [*columns, y]
        # Grouped by a random projection of each row (one float sort, not a sort of whole rows), then checked:
        # rows that only share a projection would be merged wrongly, so then the rows themselves are compared.
        projection = np.zeros(y.size)
        for weight, column in zip(np.random.default_rng(0).standard_normal(len(every)), every, strict=True):
            projection += weight * column
        _, first, group = np.unique(projection, return_index=True, return_inverse=True)
        if not all(np.array_equal(column[first][group], column) for column in every):
            group = np.unique(np.column_stack(every), axis=0, return_inverse=True)[1].reshape(-1)
            first = np.unique(group, return_index=True)[1]
        z = np.column_stack([c[first] for c in columns]).astype(float) if columns else np.zeros((first.size, 0))
        return _Collapsed(z, y[first].astype(float), group.reshape(-1))

    def counts(self) -> np.ndarray[Any, Any]:
        """How many of the original rows each distinct row stands for."""
        return np.bincount(self.group, minlength=self.y.size).astype(float)


def _bootstrap(
    rows: _Collapsed,
    x1: np.ndarray[Any, Any],
    fit: Callable[[], np.ndarray[Any, Any]],
    samples: int,
    seed: int,
    c: float,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The fit on all rows (`fit()`, on this thread) and the coefficients refitted on `samples` row resamples;
    resamples where y has a single class are skipped. The resamples come in chunks of `CHUNK`, each drawn on a
    worker thread (`WORKERS` side by side) while `fit` runs — the draws do not depend on it — then refitted from
    it there (`_refit`); chunk i draws from the i-th seed spawned from `seed`, so a seed gives the same intervals
    whatever the number of threads."""
    sizes = [min(CHUNK, samples - start) for start in range(0, samples, CHUNK)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    x1 = np.asfortranarray(x1)  # each factor's rows together: the refits' products run twice as fast (`_refit`)
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="touchlens-refit") as pool:
        drawn = [pool.submit(_drawn, rows, size, s) for size, s in zip(sizes, seeds, strict=True)]
        fitted = fit()
        hessian = _hessian(x1, rows.counts(), fitted, c)
        fits = [pool.submit(_refit, x1, rows.y, d.result(), fitted, hessian, c) for d in drawn]
        draws = [f.result() for f in fits]
    return fitted, (np.concatenate(draws)[:, :-1] if draws else np.zeros((0, rows.z.shape[1])))


def _drawn(rows: _Collapsed, size: int, seed: np.random.SeedSequence) -> np.ndarray[Any, Any]:
    """`size` resamples' weights (`resamples`), less those of a single class: logistic regression needs both."""
    weights = resamples(rows, size, np.random.default_rng(seed))
    return weights[[rows.y[w > 0].min() != rows.y[w > 0].max() for w in weights]]


def resamples(rows: _Collapsed, size: int, rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """The weights of `size` row bootstrap resamples over the distinct rows: n of the original rows drawn with
    replacement, counted per distinct row. The rows are drawn from their canonical order (sorted by distinct
    row), so the same rows in any order give the same resamples. 32-bit row numbers where they fit: half the
    memory, and drawn twice as fast as 64-bit ones."""
    counts, n = rows.counts(), rows.group.size
    kind = np.int32 if n < 2**31 else np.int64
    canonical = np.repeat(np.arange(counts.size, dtype=kind), counts.astype(np.int64))
    weights = np.zeros((size, counts.size))
    for i in range(size):
        weights[i] = np.bincount(np.take(canonical, rng.integers(0, n, n, dtype=kind)), minlength=counts.size)
    return weights


def _refit(
    x1: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    weights: np.ndarray[Any, Any],
    fitted: np.ndarray[Any, Any],
    hessian: np.ndarray[Any, Any],
    c: float,
) -> np.ndarray[Any, Any]:
    """The fits of several resamples (a row of `weights` each), from the fit on all rows: Newton steps that keep
    that fit's Hessian (a resample barely moves it), one pair of matrix products per step for all of them. Alone
    those steps converge slowly where a rare factor's curvature differs between resamples (31 steps on the 10M
    demo), so each resample's next point mixes its last `DEPTH` steps (Anderson acceleration: 10 steps). A
    resample that has not converged after `MAX_NEWTON` steps, or whose step grows past its first, is finished by
    `_newton` itself. The answers are the optima themselves, not an approximation of them."""
    inverse = np.linalg.inv(hessian)
    penalty = _penalty(x1.shape[1], c)
    beta = np.tile(fitted, (weights.shape[0], 1))
    moving, done = np.ones(weights.shape[0], dtype=bool), np.zeros(weights.shape[0], dtype=bool)
    first = np.full(weights.shape[0], np.inf)
    points: list[np.ndarray[Any, Any]] = []  # the last DEPTH + 1 points and steps of every resample
    steps: list[np.ndarray[Any, Any]] = []
    for _ in range(MAX_NEWTON):
        active = np.flatnonzero(moving)
        if not active.size:
            break
        step = np.zeros_like(beta)
        step[active] = -(_residuals(beta[active] @ x1.T, y, weights[active]) @ x1 + penalty * beta[active]) @ inverse
        size = np.abs(step[active]).max(axis=1)
        if not points:
            first[active] = size
        finished = active[size < TOLERANCE]
        beta[finished] += step[finished]
        done[finished] = True
        # Still moving: not done, and no step larger than its first (NaN, an overflowed step, compares False).
        moving[active] = (size >= TOLERANCE) & (size <= first[active])
        points, steps = [*points[-DEPTH:], beta.copy()], [*steps[-DEPTH:], step]
        for i in np.flatnonzero(moving):
            beta[i] = _mixed([p[i] for p in points], [s[i] for s in steps])
    for i in np.flatnonzero(~done):
        beta[i] = _newton(x1, y, weights[i], c, fitted)
    return beta


def _residuals(eta: np.ndarray[Any, Any], y: np.ndarray[Any, Any], weights: np.ndarray[Any, Any]) -> Any:
    """weights · (p(η) − y), computed in η's own memory (`_p`'s steps, in place: a resample chunk's η is
    millions of numbers, and each new array of them costs more than the arithmetic)."""
    eta *= 0.5
    np.tanh(eta, out=eta)
    eta += 1.0
    eta *= 0.5
    eta -= y
    eta *= weights
    return eta


def _mixed(points: list[np.ndarray[Any, Any]], steps: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """Anderson's next point from one resample's last points and their fixed-Hessian steps: the step, less the
    combination of the earlier changes that best cancels it (least squares)."""
    if len(steps) == 1:
        return np.asarray(points[0] + steps[0])
    d_steps = np.diff(np.array(steps), axis=0).T
    d_points = np.diff(np.array(points), axis=0).T
    gamma = np.linalg.lstsq(d_steps, steps[-1], rcond=None)[0]
    return np.asarray(points[-1] + steps[-1] - (d_points + d_steps) @ gamma)


def _r2(corr: np.ndarray[Any, Any], r: np.ndarray[Any, Any], subset: Sequence[int]) -> float:
    """R² of y on the subset, from correlations: r_S' R_SS⁺ r_S (least squares copes with collinear columns)."""
    if not subset:
        return 0.0
    idx = np.asarray(subset)
    solution = np.linalg.lstsq(corr[np.ix_(idx, idx)], r[idx], rcond=None)[0]
    return float(r[idx] @ solution)


def _correlations(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Predictor correlation matrix and correlations with y, over the varying columns only, and their mask."""
    z, varying = _standardise(x)
    zy, y_varies = _standardise(y.reshape(-1, 1))
    n = max(1, x.shape[0])
    zv = z[:, varying]
    corr = zv.T @ zv / n
    r = zv.T @ zy[:, 0] / n if y_varies[0] else np.zeros(zv.shape[1])
    return corr, r, varying


def _weights(names: Sequence[str], varying: np.ndarray[Any, Any], raw: np.ndarray[Any, Any]) -> list[Weight]:
    full = np.zeros(len(names))
    full[varying] = raw
    total = float(full.sum())
    weights = [
        Weight(name, float(w), float(w) / total if total > 0 else None) for name, w in zip(names, full, strict=True)
    ]
    return sorted(weights, key=lambda w: -w.weight)


def relative_weights(X: np.ndarray[Any, Any], y: np.ndarray[Any, Any], names: Sequence[str]) -> list[Weight]:
    """Johnson's relative weights for the linear regression of y on X: with R_xx = VΛV', Λ½ = VΛ^½V' and
    β = Λ½⁻¹ r_xy, predictor j gets Σₖ (Λ½)ⱼₖ² βₖ²; the weights sum to R². Sorted by weight, largest first.
    """
    x, outcome = _check(X, y, names)
    corr, r, varying = _correlations(x, outcome)
    values, vectors = np.linalg.eigh(corr)
    values = np.clip(values, 0.0, None)  # a correlation matrix is positive semi-definite; clip rounding
    root = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    # Pseudo-inverse: collinear predictors leave zero eigenvalues, and R² is still well defined.
    inverse_sqrt = np.where(values > 1e-12, 1 / np.sqrt(np.where(values > 1e-12, values, 1.0)), 0.0)
    beta = vectors @ np.diag(inverse_sqrt) @ vectors.T @ r
    return _weights(names, varying, (root**2) @ (beta**2))


def shapley_r2(X: np.ndarray[Any, Any], y: np.ndarray[Any, Any], names: Sequence[str]) -> list[Weight]:
    """Exact Shapley decomposition of R² (LMG): φⱼ = Σ_S |S|!(k−|S|−1)!/k! · (R²(S ∪ j) − R²(S)) over every subset
    S without j; the φⱼ sum to the full R². At most 12 predictors. Sorted by weight, largest first.
    """
    if len(names) > MAX_SHAPLEY_PREDICTORS:
        raise ValueError(
            f"shapley_r2 fits all 2^k subsets and takes at most {MAX_SHAPLEY_PREDICTORS} predictors; "
            f"got {len(names)}. Use relative_weights, which approximates it in closed form."
        )
    x, outcome = _check(X, y, names)
    corr, r, varying = _correlations(x, outcome)
    k = int(corr.shape[0])
    r2 = {mask: _r2(corr, r, [j for j in range(k) if mask >> j & 1]) for mask in range(1 << k)}
    phi = np.zeros(k)
    for j in range(k):
        others = [i for i in range(k) if i != j]
        for size in range(k):
            # |S|!(k−|S|−1)!/k! written as 1/(k·C(k−1, |S|)): the share of orderings where S comes just before j.
            factor = 1 / (k * math.comb(k - 1, size))
            for subset in combinations(others, size):
                mask = sum(1 << i for i in subset)
                phi[j] += factor * (r2[mask | 1 << j] - r2[mask])
    return _weights(names, varying, phi)
