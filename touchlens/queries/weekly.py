"""The week at each touchpoint: events and customers by day of the week (UTC), to staff the human touchpoints
and time the proactive ones. The worked example of adding an analysis (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from touchlens.queries.base import Query, option

if TYPE_CHECKING:
    from touchlens.engines import Engine

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class WeekdaysQuery(Query):
    name = "weekdays"
    summary = "Events and customers at each touchpoint by day of the week (UTC), with each one's busiest day."
    touchpoints: tuple[str, ...] = option((), "Only these touchpoints (comma-separated keys); default: all.")
    count: str = option("events", "Count events or customers.", choices=("events", "customers"))

    def check(self, m: Any) -> None:
        self.known_touchpoints(*self.touchpoints, field="touchpoints")


@dataclass
class Weekdays:
    count: str
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "days": list(DAYS), "touchpoints": self.rows}


def run_weekdays(engine: Engine, q: WeekdaysQuery) -> Weekdays:
    from touchlens.analytics.engine import arrow, mapped_events  # when it runs, not when the CLI starts

    t = mapped_events(engine.backend)
    if q.touchpoints:
        t = t.filter(t.touchpoint.isin(q.touchpoints))
    t = t.mutate(day=t.ts.day_of_week.index())  # Monday is 0
    n = t.customer_id.nunique() if q.count == "customers" else t.count()
    found = arrow(engine.backend, t.group_by(["touchpoint", "day"]).aggregate(n=n)).to_pylist()
    per: dict[str, dict[str, int]] = {}
    for row in found:
        per.setdefault(row["touchpoint"], dict.fromkeys(DAYS, 0))[DAYS[row["day"]]] = int(row["n"])
    names = {tp.key: tp.name or tp.key for tp in q.the_map.touchpoints}
    return Weekdays(q.count, [_row(key, names.get(key, key), days) for key, days in sorted(per.items())])


def _row(key: str, name: str, days: dict[str, int]) -> dict[str, Any]:
    busiest = max(DAYS, key=lambda d: days[d])  # the first of equal days: the week starts on Monday
    return {"touchpoint": key, "name": name, **days, "total": sum(days.values()), "busiest": busiest}
