"""CX statistics against hand-worked examples, textbook values and independent scipy/numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from touchlens.analytics import drivers_model
from touchlens.analytics.drivers_model import logistic_effects, relative_weights, shapley_r2
from touchlens.analytics.stats import (
    Estimate,
    anomalies,
    ces,
    compare_means,
    compare_shares,
    csat,
    holm,
    nps,
    robust_z,
    wilson,
)

# --- NPS -------------------------------------------------------------------------------------------------------


def test_nps_of_ten_answers_worked_by_hand() -> None:
    # Promoters (9–10): 10, 10, 9, 9, 10 → P = 5/10; detractors (0–6): 6, 0, 3 → D = 3/10; 8 and 7 are passive.
    # NPS = 100·(0.5 − 0.3) = 20. var = (P + D − (P − D)²)/n = (0.8 − 0.04)/10 = 0.076; √0.076 = 0.2756810;
    # ×1.96 = 0.5403347, so 20 ± 54.03347 → [−34.03347, 74.03347].
    result = nps([10, 10, 9, 8, 7, 6, 0, 3, 9, 10])
    assert result == Estimate(
        pytest.approx(20.0), pytest.approx(-34.03347, abs=1e-5), pytest.approx(74.03347, abs=1e-5), 10
    )


def test_nps_interval_is_clipped_to_the_scale() -> None:
    # P = 3/4, D = 1/4 → NPS 50; var = (1 − 0.25)/4 = 0.1875, √ = 0.4330127, ×1.96 = 0.8487049:
    # [50 − 84.87, 50 + 84.87] = [−34.87, 134.87], and the top is clipped to 100.
    result = nps([10, 10, 10, 0])
    assert (result.value, result.high) == (pytest.approx(50.0), 100.0)
    assert result.low == pytest.approx(-34.87049, abs=1e-5)
    # All promoters: var = (1 + 0 − 1)/n = 0, a zero-width interval at 100.
    assert nps([9, 10, 10]) == Estimate(100.0, 100.0, 100.0, 3)


def test_no_answers_give_no_estimate_and_one_answer_no_ces_interval() -> None:
    for metric in (nps, csat, ces):
        assert metric([]) == Estimate(None, None, None, 0)
    assert ces([4]) == Estimate(4.0, None, None, 1)
    assert nps([]).to_dict() == {"value": None, "low": None, "high": None, "n": 0}


def test_non_finite_scores_are_rejected_with_the_index() -> None:
    with pytest.raises(ValueError, match="index 1"):
        nps([10, math.nan])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=60), st.floats(0.5, 4.0))
def test_nps_lies_on_its_scale_inside_its_interval(scores: list[int], z: float) -> None:
    result = nps(scores, z=z)
    assert None not in (result.value, result.low, result.high)
    assert -100 <= result.low <= result.value <= result.high <= 100  # type: ignore[operator]


# --- CSAT and Wilson -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, Wilson score method.
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_newcombes_table(successes: int, n: int, low: float, high: float) -> None:
    assert wilson(successes, n) == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_csat_counts_four_and_five_as_satisfied() -> None:
    # 81 satisfied (4 or 5) of 263, the textbook case above.
    scores = [5] * 50 + [4] * 31 + [3] * 100 + [1] * 82
    result = csat(scores)
    assert (result.value, result.n) == (pytest.approx(81 / 263), 263)
    assert (result.low, result.high) == (pytest.approx(0.2553, abs=5e-5), pytest.approx(0.3662, abs=5e-5))
    assert csat([3, 4], satisfied=3).value == 1.0


def test_wilson_rejects_impossible_counts_and_knows_nothing_without_data() -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson(5, 4)
    assert wilson(0, 0) == (0.0, 1.0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=80))
def test_csat_interval_stays_in_zero_one_around_the_share(scores: list[int]) -> None:
    result = csat(scores)
    assert None not in (result.value, result.low, result.high)
    assert 0 <= result.low <= result.value <= result.high <= 1  # type: ignore[operator]


# --- CES -------------------------------------------------------------------------------------------------------


@pytest.mark.oracle
def test_ces_t_interval_worked_by_hand_and_by_scipy() -> None:
    # [2, 3, 4, 5, 6]: mean 4, s² = (4 + 1 + 0 + 1 + 4)/4 = 2.5, se = √(2.5/5) = 0.7071068;
    # t(0.975, 4) = 2.7764451, half-width 1.9632432 → [2.0367568, 5.9632432].
    assert ces([2, 3, 4, 5, 6]) == Estimate(4.0, pytest.approx(2.0367568), pytest.approx(5.9632432), 5)
    scores = [1, 2, 2, 3, 5, 7, 4, 4, 6, 2, 3]
    low, high = sps.t.interval(0.9, len(scores) - 1, loc=np.mean(scores), scale=sps.sem(scores))
    result = ces(scores, confidence=0.9)
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))


# --- comparisons -----------------------------------------------------------------------------------------------


@pytest.mark.oracle
def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(5.0, 1.0, 30), rng.normal(4.2, 2.5, 17)
    result = compare_means(list(a), list(b))
    reference = sps.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert result.p_value == pytest.approx(reference.pvalue)
    assert (result.low, result.high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert (result.n_a, result.n_b) == (30, 17)


def test_degenerate_mean_comparisons_give_none_not_errors() -> None:
    assert compare_means([], [1.0, 2.0]).difference is None
    one = compare_means([1.0], [2.0, 3.0])  # a difference, but no spread on one side
    assert (one.difference, one.low, one.high, one.p_value) == (-1.5, None, None, None)
    flat = compare_means([2.0, 2.0], [3.0, 3.0])  # zero variance in both: t is 0/0
    assert (flat.difference, flat.low, flat.p_value) == (-1.0, None, None)


def test_two_proportion_test_worked_by_hand() -> None:
    # 45/100 vs 30/100: d = 0.15, pooled p = 75/200 = 0.375, se = √(0.375·0.625·(1/100 + 1/100)) = 0.0684653,
    # z = 0.15/0.0684653 = 2.1908902, two-sided p = 2·(1 − Φ(z)) = 0.0284597.
    result = compare_shares(45, 100, 30, 100)
    assert result.difference == pytest.approx(0.15)
    assert result.p_value == pytest.approx(0.0284597, abs=1e-7)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(0.15 / math.sqrt(0.375 * 0.625 * 0.02)))


def test_share_difference_interval_is_newcombes_hybrid_score() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", example (a):
    # 56/70 − 48/80 = 0.2, method 10 (score, no continuity correction): 0.0524 to 0.3339.
    result = compare_shares(56, 70, 48, 80)
    assert (result.low, result.high) == (pytest.approx(0.0524, abs=5e-5), pytest.approx(0.3339, abs=5e-5))


def test_degenerate_share_comparisons_give_none_not_errors() -> None:
    assert compare_shares(0, 0, 3, 10).to_dict() == {
        "difference": None,
        "low": None,
        "high": None,
        "p_value": None,
        "n_a": 0,
        "n_b": 10,
    }
    unanimous = compare_shares(10, 10, 5, 5)  # pooled share 1: the z statistic is 0/0
    assert (unanimous.difference, unanimous.p_value) == (0.0, None)
    assert unanimous.low <= 0 <= unanimous.high  # type: ignore[operator]


# --- robust z and anomalies ------------------------------------------------------------------------------------


def test_robust_z_flags_the_planted_spike() -> None:
    # Sorted: 9 9 10 10 10 10 11 11 12 40 → median 10; |x − 10| sorted: 0 0 0 0 1 1 1 1 2 30 → MAD 1.
    # The spike scores 30/1.4826 = 20.2347; the largest other is 2/1.4826 = 1.3490.
    series = [10, 11, 9, 10, 12, 10, 11, 9, 10, 40]
    scores = robust_z(series)
    assert scores[9] == pytest.approx(30 / 1.4826)
    assert max(abs(s) for s in scores[:9]) == pytest.approx(2 / 1.4826)
    assert anomalies(series) == [9]


def test_robust_z_falls_back_to_the_mean_deviation_then_to_zero() -> None:
    # Median 5, MAD 0 (six of seven at the median); mean |x − 5| = 3/7, so 8 scores 3/(1.2533·3/7) = 5.5853.
    assert robust_z([5, 5, 5, 5, 5, 5, 8])[-1] == pytest.approx(3 / (1.2533 * 3 / 7))
    assert robust_z([4, 4, 4]) == [0.0, 0.0, 0.0]
    assert robust_z([]) == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-2000, 2000), min_size=1, max_size=40), st.integers(-(10**6), 10**6))
def test_robust_z_does_not_move_when_the_data_shifts(values: list[int], shift: int) -> None:
    # Halves keep every value and median exact in floating point, so the comparison can be tight.
    data = [v / 2 for v in values]
    assert robust_z([v + shift for v in data]) == pytest.approx(robust_z(data), abs=1e-9)


# --- Holm ------------------------------------------------------------------------------------------------------


def test_holm_worked_by_hand() -> None:
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06.
    # Back in input order [0.01, 0.04, 0.03, 0.005] → [0.03, 0.06, 0.06, 0.02].
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


# --- drivers: logistic effects ---------------------------------------------------------------------------------


def _synthetic_outcome(n: int = 800, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n, 3)).astype(float)  # pos, neg, noise: each seen by about half
    log_odds = -0.2 + 1.5 * x[:, 0] - 1.5 * x[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-log_odds))).astype(float)
    return x, y


@pytest.mark.slow
def test_logistic_effects_find_the_planted_drivers() -> None:
    x, y = _synthetic_outcome()
    effects = {e.name: e for e in logistic_effects(x, y, ["pos", "neg", "noise"], samples=100)}  # 100: time
    pos, neg, noise = effects["pos"], effects["neg"], effects["noise"]
    assert pos.low > 0  # type: ignore[operator]
    assert neg.high < 0  # type: ignore[operator]
    assert (pos.odds_ratio > 1, neg.odds_ratio < 1) == (True, True)
    assert noise.low < 0 < noise.high  # type: ignore[operator]
    assert pos.odds_ratio == pytest.approx(math.exp(pos.coefficient))
    # The plain table: the outcome rate with and without the factor, counted directly.
    assert pos.share_with == pytest.approx(y[x[:, 0] > 0].mean())
    assert pos.lift == pytest.approx(y[x[:, 0] > 0].mean() / y[x[:, 0] == 0].mean())


def test_logistic_effects_fit_distinct_rows_as_their_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows fitted once each, weighted by their count, give the coefficients and (with the same draws) the
    intervals of a fit over every row: checked against sklearn on the rows themselves. A resample's draw is how
    many copies of each distinct row it holds (a multinomial: n rows drawn, each distinct row as likely as its
    share); the reference fits those copies of the original rows."""
    from sklearn.linear_model import LogisticRegression

    x, y = _synthetic_outcome(600, seed=3)  # 3 binary factors: at most 16 distinct (x, y) rows
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    monkeypatch.setattr(drivers_model, "CHUNK", 25)
    effects = {e.name: e for e in logistic_effects(x, y, ["pos", "neg", "noise"], samples=30, seed=5)}
    full = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000, tol=1e-10).fit(z, y).coef_[0]
    assert [effects[n].coefficient for n in ("pos", "neg", "noise")] == pytest.approx(full, abs=1e-4)
    collapsed = drivers_model._Collapsed.of(list(x.T), y)
    one_row_of = np.unique(collapsed.group, return_index=True)[1]
    assert (x[one_row_of][collapsed.group] == x).all()
    assert (y[one_row_of][collapsed.group] == y).all()
    # The same draws: resamples in chunks of CHUNK (25 and 5), each from its own seed spawned from the seed.
    first, second = (np.random.default_rng(s) for s in np.random.SeedSequence(5).spawn(2))
    weights = np.vstack([drivers_model.resamples(collapsed, 25, first), drivers_model.resamples(collapsed, 5, second)])
    draws = []
    for w in weights:
        rows = np.repeat(one_row_of, w.astype(int))
        assert rows.size == y.size
        draws.append(LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(z[rows], y[rows]).coef_[0])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    assert [effects[n].low for n in ("pos", "neg", "noise")] == pytest.approx(low, abs=1e-3)
    assert [effects[n].high for n in ("pos", "neg", "noise")] == pytest.approx(high, abs=1e-3)


