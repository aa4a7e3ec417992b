"""Durations as people write them: ``30m``, ``48h``, ``7d``, ``2w``, ``90s`` (a bare number is seconds).

No analysis needs a window of more than ten years, and a longer one (``99999999999d``) overflows `timedelta`:
durations are refused beyond `MAX_DURATION`, with a message naming the bound.
"""

from __future__ import annotations

import re
from datetime import timedelta

from touchlens.errors import BadOption

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=3650)
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> timedelta:
    """``"48h"`` → 2 days; raises ValueError naming the accepted units (or the longest duration allowed)."""
    match = _PATTERN.match(text.lower())
    if not match:
        raise ValueError(f"'{text}' is not a duration; write a number and a unit: s, m, h, d or w (e.g. 48h)")
    # float() of thousands of digits is inf, never an error: the bound is checked before timedelta sees it.
    seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if not seconds <= MAX_DURATION.total_seconds():
        raise ValueError(f"'{text[:40]}' is longer than the longest duration allowed, {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def as_duration(value: str | timedelta, option: str) -> timedelta:
    """A duration given to the field `option` (text or already a timedelta); a `BadOption` names the field."""
    field = option.lstrip("-").replace("-", "_")  # a flag's name (--half-life) is the field's (half_life)
    try:
        found = value if isinstance(value, timedelta) else parse_duration(value)
    except ValueError as exc:
        raise BadOption(str(exc), field=field) from None
    if found > MAX_DURATION:
        raise BadOption(
            f"{found.days} days is longer than the longest duration allowed, {MAX_DURATION.days}d", field=field
        )
    return found
