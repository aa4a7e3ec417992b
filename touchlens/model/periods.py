"""The windows of the touch features drivers and insights read per period (`analytics/drivers.py`), declared once:
the journey layer's periods (`store/periods.py`) keep masks cut by these."""

from __future__ import annotations

from datetime import timedelta

REPEAT_WINDOW = timedelta(days=7)  # a touch repeated: the same touchpoint again within this
WAIT = timedelta(days=3)  # a touch reached after a wait: more than this since the period's previous touch
SWITCH_WINDOW = timedelta(hours=24)  # a touch reached by switching channel: another channel within this
BITS = 62  # touchpoints a word of a mask holds: 1 << 61 still fits a signed 64-bit integer


def microseconds(window: timedelta) -> int:
    """A window in whole microseconds, as `analytics.engine.at_most_apart` compares epochs."""
    return int(window / timedelta(microseconds=1))
