"""Funnels in plain Python, two ways: the definition read literally (every choice of events tried, for tiny
journeys) and a quick reading of it (each start walked forward, for the demo's journeys in the parity suite).

A customer reaches step k when steps 1..k occur at strictly increasing times t1 < … < tk with tk − t1 within
the window; in strict order they are consecutive events of the journey; an excluded touchpoint strictly between
t1 and tk spoils the way. A journey is a list of (touchpoint, time) in event-id order; times are minutes or
datetimes, the window the matching int or timedelta.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Event = tuple[str, Any]


def in_order(events: Sequence[Event]) -> list[Event]:
    """By time, then event id (the journey's list order), as the engine numbers them."""
    return [e for _, e in sorted(enumerate(events), key=lambda p: (p[1][1], p[0]))]


@dataclass(frozen=True)
class ReferenceFunnel:
    steps: tuple[str, ...]
    window: Any
    strict: bool = False
    exclude: tuple[str, ...] = ()

    def counts(self, journeys: Mapping[str, Sequence[Event]]) -> list[int]:
        """Customers reaching each step, by the quick reading."""
        depths = [self.depth(events) for events in journeys.values()]
        return [sum(d >= k for d in depths) for k in range(1, len(self.steps) + 1)]

    def depth_by_definition(self, events: Sequence[Event]) -> int:
        """How many steps a customer reaches, by trying every choice of events (the definition, literally)."""
        ordered = in_order(events)
        for k in range(len(self.steps), 0, -1):
            if any(self._allowed(ordered, combo) for combo in itertools.combinations(range(len(ordered)), k)):
                return k
        return 0

    def _allowed(self, ordered: list[Event], combo: tuple[int, ...]) -> bool:
        picked = [ordered[i] for i in combo]
        times = [t for _, t in picked]
        return (
            [tp for tp, _ in picked] == list(self.steps[: len(combo)])
            and all(a < b for a, b in itertools.pairwise(times))
            and times[-1] - times[0] <= self.window
            and not (self.strict and any(b != a + 1 for a, b in itertools.pairwise(combo)))
            and not any(tp in self.exclude and times[0] < t < times[-1] for tp, t in ordered)
        )

    def depth(self, events: Sequence[Event]) -> int:
        """The same number, quickly: from each start, the earliest next step (the latest time a way may end is
        fixed by its start, so the earliest choice never reaches less far than another)."""
        ordered = in_order(events)
        starts = [i for i, (tp, _) in enumerate(ordered) if tp == self.steps[0]]
        return max((self._walk(ordered, i) for i in starts), default=0)

    def _walk(self, ordered: list[Event], start: int) -> int:
        """Steps reached from the start at index `start`, taking the earliest fitting event for each next step."""
        t0 = ordered[start][1]
        spoilers = [t for tp, t in ordered if tp in self.exclude and t > t0]
        latest = min([t0 + self.window, *spoilers])  # an excluded touch at the last step's very time spoils nothing
        reached, last = 1, start
        for step in self.steps[1:]:
            found = self._next(ordered, last, step, latest)
            if found is None:
                break
            reached, last = reached + 1, found
        return reached

    def _next(self, ordered: list[Event], last: int, step: str, latest: Any) -> int | None:
        """The index of the earliest `step` after the event at `last`, later in time and by `latest`."""
        at = ordered[last][1]
        for j in range(last + 1, min(last + 2, len(ordered)) if self.strict else len(ordered)):
            tp, t = ordered[j]
            if t > latest:
                return None
            if tp == step and t > at:
                return j
        return None

    @staticmethod
    def journeys(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Event]]:
        """Each customer's (touchpoint, ts) in event-id order, from event rows (customer_id, event_id, ts,
        touchpoint); rows without a customer or a touchpoint are in no journey, as in the engine."""
        kept = [r for r in rows if r["customer_id"] is not None and r["touchpoint"] is not None]
        out: dict[str, list[Event]] = {}
        for r in sorted(kept, key=lambda r: (r["customer_id"], r["event_id"])):
            out.setdefault(r["customer_id"], []).append((r["touchpoint"], r["ts"]))
        return out
