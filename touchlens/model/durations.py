"""Durations as people write them: ``30m``, ``48h``, ``7d``, ``2w``, ``90s`` (a bare number is seconds)."""

from __future__ import annotations

import re
from datetime import timedelta

from touchlens.errors import BadOption

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> timedelta:
    """``"48h"`` → 2 days; raises ValueError naming the accepted units."""
    match = _PATTERN.match(text.lower())
    if not match:
        raise ValueError(f"'{text}' is not a duration; write a number and a unit: s, m, h, d or w (e.g. 48h)")
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2) or "s"])


def as_duration(value: str | timedelta, option: str) -> timedelta:
    """A duration given to `option` (text or already a timedelta); a `BadOption` names the option."""
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise BadOption(f"{option}: {exc}") from None
