"""Multi-touch attribution on aggregated paths: first, last, linear, position-based, and exact Markov.

A path is the sequence of keys (touchpoints, channels or stages) before a conversion, or before the journey
ended without one; paths arrive aggregated (`Path`), so everything here is small and pure. The Markov model
solves the absorbing chain exactly (a linear solve, no simulation), with ChannelAttribution's conventions:
states start, the keys (or k-grams of them for order k), conversion and null; paths as they are.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, identity
from scipy.sparse.linalg import spsolve

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


@dataclass(frozen=True)
class Path:
    steps: tuple[str, ...]
    conversions: float
    nulls: float = 0.0
    value: float = 0.0


@dataclass(frozen=True)
class Credit:
    key: str
    conversions: float
    share: float
    value: float
    low: float | None = None  # bootstrap 95% interval of `conversions`, when asked for
    high: float | None = None


@dataclass
class Attribution:
    model: str
    by: str
    total_conversions: float
    results: list[Credit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "by": self.by,
            "total_conversions": self.total_conversions,
            "results": [c.__dict__ for c in self.results],
        }


Weights = Callable[[tuple[str, ...]], list[float]]


def _first(steps: tuple[str, ...]) -> list[float]:
    return [1.0] + [0.0] * (len(steps) - 1)


def _last(steps: tuple[str, ...]) -> list[float]:
    return [0.0] * (len(steps) - 1) + [1.0]


def _linear(steps: tuple[str, ...]) -> list[float]:
    return [1.0 / len(steps)] * len(steps)


def _position(steps: tuple[str, ...]) -> list[float]:
    """40% to the first touch, 40% to the last, 20% shared by the ones between (one touch: all; two: half)."""
    n = len(steps)
    if n <= 2:
        return [1.0 / n] * n
    return [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]


HEURISTICS: dict[str, Weights] = {"first": _first, "last": _last, "linear": _linear, "position": _position}
MODELS = (*HEURISTICS, "markov", "shapley")
EXACT_SHAPLEY_KEYS = 15


def heuristic(paths: Sequence[Path], model: str) -> tuple[dict[str, float], dict[str, float]]:
    """Conversions and value credited to each key by a rule on positions in the path."""
    weigh = HEURISTICS[model]
    credit: dict[str, float] = defaultdict(float)
    value: dict[str, float] = defaultdict(float)
    for p in paths:
        if not p.steps or not p.conversions:
            continue
        for key, w in zip(p.steps, weigh(p.steps), strict=True):
            credit[key] += w * p.conversions
            value[key] += w * p.value
    return dict(credit), dict(value)


def _states(steps: tuple[str, ...], order: int) -> list[tuple[str, ...]]:
    return [steps[max(0, i - order + 1) : i + 1] for i in range(len(steps))]


def transitions(paths: Sequence[Path], order: int = 1) -> dict[tuple[Any, Any], float]:
    """Weighted transition counts of the chain: start → states → conversion / null.

    Order 1 uses the keys themselves as states (no tuples to build: this loop is the model's hot path).
    """
    counts: dict[tuple[Any, Any], float] = defaultdict(float)
    for p in paths:
        total = p.conversions + p.nulls
        if not p.steps or not total:
            continue
        prev: Any = START
        for state in p.steps if order == 1 else _states(p.steps, order):
            counts[(prev, state)] += total
            prev = state
        if p.conversions:
            counts[(prev, CONVERSION)] += p.conversions
        if p.nulls:
            counts[(prev, NULL)] += p.nulls
    return counts


def conversion_probability(counts: dict[tuple[Any, Any], float], removed: str | None = None) -> float:
    """P(reaching conversion from start), with every state that holds `removed` sent to null."""
    transient = sorted({a for a, _ in counts} - {CONVERSION, NULL}, key=str)
    index = {s: i for i, s in enumerate(transient)}
    out: dict[Any, float] = defaultdict(float)
    for (a, _), n in counts.items():
        out[a] += n
    rows, cols, vals = [], [], []
    to_conversion = np.zeros(len(transient))
    for (a, b), n in counts.items():
        if removed is not None and _holds(a, removed):
            continue  # a removed state absorbs into null: no way on from it
        if removed is not None and _holds(b, removed):
            continue  # stepping into a removed state ends the path without conversion
        p = n / out[a]
        if b == CONVERSION:
            to_conversion[index[a]] += p
        elif b != NULL:
            rows.append(index[a])
            cols.append(index[b])
            vals.append(p)
    q = csr_matrix((vals, (rows, cols)), shape=(len(transient), len(transient)))
    solution = spsolve((identity(len(transient), format="csr") - q).tocsc(), to_conversion)
    return float(np.atleast_1d(solution)[index[START]])


def _holds(state: Any, key: str) -> bool:
    return state == key if isinstance(state, str) and state != START else isinstance(state, tuple) and key in state


def markov(paths: Sequence[Path], order: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """Credit by removal effect: how much the conversion probability falls when a key is taken out."""
    counts = transitions(paths, order)
    keys = sorted({k for p in paths for k in p.steps})
    base = conversion_probability(counts)
    effects = {k: (1 - conversion_probability(counts, k) / base) if base else 0.0 for k in keys}
    total_effect = sum(effects.values())
    conversions = sum(p.conversions for p in paths if p.steps)
    value = sum(p.value for p in paths if p.steps)
    if not total_effect:
        return dict.fromkeys(keys, 0.0), dict.fromkeys(keys, 0.0)
    credit = {k: conversions * e / total_effect for k, e in effects.items()}
    return credit, {k: value * e / total_effect for k, e in effects.items()}


def shapley(paths: Sequence[Path], samples: int = 2000, seed: int = 7) -> tuple[dict[str, float], dict[str, float]]:
    """Shapley values of the keys in the game v(S) = conversions of paths whose keys all lie in S.

    Exact over every coalition up to 15 keys (a subset-sum table, O(n·2ⁿ)); above that, averaged over random
    orderings. Value is split in the conversions' shares.
    """
    keys = sorted({k for p in paths for k in p.steps})
    if not keys:
        return {}, {}
    if len(keys) <= EXACT_SHAPLEY_KEYS:
        phi = _exact_shapley(paths, keys)
    else:
        phi = _sampled_shapley(paths, keys, samples, seed)
    total = sum(p.conversions for p in paths if p.steps)
    value = sum(p.value for p in paths if p.steps)
    return phi, {k: value * c / total if total else 0.0 for k, c in phi.items()}


def _coalition_values(paths: Sequence[Path], keys: list[str]) -> np.ndarray[Any, Any]:
    """v(S) for every coalition S (bit i: keys[i]): conversions of paths with their keys inside S."""
    bit = {k: 1 << i for i, k in enumerate(keys)}
    v = np.zeros(1 << len(keys))
    for p in paths:
        if p.steps and p.conversions:
            v[sum({bit[k] for k in p.steps})] += p.conversions
    for i in range(len(keys)):  # sum over subsets, one key at a time
        step = 1 << i
        idx = np.arange(1 << len(keys))
        has = (idx & step) != 0
        v[has] += v[idx[has] ^ step]
    return v


def _exact_shapley(paths: Sequence[Path], keys: list[str]) -> dict[str, float]:
    n = len(keys)
    v = _coalition_values(paths, keys)
    sizes = np.array([bin(s).count("1") for s in range(1 << n)])
    weight = np.array([math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)])
    phi = {}
    for i, key in enumerate(keys):
        without = np.array([s for s in range(1 << n) if not s & (1 << i)])
        phi[key] = float(np.sum(weight[sizes[without]] * (v[without | (1 << i)] - v[without])))
    return phi


def _sampled_shapley(paths: Sequence[Path], keys: list[str], samples: int, seed: int) -> dict[str, float]:
    """Average marginal contributions over random orderings of the keys."""
    rng = np.random.default_rng(seed)
    sets = [(frozenset(p.steps), p.conversions) for p in paths if p.steps and p.conversions]
    phi = dict.fromkeys(keys, 0.0)
    for _ in range(samples):
        joined: set[str] = set()
        before = 0.0
        for key in rng.permutation(keys):
            joined.add(str(key))
            after = sum(c for s, c in sets if s <= joined)
            phi[str(key)] += after - before
            before = after
    return {k: v / samples for k, v in phi.items()}


def attribute(paths: Sequence[Path], model: str, by: str = "touchpoint", order: int = 1) -> Attribution:
    """Credit for conversions (and their value) per key; the credits add up to the paths' conversions."""
    if model not in MODELS:
        raise ValueError(f"unknown model '{model}'; models are: {', '.join(MODELS)}")
    if model == "markov":
        credit, value = markov(paths, order)
    elif model == "shapley":
        credit, value = shapley(paths)
    else:
        credit, value = heuristic(paths, model)
    total = sum(p.conversions for p in paths if p.steps)
    name = f"markov order {order}" if model == "markov" else model
    return from_credit(name, by, total, credit, value)


def from_credit(model: str, by: str, total: float, credit: dict[str, float], value: dict[str, float]) -> Attribution:
    """An attribution result from credit per key, largest first."""
    results = [
        Credit(k, credit[k], credit[k] / total if total else 0.0, value.get(k, 0.0))
        for k in sorted(credit, key=lambda k: (-credit[k], k))
    ]
    return Attribution(model, by, total, results)


def bootstrap(
    paths: Sequence[Path], model: str, order: int = 1, samples: int = 100, seed: int = 7
) -> dict[str, tuple[float, float]]:
    """95% intervals of each key's credit: the paths resampled (converting and not) with replacement."""
    rng = np.random.default_rng(seed)
    live = [p for p in paths if p.steps and (p.conversions or p.nulls)]
    counts = np.array([[p.conversions, p.nulls] for p in live]).ravel()
    draws: dict[str, list[float]] = defaultdict(list)
    keys = sorted({k for p in live for k in p.steps})
    for _ in range(samples):
        new = rng.multinomial(int(counts.sum()), counts / counts.sum()).reshape(-1, 2)
        resampled = [
            Path(p.steps, float(c), float(n), p.value * c / p.conversions if p.conversions else 0.0)
            for p, (c, n) in zip(live, new, strict=True)
        ]
        credit = attribute(resampled, model, order=order).results
        got = {c.key: c.conversions for c in credit}
        for k in keys:
            draws[k].append(got.get(k, 0.0))
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in draws.items()}


def with_intervals(result: Attribution, intervals: dict[str, tuple[float, float]]) -> Attribution:
    """The result with each key's bootstrap interval filled in."""
    results = [
        Credit(c.key, c.conversions, c.share, c.value, *intervals.get(c.key, (None, None))) for c in result.results
    ]
    return Attribution(result.model, result.by, result.total_conversions, results)
