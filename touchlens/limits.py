"""Bounds on what one analysis may cost a server: a deadline that interrupts its engine queries, and the errors
the web answers with when an analysis is refused (429) or stopped (503).

An analysis run inside `time_limit(seconds)` has every DuckDB cursor it opens through the workspace watched
(`watch`); when the time is up a timer interrupts them, again and again until the analysis gives up, since an
interrupt that lands between two queries is lost and the analysis may start another. The block then raises
`TooSlow`. Pure Python work (a bootstrap's model fits) is not interrupted: its cost is bounded by the caps
on samples instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import duckdb

from touchlens.errors import TouchlensError

INTERRUPT_EVERY = 0.05  # seconds between interrupts once the deadline has passed


class Busy(TouchlensError):
    """Refused for now: the user already runs as many expensive analyses as allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooSlow(TouchlensError):
    """An analysis ran past its time limit; its engine queries were interrupted."""


class Deadline:
    """The cursors one analysis uses, interrupted once `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def message(self) -> str:
        return (
            f"the analysis ran longer than the limit of {self.seconds:g} seconds ([web] analysis_seconds) and was "
            "stopped; narrow it (fewer steps, a shorter window, fewer samples) or ask an admin to raise the limit"
        )

    def watch(self, cursor: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Interrupt `cursor` when the time is up; past it, refuse to start anything more."""
        with self._lock:
            if self.expired:
                raise TooSlow(self.message())
            self._cursors.append(cursor)
        return cursor

    def _expire(self) -> None:
        self.expired = True
        while not self._done.is_set():
            with self._lock:
                cursors = list(self._cursors)
            for cursor in cursors:
                self._interrupt(cursor)
            self._done.wait(INTERRUPT_EVERY)

    def _interrupt(self, cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            cursor.interrupt()
        except duckdb.ConnectionException:  # closed: it runs nothing, so there is nothing left to stop
            with self._lock:
                self._cursors.remove(cursor)

    def start(self) -> None:
        self._timer.start()

    def finish(self) -> None:
        self._done.set()
        self._timer.cancel()


_current: ContextVar[Deadline | None] = ContextVar("touchlens_deadline", default=None)


def watch(cursor: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`cursor`, watched by the deadline of the analysis running in this context (if any)."""
    deadline = _current.get()
    return deadline.watch(cursor) if deadline is not None else cursor


@contextmanager
def time_limit(seconds: float) -> Iterator[Deadline]:
    """Run the block's engine queries under a deadline; `TooSlow` when it passes before the block ends."""
    deadline = Deadline(seconds)
    token = _current.set(deadline)
    deadline.start()
    try:
        yield deadline
    except Exception as exc:
        if deadline.expired:
            raise TooSlow(deadline.message()) from exc
        raise
    finally:
        deadline.finish()
        _current.reset(token)