def test_logistic_effects_do_not_depend_on_the_rows_order() -> None:
    """The same rows in another order give the same coefficients and intervals (the engines return periods in
    any order), and the resamples are a row bootstrap's: n rows each, and over many draws each distinct row is
    held as often as its share of the rows, with the binomial spread of n draws."""
    x, y = _synthetic_outcome(500, seed=8)
    names = ["pos", "neg", "noise"]
    order = np.random.default_rng(1).permutation(y.size)
    first, shuffled = logistic_effects(x, y, names, samples=40), logistic_effects(x[order], y[order], names, samples=40)
    assert [e.name for e in first] == [e.name for e in shuffled]
    assert [v for e in first for v in (e.coefficient, e.low, e.high)] == pytest.approx(
        [v for e in shuffled for v in (e.coefficient, e.low, e.high)], abs=1e-9
    )
    rows = drivers_model._Collapsed.of(list(x.T), y)
    counts = rows.counts()
    draws = drivers_model.resamples(rows, 4000, np.random.default_rng(2))
    assert draws.sum(axis=1).tolist() == [y.size] * 4000
    assert draws.mean(axis=0) == pytest.approx(counts, rel=0.05)
    assert draws.var(axis=0) == pytest.approx(counts * (1 - counts / y.size), rel=0.15)


