"""One computation shared by callers who ask for the same thing at about the same time.

The touchpoint page computes the drivers and the insights side by side (`WebState.begin`), and both start from
the same read of every customer's periods (seconds at 10M events, a large table): the first caller reads, the
second waits for that read instead of doing it again. The value is kept for a short while only, so a server
does not hold a large table between pages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
KEEP_SECONDS = 60.0


class Latest(Generic[T]):
    """The latest value computed, under its key: `get(key, compute)` computes it once per key; callers asking
    for that key meanwhile wait for it, and later ones within `keep` seconds get it as it is. A failure is not
    kept: the next caller computes again."""

    def __init__(self, keep: float = KEEP_SECONDS) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self._held: tuple[Hashable, Future[T], float] | None = None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            held = self._held
            fresh = held is not None and held[0] == key and time.monotonic() - held[2] <= self._keep
            if held is not None and fresh:
                future, mine = held[1], False
            else:
                future, mine = Future(), True
                self._held = (key, future, time.monotonic())
        if mine:
            try:
                future.set_result(compute())
            except BaseException as exc:  # handed to whoever waits; not kept for the next caller
                future.set_exception(exc)
                self._drop(future)
                raise
            # Let go of it after `keep` seconds even if nobody asks again: a server must not hold a large table.
            timer = threading.Timer(self._keep, self._drop, args=(future,))
            timer.daemon = True
            timer.start()
        return future.result()

    def clear(self) -> None:
        """Forget the value (it is large): the next caller computes again."""
        with self._lock:
            self._held = None

    def _drop(self, future: Future[T]) -> None:
        with self._lock:
            if self._held is not None and self._held[1] is future:
                self._held = None
