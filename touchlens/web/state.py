"""What the app keeps between requests: the workspace, results cached per data version, and the bounds on
computing them.

Every result computed here runs under `[web] analysis_seconds` (its engine queries interrupted past it: 503),
and an expensive one (`HEAVY`) also takes one of the signed-in user's `[web] heavy_per_user` slots: one more at
once is refused with 429 rather than queued, so nothing waits behind it. Cached answers take no slot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, TypeVar

from touchlens.api import Workspace
from touchlens.ingest.live import LiveWriter
from touchlens.limits import Busy, time_limit
from touchlens.queries.base import Query
from touchlens.registry import as_dict

T = TypeVar("T")
CACHE_SIZE = 256
# Analyses whose cost grows with the data or a parameter (pages cache them as "page.NAME"); the rest (counts,
# ingest history, quarantine, comments, feedback) are light and never limited.
HEAVY = frozenset(
    {"attribution", "conformance", "drivers", "flows", "funnel", "impact", "insights", "nps_drivers", "paths",
     "sankey", "scorecard", "trends", "variants"}
)  # fmt: skip
# Most analyses end within seconds, and the same request is then answered from the cache.
RETRY_AFTER = 5
# The current request's `request.state` (its dict): set by the app's middleware, so `cached` knows the user
# whom security's dependency put there, with no change to the routes that call it.
REQUEST_STATE: ContextVar[dict[str, Any] | None] = ContextVar("touchlens_request_state", default=None)


class WebState:
    """The workspace behind the app, and a small cache of analysis results keyed by the data version."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.lock = threading.Lock()  # guards starting the live writer
        self.live: LiveWriter | None = None
        self._running: dict[str, int] = {}  # heavy analyses computing now, per user name
        # Changes the server makes that leave the ingest log as it was (a remap, a cleared quarantine): counted
        # here, since this server is the store's only writer while it runs.
        self.generation = 0

    def data_version(self) -> tuple[Any, ...]:
        """Changes whenever events, feedback, customers or the map change: the cache's key."""
        return (*self.ws.data_version(), self.ws.map_version(), self.generation)

    def analysis(self, query: Query) -> dict[str, Any]:
        """A registry analysis's result (its documented JSON shape), cached under the query itself: the page, the
        REST API and every other caller asking the same question share one entry."""
        return self.cached("analysis", query, lambda: as_dict(self.ws.run(query)))

    def changed(self) -> None:
        """The store changed in a way its ingest log does not show: every cached result is stale."""
        with self._lock:
            self.generation += 1

    def cached(self, name: str, params: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per (name, params, data version); later calls with the same data are instant."""
        key = (name, params, self.data_version())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                value: T = self._cache[key]
                return value
        heavy = name.removeprefix("page.") in HEAVY
        with self._slot(_user_name()) if heavy else nullcontext(), time_limit(self.ws.settings.web.analysis_seconds):
            value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return value

    @contextmanager
    def _slot(self, user: str | None) -> Iterator[None]:
        """One of `user`'s heavy-analysis slots for the block; `Busy` when all are taken. No user (a library
        caller, not a request): no limit."""
        if user is None:
            yield
            return
        allowed = self.ws.settings.web.heavy_per_user
        with self._lock:
            if self._running.get(user, 0) >= allowed:
                raise Busy(
                    f"you already run {allowed} expensive analyses at once ([web] heavy_per_user); "
                    f"send again when one has finished",
                    RETRY_AFTER,
                )
            self._running[user] = self._running.get(user, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._running[user] -= 1
                if not self._running[user]:
                    del self._running[user]


def _user_name() -> str | None:
    """The signed-in user of the request being served, if any."""
    found = REQUEST_STATE.get()
    user = found.get("user") if found is not None else None
    name = getattr(user, "name", None)
    return name if isinstance(name, str) else None