@pytest.mark.parametrize(
    ("x", "y"),
    [([0.0, 1.0, 2.0], [0.0, 1.0, 0.0]), ([0.0, 0.0, 1.0], [0.0, 0.0, 1.0])],  # rows apart; two rows alike
)
def test_resamples_hold_each_row_as_a_row_bootstrap_does(x: list[float], y: list[float]) -> None:
    """Three rows drawn with replacement three times: a distinct row of c copies is held k times with the
    binomial chance C(3, k)·(c/3)^k·(1 − c/3)^(3−k), worked by hand (8, 12, 6, 1 in 27 for one copy)."""
    rows = drivers_model._Collapsed.of([np.array(x)], np.array(y))
    draws = drivers_model.resamples(rows, 6000, np.random.default_rng(3))
    for j, copies in enumerate(rows.counts().astype(int).tolist()):
        chance = {1: [8 / 27, 12 / 27, 6 / 27, 1 / 27], 2: [1 / 27, 6 / 27, 12 / 27, 8 / 27]}[copies]
        assert np.bincount(draws[:, j].astype(int), minlength=4) / 6000 == pytest.approx(chance, abs=0.025)


def test_logistic_effects_sort_by_strength_and_report_constant_columns() -> None:
    x, y = _synthetic_outcome(n=300)
    x = np.column_stack([x, np.ones(len(y))])
    effects = logistic_effects(x, y, ["pos", "neg", "noise", "always"], samples=20)
    strengths = [abs(e.coefficient) for e in effects]
    assert strengths == sorted(strengths, reverse=True)
    always = next(e for e in effects if e.name == "always")
    assert (always.coefficient, always.odds_ratio, always.low, always.share_without, always.lift) == (
        0.0,
        1.0,
        None,
        None,
        None,
    )


