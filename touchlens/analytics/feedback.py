"""Feedback per touchpoint, stage, persona, channel or period: NPS, CSAT and CES with intervals, sentiment.

The engine counts responses per (group, metric, score); the small counts come back and the estimates are
computed from them (`stats`). Comments for themes come back per touchpoint, newest first, up to a limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ibis
import numpy as np

from touchlens.analytics import stats
from touchlens.analytics.stats import Estimate

GROUPINGS = ("touchpoint", "stage", "persona", "channel", "period")
PERIODS = {"day": "D", "week": "W", "month": "M"}
NEGATIVE = -0.05  # VADER's convention for a negative compound score
NONE = "(none)"


@dataclass
class FeedbackRow:
    key: str
    responses: int
    nps: Estimate
    csat: Estimate
    ces: Estimate
    sentiment: float | None
    negative_share: float | None
    comments: int
    themes: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "key": self.key,
            "responses": self.responses,
            "nps": self.nps.to_dict(),
            "csat": self.csat.to_dict(),
            "ces": self.ces.to_dict(),
            "sentiment": self.sentiment,
            "negative_share": self.negative_share,
            "comments": self.comments,
        }
        if self.themes is not None:
            data["themes"] = self.themes
        return data

    def record(self) -> dict[str, Any]:
        """A flat row for CSV: each estimate as value, low, high and n."""
        flat: dict[str, Any] = {"key": self.key, "responses": self.responses}
        for name in ("nps", "csat", "ces"):
            e: Estimate = getattr(self, name)
            flat |= {name: e.value, f"{name}_low": e.low, f"{name}_high": e.high, f"{name}_n": e.n}
        return flat | {"sentiment": self.sentiment, "negative_share": self.negative_share, "comments": self.comments}


@dataclass
class FeedbackReport:
    by: str
    rows: list[FeedbackRow]
    overall: FeedbackRow
    # (key, metric) → every response's score, for tests between groups; not part of the JSON.
    scores: dict[tuple[str, str], list[float]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "overall": self.overall.to_dict(), "groups": [r.to_dict() for r in self.rows]}

    def row(self, key: str) -> FeedbackRow | None:
        return next((r for r in self.rows if r.key == key), None)


@dataclass(frozen=True)
class FeedbackQuery:
    """Scores and sentiment of the feedback, grouped `by` one of GROUPINGS."""

    by: str = "touchpoint"
    period: str = "week"
    start: datetime | None = None
    end: datetime | None = None
    # touchpoint → stage, for `by="stage"` (the map's, passed in so this stays free of the map).
    stage_of: tuple[tuple[str, str], ...] = ()

    def _responses(self, backend: ibis.BaseBackend) -> ibis.Table:
        f = backend.table("feedback")
        if self.start is not None:
            f = f.filter(f.ts >= self.start)
        if self.end is not None:
            f = f.filter(f.ts < self.end)
        return f

    def _keyed(self, backend: ibis.BaseBackend) -> ibis.Table:
        f = self._responses(backend)
        if self.by in ("touchpoint", "stage"):
            return f.mutate(key=f.touchpoint.fill_null(NONE))
        if self.by == "channel":
            return f.mutate(key=f.channel.fill_null(NONE))
        if self.by == "persona":
            c = backend.table("customers").select(c_id="customer_id", c_persona="persona")
            j = f.left_join(c, f.customer_id == c.c_id)
            return j.mutate(key=j.c_persona.fill_null(NONE)).drop("c_id", "c_persona")
        if self.by == "period":
            unit = PERIODS.get(self.period)
            if unit is None:
                raise ValueError(f"unknown period '{self.period}'; choose {', '.join(PERIODS)}")
            return f.mutate(key=f.ts.truncate(unit).date().cast("string"))
        raise ValueError(f"unknown grouping '{self.by}'; choose {', '.join(GROUPINGS)}")

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """Responses per (key, metric, score), with the sum and count of comment sentiment."""
        f = self._keyed(backend)
        has_comment = f.sentiment.notnull()
        return f.group_by(["key", "metric", "score"]).aggregate(
            n=f.count(),
            sentiment_sum=f.sentiment.sum(),
            comments=has_comment.cast("int64").sum(),
            negative=(f.sentiment <= NEGATIVE).fill_null(False).cast("int64").sum(),
        )

    def run(self, backend: ibis.BaseBackend) -> FeedbackReport:
        rows = backend.to_pyarrow(self.to_expr(backend)).to_pylist()
        if self.by == "stage":
            stage = dict(self.stage_of)
            for r in rows:
                r["key"] = stage.get(r["key"], NONE)
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(r["key"], []).append(r)
        result = [summarise(key, part) for key, part in groups.items()]
        order = (lambda r: r.key) if self.by == "period" else (lambda r: (-r.responses, r.key))
        scores: dict[tuple[str, str], list[float]] = {}
        for r in rows:
            scores.setdefault((r["key"], r["metric"]), []).extend([float(r["score"])] * int(r["n"]))
        # Engines return groups in any order; sorted, the bootstrap draws the same samples on every engine.
        ordered = {k: sorted(v) for k, v in scores.items()}
        return FeedbackReport(self.by, sorted(result, key=order), summarise("(all)", rows), ordered)


def summarise(key: str, counts: list[dict[str, Any]]) -> FeedbackRow:
    """Estimates from counted responses: `counts` rows hold metric, score, n and the sentiment tallies."""

    def scores(metric: str) -> np.ndarray[Any, Any]:
        part = [r for r in counts if r["metric"] == metric]
        values: np.ndarray[Any, Any] = np.repeat([float(r["score"]) for r in part], [int(r["n"]) for r in part])
        return values

    comments = sum(int(r["comments"] or 0) for r in counts)
    total = sum(float(r["sentiment_sum"] or 0) for r in counts)
    negative = sum(int(r["negative"] or 0) for r in counts)
    return FeedbackRow(
        key=key,
        responses=sum(int(r["n"]) for r in counts),
        nps=stats.nps(scores("nps").tolist()),
        csat=stats.csat(scores("csat").tolist()),
        ces=stats.ces(scores("ces").tolist()),
        sentiment=total / comments if comments else None,
        negative_share=negative / comments if comments else None,
        comments=comments,
    )


@dataclass(frozen=True)
class CommentsQuery:
    """The newest comments of each touchpoint (up to `limit` each), for themes and verbatims."""

    touchpoints: tuple[str, ...] = ()
    limit: int = 2000
    start: datetime | None = None
    end: datetime | None = None

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        f = backend.table("feedback")
        f = f.filter(f.comment.notnull() & f.touchpoint.notnull())
        if self.touchpoints:
            f = f.filter(f.touchpoint.isin(list(self.touchpoints)))
        if self.start is not None:
            f = f.filter(f.ts >= self.start)
        if self.end is not None:
            f = f.filter(f.ts < self.end)
        w = ibis.window(group_by=f.touchpoint, order_by=[ibis.desc(f.ts), f.response_id])
        ranked = f.mutate(rank=ibis.row_number().over(w))
        kept = ranked.filter(ranked.rank < self.limit).order_by(["touchpoint", "rank"])
        return kept.select("touchpoint", "response_id", "comment", "sentiment", "score", "metric", "ts")

    def run(self, backend: ibis.BaseBackend) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for r in backend.to_pyarrow(self.to_expr(backend)).to_pylist():
            out.setdefault(r["touchpoint"], []).append(r)
        return out


@dataclass(frozen=True)
class CommentSearch:
    """The newest comments that pass every filter given; `text` matches anywhere, case-insensitively, as plain
    text (no wildcards)."""

    touchpoint: str | None = None
    text: str | None = None
    metric: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    limit: int = 50

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        f = backend.table("feedback")
        f = f.filter(f.comment.notnull())
        if self.touchpoint is not None:
            f = f.filter(f.touchpoint == self.touchpoint)
        if self.metric is not None:
            f = f.filter(f.metric == self.metric)
        if self.text:
            f = f.filter(f.comment.lower().contains(ibis.literal(self.text).lower()))
        if self.min_score is not None:
            f = f.filter(f.score >= self.min_score)
        if self.max_score is not None:
            f = f.filter(f.score <= self.max_score)
        newest = f.order_by([ibis.desc(f.ts), f.response_id]).limit(self.limit)
        return newest.select("response_id", "ts", "touchpoint", "channel", "metric", "score", "sentiment", "comment")

    def run(self, backend: ibis.BaseBackend) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = backend.to_pyarrow(self.to_expr(backend)).to_pylist()
        return rows
