"""What the app keeps between requests: the workspace and results cached per data version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from touchlens.api import Workspace
from touchlens.ingest.live import LiveWriter

T = TypeVar("T")
CACHE_SIZE = 256


class WebState:
    """The workspace behind the app, and a small cache of analysis results keyed by the data version."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.lock = threading.Lock()  # guards starting the live writer
        self.live: LiveWriter | None = None

    def data_version(self) -> tuple[Any, ...]:
        """Changes whenever events, feedback, customers or the map change: the cache's key."""
        with self.ws.events() as con:
            row = con.execute(
                "SELECT count(*), max(finished), (SELECT count(*) FROM customers) FROM ingest_log"
            ).fetchone()
        return (*(row or ()), self.ws.map_version())

    def cached(self, name: str, params: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per (name, params, data version); later calls with the same data are instant."""
        key = (name, params, self.data_version())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                value: T = self._cache[key]
                return value
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return value
