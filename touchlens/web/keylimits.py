"""Limits per write key on the live endpoint: a request rate and a message rate (token buckets) and invalid
messages per minute.

Write keys ship inside browser and mobile apps, so anyone may hold one: these limits keep one key from taking
the single writer from the others. They live in memory (one server process), are thread-safe (requests are
checked on the event loop, invalid messages counted on the writer's thread) and hold at most `max_keys`
entries, the least recently used dropped first: only write keys that authenticated get one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

WINDOW = 60.0  # seconds: invalid messages are counted per minute
BURST = 2.0  # a bucket holds twice the rate: a burst of twice as many requests passes


@dataclass
class _Usage:
    tokens: float
    counted_at: float
    window_start: float = 0.0
    rejected: int = 0
    messages: float = math.inf  # the message bucket; below zero it is a debt the key repays by waiting
    messages_at: float = 0.0


class KeyLimits:
    """Per key: how many requests it may send now, and how many invalid messages it may still send this minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._keys: OrderedDict[str, _Usage] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, key: str, per_second: float, rejected_per_minute: int) -> int | None:
        """None when the key may send a request now (it takes a token); else the whole seconds to wait."""
        with self._lock:
            now = self._clock()
            usage = self._usage(key, now)
            if usage.rejected >= rejected_per_minute and now - usage.window_start < WINDOW:
                return _seconds(usage.window_start + WINDOW - now)  # no token taken: it is not sending
            usage.tokens = min(per_second * BURST, usage.tokens + (now - usage.counted_at) * per_second)
            usage.counted_at = now
            if usage.tokens < 1:
                return _seconds((1 - usage.tokens) / per_second)
            usage.tokens -= 1
            return None

    def take_messages(self, key: str, count: int, per_second: float) -> int | None:
        """None when the key may send `count` messages now (taken from its bucket, which one request may overdraw,
        so a batch larger than the bucket still passes once); else the whole seconds until its debt is repaid."""
        with self._lock:
            now = self._clock()
            usage = self._usage(key, now)
            full = per_second * BURST
            usage.messages = min(full, usage.messages + (now - usage.messages_at) * per_second)
            usage.messages_at = now
            if usage.messages < 1:
                return _seconds((1 - usage.messages) / per_second)
            usage.messages -= count
            return None

    def allow_rejected(self, key: str, count: int, per_minute: int) -> int:
        """How many of `count` invalid messages the key may still send this minute; all of them are counted, so
        a request that crosses the limit blocks the key's later requests until the minute has passed."""
        if count <= 0:
            return 0
        with self._lock:
            now = self._clock()
            usage = self._usage(key, now)
            if now - usage.window_start >= WINDOW:
                usage.window_start, usage.rejected = now, 0
            allowed = max(0, min(count, per_minute - usage.rejected))
            usage.rejected += count
            return allowed

    def rejected_wait(self, key: str, per_minute: int) -> int | None:
        """Whole seconds until the key may send again, when its invalid messages have reached the limit."""
        with self._lock:
            now, usage = self._clock(), self._keys.get(key)
            if usage is None or usage.rejected < per_minute or now - usage.window_start >= WINDOW:
                return None
            return _seconds(usage.window_start + WINDOW - now)

    def _usage(self, key: str, now: float) -> _Usage:
        """The key's entry, most recently used last; a new one starts with a full bucket (capped at the rate's
        burst when first used) and no invalid messages counted."""
        usage = self._keys.get(key)
        if usage is None:
            usage = self._keys[key] = _Usage(
                tokens=math.inf, counted_at=now, window_start=now - WINDOW, messages_at=now
            )
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        return usage


def _seconds(wait: float) -> int:
    """Retry-After in whole seconds, never 0 (which a client would read as 'now')."""
    return max(1, math.ceil(wait))
