"""Test doubles shared by several suites."""

from __future__ import annotations


class Clock:
    """A monotonic clock the test moves by hand: windows and limits pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
