"""When an alert rule holds: pure judgments on small aggregates, and quiet hours. No clock, no I/O.

A CSAT drop is judged like every other finding here: significant after multiplicity control and large enough to
matter. A touchpoint's recent window (the rule's, e.g. the last day) is compared with the four weeks before it
by a one-sided Fisher exact test on satisfied / not satisfied answers (exact, so a window of twenty answers is
judged as fairly as one of two thousand), Holm-adjusted over the touchpoints the rule watches, and it must fall
by at least the rule's points of CSAT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from scipy.stats import fisher_exact

from touchlens.analytics.stats import holm

BASELINE_DAYS = 28


@dataclass(frozen=True)
class CsatWindows:
    """A touchpoint's CSAT answers in the recent window and in the baseline before it."""

    touchpoint: str
    recent_n: int
    recent_satisfied: int
    base_n: int
    base_satisfied: int

    @property
    def recent(self) -> float:
        return self.recent_satisfied / self.recent_n

    @property
    def base(self) -> float:
        return self.base_satisfied / self.base_n


@dataclass(frozen=True)
class CsatDrop:
    touchpoint: str
    recent: float  # shares, 0..1
    base: float
    recent_n: int
    p_value: float  # Holm-adjusted

    @property
    def points(self) -> float:
        return (self.base - self.recent) * 100


def csat_drops(windows: Sequence[CsatWindows], alpha: float, min_points: float, min_responses: int) -> list[CsatDrop]:
    """The touchpoints whose recent CSAT fell significantly (Holm over those with enough answers on both sides)
    and by at least `min_points` points."""
    tested = [w for w in windows if w.recent_n >= min_responses and w.base_n >= min_responses]
    p_values = [_p_lower(w) for w in tested]
    adjusted = holm(p_values) if p_values else []
    drops = [
        CsatDrop(w.touchpoint, w.recent, w.base, w.recent_n, p)
        for w, p in zip(tested, adjusted, strict=True)
        if p < alpha and (w.base - w.recent) * 100 >= min_points
    ]
    return sorted(drops, key=lambda d: -d.points)


def _p_lower(w: CsatWindows) -> float:
    """One-sided: the recent window's odds of a satisfied answer are lower than the baseline's."""
    table = [[w.recent_satisfied, w.recent_n - w.recent_satisfied], [w.base_satisfied, w.base_n - w.base_satisfied]]
    return float(fisher_exact(table, alternative="less").pvalue)


def parse_quiet(text: str) -> tuple[time, time]:
    """`22:00-07:00` as (start, end); a ValueError says what is wrong."""
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(f"quiet hours are written HH:MM-HH:MM, e.g. 22:00-07:00, not '{text[:40]}'") from None


def is_quiet(now: datetime, quiet: str | None, zone: str) -> bool:
    """Whether `now` falls in the quiet hours (in `zone`); a window may cross midnight."""
    if not quiet:
        return False
    start, end = parse_quiet(quiet)
    local = now.astimezone(ZoneInfo(zone)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end