def test_logistic_effects_with_one_outcome_class_are_zero_without_intervals() -> None:
    x, _ = _synthetic_outcome(n=50)
    for e in logistic_effects(x, np.zeros(50), ["pos", "neg", "noise"]):
        assert (e.coefficient, e.low, e.high, e.share_with, e.lift) == (0.0, None, None, 0.0, None)


def test_logistic_effects_reject_mismatched_shapes() -> None:
    x, y = _synthetic_outcome(n=20)
    with pytest.raises(ValueError, match="names"):
        logistic_effects(x, y, ["only", "two"])


# --- drivers: relative weights and Shapley R² ------------------------------------------------------------------


def _ols_r2(x: np.ndarray, y: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(y)), x])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    return float(1 - residual @ residual / ((y - y.mean()) @ (y - y.mean())))


def _three_predictors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3))
    x[:, 1] += 0.6 * x[:, 0]  # correlated predictors: where relative weights and Shapley earn their keep
    y = 2.0 * x[:, 0] + 1.0 * x[:, 1] + 0.3 * x[:, 2] + rng.normal(scale=2.0, size=400)
    return x, y


def test_relative_weights_sum_to_the_ols_r2_and_rank_like_shapley() -> None:
    x, y = _three_predictors()
    weights = relative_weights(x, y, ["a", "b", "c"])
    assert sum(w.weight for w in weights) == pytest.approx(_ols_r2(x, y))
    assert sum(w.share for w in weights) == pytest.approx(1.0)  # type: ignore[misc]
    shapley = shapley_r2(x, y, ["a", "b", "c"])
    assert [w.name for w in weights] == [w.name for w in shapley] == ["a", "b", "c"]


