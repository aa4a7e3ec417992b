"""Personalisation: the same touchpoint compared across personas, where one persona fares significantly worse.

Per touchpoint and metric, each persona's responses against the other personas' (the same tests as sub-par,
Holm-adjusted over every test).
"""

from __future__ import annotations

import ibis

from touchlens.analytics import stats
from touchlens.insights.items import Insight
from touchlens.insights.subpar import ALPHA, VALUES, compare


def persona_scores(backend: ibis.BaseBackend) -> dict[tuple[str, str, str], list[float]]:
    """(touchpoint, persona, metric) → every response's score, for customers with a persona."""
    f = backend.table("feedback")
    c = backend.table("customers").select(c_id="customer_id", c_persona="persona")
    j = f.join(c, f.customer_id == c.c_id)
    j = j.filter(j.touchpoint.notnull() & j.c_persona.notnull())
    counted = j.group_by(["touchpoint", "c_persona", "metric", "score"]).aggregate(n=j.count())
    out: dict[tuple[str, str, str], list[float]] = {}
    for r in backend.to_pyarrow(counted).to_pylist():
        out.setdefault((r["touchpoint"], r["c_persona"], r["metric"]), []).extend([float(r["score"])] * int(r["n"]))
    return out


def persona_gaps(scores: dict[tuple[str, str, str], list[float]], min_responses: int = 20) -> list[Insight]:
    """Personas significantly worse off than the others at a touchpoint."""
    tests = []
    for (touchpoint, persona, metric), mine in scores.items():
        value = VALUES.get(metric)
        if value is None or len(mine) < min_responses:
            continue
        others = [x for (t, p, mt), v in scores.items() if t == touchpoint and mt == metric and p != persona for x in v]
        if len(others) < min_responses:
            continue
        comparison = compare(metric, [value(x) for x in mine], [value(x) for x in others])
        tests.append((touchpoint, persona, metric, len(mine), comparison))
    adjusted = stats.holm([t[4].p_value if t[4].p_value is not None else 1.0 for t in tests]) if tests else []
    found = []
    for (touchpoint, persona, metric, n, c), p in zip(tests, adjusted, strict=True):
        if p < ALPHA and c.difference is not None and c.difference < 0:
            found.append(
                Insight("persona_gap", f"{touchpoint}: {persona} rate it worse than other personas ({metric.upper()})",
                        touchpoint, reach=0, impact=2.0, confidence=1 - p, section="personalisation",
                        summary=f"Persona {persona} rate {touchpoint} worse than other personas do "
                        f"({metric.upper()}, {n:,} answers).",
                        evidence={"persona": persona, "metric": metric, "responses": n,
                                  "difference": c.difference if metric != "ces" else -c.difference,
                                  "p_value": p, "test": "as sub-par: per response, Holm-adjusted"})
            )  # fmt: skip
    return found