def test_uncorrelated_predictors_each_get_their_squared_correlation() -> None:
    # With orthogonal predictors R² splits exactly into r²ⱼ, under both methods.
    x = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]] * 3, dtype=float)
    y = np.array([3.0, 1.0, 0.5, -2.0] * 3) + np.repeat([0.0, 0.1, -0.1], 4)
    expected = {name: np.corrcoef(x[:, j], y)[0, 1] ** 2 for j, name in enumerate(["a", "b"])}
    for method in (relative_weights, shapley_r2):
        assert {w.name: w.weight for w in method(x, y, ["a", "b"])} == pytest.approx(expected)


def test_constant_predictors_get_no_weight() -> None:
    x, y = _three_predictors()
    x = np.column_stack([x, np.full(len(y), 7.0)])
    for method in (relative_weights, shapley_r2):
        weights = {w.name: w.weight for w in method(x, y, ["a", "b", "c", "flat"])}
        assert weights["flat"] == 0.0
        assert sum(weights.values()) == pytest.approx(_ols_r2(x[:, :3], y))


def test_shapley_refuses_more_than_twelve_predictors_with_a_way_out() -> None:
    with pytest.raises(ValueError, match=r"at most 12.*relative_weights"):
        shapley_r2(np.zeros((5, 13)), np.zeros(5), [str(i) for i in range(13)])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.booleans())
def test_shapley_r2_adds_up_to_the_full_r2(seed: int, k: int, with_constant: bool) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, k)) @ rng.normal(size=(k, k))  # arbitrary correlations
    if with_constant:
        x[:, 0] = 1.0
    y = x @ rng.normal(size=k) + rng.normal(size=40)
    weights = shapley_r2(x, y, [f"x{j}" for j in range(k)])
    assert sum(w.weight for w in weights) == pytest.approx(_ols_r2(x, y), abs=1e-9)
    assert all(w.weight >= -1e-12 for w in weights)


def test_perfectly_collinear_predictors_still_split_the_r2() -> None:
    x, y = _three_predictors()
    x = np.column_stack([x, x[:, 0] + x[:, 1]])  # exactly collinear: R_xx is singular
    for method in (relative_weights, shapley_r2):
        assert sum(w.weight for w in method(x, y, ["a", "b", "c", "a+b"])) == pytest.approx(_ols_r2(x, y))


def _near_separated(n: int = 3000, seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardised binary factors, one of which almost always means no outcome (as a newsletter-only period
    does in the demo), and a count-like control; rows collapsed to distinct ones with their counts."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.random(n) < 0.3, rng.random(n) < 0.5, rng.integers(1, 6, n)]).astype(float)
    log_odds = -0.5 - 6.0 * x[:, 0] + 0.8 * x[:, 1] + 0.2 * x[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-log_odds))).astype(float)
    rows, counts = np.unique(np.column_stack([(x - x.mean(axis=0)) / x.std(axis=0), y]), axis=0, return_counts=True)
    return rows[:, :-1], rows[:, -1], counts.astype(float)


@pytest.mark.oracle
def test_the_newton_fit_is_scikit_learns_optimum_on_near_separated_weighted_rows() -> None:
    """The objective is scikit-learn's (C·Σ weighted log-loss + |β|²/2, intercept free): scikit-learn run to a
    tight tolerance finds the same coefficients (its default tolerance, 1e-4, stopped 0.4 short of them on the
    demo's 1M-event conversion model)."""
    from sklearn.linear_model import LogisticRegression

    z, y, counts = _near_separated()
    ours = drivers_model._newton(drivers_model._with_intercept(z), y, counts, 0.5)
    sk = LogisticRegression(C=0.5, max_iter=100_000, tol=1e-12).fit(z, y, sample_weight=counts)
    assert ours[:-1] == pytest.approx(sk.coef_[0], abs=1e-5)
    assert ours[-1] == pytest.approx(sk.intercept_[0], abs=1e-5)


@pytest.mark.parametrize("hessian_scale", [1.0, 0.05])  # the fit's own Hessian; one so wrong its steps diverge
def test_resamples_refitted_together_reach_each_resamples_own_optimum(hessian_scale: float) -> None:
    z, y, counts = _near_separated()
    x1 = drivers_model._with_intercept(z)
    fitted = drivers_model._newton(x1, y, counts, 0.5)
    hessian = drivers_model._hessian(x1, counts, fitted, 0.5) * hessian_scale
    rng = np.random.default_rng(2)
    weights = np.array([rng.poisson(counts).astype(float) for _ in range(6)])
    together = drivers_model._refit(x1, y, weights, fitted, hessian, 0.5)
    for w, beta in zip(weights, together, strict=True):
        assert np.isfinite(beta).all()
        assert beta == pytest.approx(drivers_model._newton(x1, y, w, 0.5), abs=1e-7)


def test_the_bootstrap_on_threads_draws_and_orders_as_one_thread_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of resamples refitted side by side come back in their drawing order: the intervals of a seed are
    the same whatever the number of threads (and a resample skipped for one class skips in both)."""
    z, y, counts = _near_separated(n=600)
    copies = np.repeat(z, counts.astype(int), axis=0)
    rows = drivers_model._Collapsed.of(list(copies.T), np.repeat(y, counts.astype(int)))
    x1 = drivers_model._with_intercept(rows.z)
    fitted = drivers_model._newton(x1, rows.y, rows.counts(), 0.5)
    runs = {}
    for workers in (1, 3):
        monkeypatch.setattr(drivers_model, "WORKERS", workers)
        monkeypatch.setattr(drivers_model, "CHUNK", 4)  # 30 resamples: 8 chunks, the last one short
        runs[workers] = drivers_model._bootstrap(rows, x1, lambda: fitted, 30, 5, 0.5)[1]
    assert runs[1].shape == (30, z.shape[1])
    assert np.array_equal(runs[1], runs[3])
    assert np.unique(runs[1][:, 0]).size == 30  # 30 different resamples, not one repeated
