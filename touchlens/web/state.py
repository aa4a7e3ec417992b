"""What the app keeps between requests: the workspace, results cached per data version, and the bounds on
computing them.

Every result computed here runs under `[web] analysis_seconds` (its engine queries interrupted past it: 503),
and an expensive one (`HEAVY`) also takes one of the signed-in user's `[web] heavy_per_user` slots: one more at
once is refused with 429 rather than queued, so nothing waits behind it. Cached answers take no slot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from touchlens.api import Workspace
from touchlens.ingest.live import LiveWriter
from touchlens.limits import Busy, time_limit
from touchlens.queries.base import Query
from touchlens.registry import as_dict

T = TypeVar("T")
log = logging.getLogger("touchlens.web")
CACHE_SIZE = 256
WATCH_SECONDS = 2.0
# After a change the watcher recomputes the most recently used answers, those asked for in the last ten minutes,
# eight at most: on a small machine, recomputing everything competes with the people using it.
REFRESH_AT_ONCE = 8
REFRESH_USED_WITHIN = 600.0
# Analyses whose cost grows with the data or a parameter (pages cache them as "page.NAME"); the rest (counts,
# ingest history, quarantine, comments, feedback) are light and never limited.
HEAVY = frozenset(
    {"all_drivers", "analysis", "attribution", "conformance", "drivers", "flows", "funnel", "health", "impact",
     "insights", "nps_drivers", "paths", "sankey", "scorecard", "success", "trends", "unmapped", "variants"}
)  # fmt: skip
# Answers cheap at any size (counts, the ingest history, the quarantine, a page of comments): always computed at
# once. Every name the app caches is in one of the two sets (tests/test_fingerprint.py).
LIGHT = frozenset({"counts", "feedback", "history", "quarantine", "verbatims"})
# Most analyses end within seconds, and the same request is then answered from the cache.
RETRY_AFTER = 5
# Computations shorter than TIMED (seconds) say too little of how much the live load slows them down to learn
# from; MAX_SLOWDOWN caps what is learnt.
TIMED, MAX_SLOWDOWN = 0.05, 20.0
# The current request's `request.state` (its dict): set by the app's middleware, so `cached` knows the user
# whom security's dependency put there, with no change to the routes that call it.
REQUEST_STATE: ContextVar[dict[str, Any] | None] = ContextVar("touchlens_request_state", default=None)


class WebState:
    """The workspace behind the app, and a small cache of analysis results keyed by the data version."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._cache: OrderedDict[Hashable, Entry] = OrderedDict()
        # Recomputations after a change: one at a time, beside the requests (this is a small shared machine).
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="touchlens-refresh")
        self._refreshing: dict[Hashable, tuple[tuple[Any, ...], Future[Any]]] = {}
        # When each running computation began (monotonic); none while one waits in the watcher's queue.
        self._refresh_started: dict[Hashable, float] = {}
        # How many times longer an answer last took to compute while live events flowed than before they did: an
        # answer last computed before is expected to take that much longer now (`_due_after`).
        self._slowdown = 1.0
        self._used: dict[Hashable, float] = {}  # when each answer was last asked for
        self._lock = threading.Lock()
        self.lock = threading.Lock()  # guards starting the live writer
        self.live: LiveWriter | None = None
        self._running: dict[str, int] = {}  # heavy analyses computing now, per user name
        # Changes the server makes that leave the ingest log as it was (a remap, a cleared quarantine): counted
        # here, since this server is the store's only writer while it runs.
        self.generation = 0
        self._fingerprints: dict[str, str] = {}

    def data_version(self) -> tuple[Any, ...]:
        """Changes whenever events, feedback, customers or what analyses read of the map change: the cache's key.
        Prose edits (a description, an expectation, a script) keep it, so every cached analysis survives them."""
        return (*self.ws.data_version(), self._map_fingerprint(), self.generation)

    def _map_fingerprint(self) -> str | None:
        version = self.ws.map_version()
        if version is None:
            return None
        known = self._fingerprints.get(version)
        if known is None:
            from touchlens.model.fingerprint import analysis_fingerprint

            known = analysis_fingerprint(self.ws.map())
            self._fingerprints = {version: known}  # only the latest map's is needed
        return known

    def analysis(self, query: Query) -> dict[str, Any]:
        """A registry analysis's result (its documented JSON shape), cached under the query itself: the page, the
        REST API and every other caller asking the same question share one entry."""
        return self.cached("analysis", query, lambda: as_dict(self.ws.run(query)))

    def changed(self) -> None:
        """The store changed in a way its ingest log does not show: every cached result is stale."""
        with self._lock:
            self.generation += 1

    def cached(self, name: str, params: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per (name, params, data version); later calls with the same data are instant.

        When the data changed since the last answer, the new one is computed in the background and waited for at
        most `[web] fresh_wait_seconds` per request (see `_wait`); past that, the last answer is given, and the
        request says how old it is (`stale_since`: the page says so, the API sends `Age`)."""
        slot = (name, params)
        version = self.data_version()
        with self._lock:
            entry = self._cache.get(slot)
            if entry is not None:
                self._cache.move_to_end(slot)
            self._used[slot] = time.monotonic()
            running = self._refreshing.get(slot)
        if entry is not None and entry.version == version:
            return cast(T, entry.value)
        if entry is None and running is not None and running[0] == version:
            return cast(T, running[1].result())  # being computed already (the server's start): the same work
        if entry is None or name.removeprefix("page.") not in HEAVY:
            # A light answer (counts, quarantine, history) is cheap: always fresh, as the page just acted on it.
            return self._store(slot, version, compute, *self._timed(name, compute, _user_name()))
        if self._flowing() and time.time() - entry.at <= self.ws.settings.web.behind_seconds:
            self._refresh(slot, version, compute, asked=True)  # the next one, in the background
            _mark_stale(entry.at)
            return cast(T, entry.value)
        future = self._refresh(slot, version, compute, asked=True)
        wait = self._wait()
        if self._flowing() and self._due_after(slot, entry, wait):
            _mark_stale(entry.at)  # the new answer cannot come within the wait: the last one now, not after it
            return cast(T, entry.value)
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            _mark_stale(entry.at)
            return cast(T, entry.value)

    def _due_after(self, slot: Hashable, last: Entry, wait: float) -> bool:
        """Whether the answer being computed for `slot` is expected later than `wait` seconds from now: it began
        when `_refresh_started` says, and takes as long as the `last` one, times `_slowdown` if that one was
        computed before live events flowed; one not begun yet (queued) is waited for, as before. While live
        events flow, the recomputations share the cores with the live load and take longer than
        `fresh_wait_seconds`, so a page waited that long and then showed the last answer anyway (3.0–3.7 s for
        seven pages at 1M events)."""
        with self._lock:
            began = self._refresh_started.get(slot)
            took = last.took if last.flowing else last.took * self._slowdown
        return began is not None and began + took - time.monotonic() > wait

    def _flowing(self) -> bool:
        """Whether live events flow in: the live writer committed within `[web] behind_seconds`. Not after an
        upload or an edit, whose page still waits for its new answers."""
        within, live = self.ws.settings.web.behind_seconds, self.live
        return within > 0 and live is not None and live.committed >= time.monotonic() - within

    def _wait(self) -> float:
        """How much longer this request may wait for new answers: `[web] fresh_wait_seconds` from its first wait,
        for all of them together. A page whose last answers took longer than that is never slower than they were;
        a quicker one still shows new numbers unless the machine is busy."""
        budget = self.ws.settings.web.fresh_wait_seconds
        found = REQUEST_STATE.get()
        if found is None:
            return budget
        now = time.monotonic()
        start = float(found.setdefault("wait_start", now))
        return max(0.0, start + budget - now)

    def warm(self, answers: list[tuple[str, Hashable, Callable[[], Any]]]) -> int:
        """Compute, in the background, the answers (name, params, compute) not cached yet; how many were started.
        At server start, so the first pages people open find their answers ready."""
        version = self.data_version()
        with self._lock:
            missing = [
                (name, params, compute) for name, params, compute in answers if (name, params) not in self._cache
            ]
        for name, params, compute in missing:
            self._refresh((name, params), version, compute)
        return len(missing)

    def begin(self, answers: list[tuple[str, Hashable, Callable[[], Any]]]) -> None:
        """Start, each on its own thread, the answers (name, params, compute) a request will ask for after a
        slower one, so they overlap it: asking for one later joins its computation. Each answer is computed once
        per data version however many requests begin it."""
        version = self.data_version()
        for name, params, compute in answers:
            with self._lock:
                entry = self._cache.get((name, params))
            if entry is None or entry.version != version:
                self._refresh((name, params), version, compute, asked=True)

    def refresh_all(self) -> int:
        """Recompute, in the background, every cached answer the data has changed under (most recent first);
        how many were started. Called when the data changes, so a page asked for next finds its answer ready."""
        version = self.data_version()
        with self._lock:
            recent = time.monotonic() - REFRESH_USED_WITHIN
            stale = [
                (slot, e)
                for slot, e in reversed(self._cache.items())
                if e.version != version and self._used.get(slot, 0.0) >= recent
            ]
        for slot, entry in stale[:REFRESH_AT_ONCE]:
            self._refresh(slot, version, entry.compute)
        return min(len(stale), REFRESH_AT_ONCE)

    def watch(self, every: float = WATCH_SECONDS) -> threading.Event:
        """Look for new data every `every` seconds (an ingest, a live commit, an edit, a command run through the
        server) and recompute the cached answers it changed; set the event returned to stop."""
        stop = threading.Event()

        def loop() -> None:
            seen = None
            while not stop.wait(every):
                version = self.data_version()
                if version != seen:
                    seen = version
                    self.refresh_all()

        threading.Thread(target=loop, name="touchlens-watch", daemon=True).start()
        return stop

    def _refresh(
        self, slot: Hashable, version: tuple[Any, ...], compute: Callable[[], T], asked: bool = False
    ) -> Future[T]:
        """One background computation per answer and data version; asking again joins it. The watcher's queue
        recomputes one at a time; an answer a request is waiting for (`asked`) starts at once on its own thread
        instead of queueing behind the watcher's (one still queued is taken out of the queue)."""
        with self._lock:
            running = self._refreshing.get(slot)
            # One computation per answer at a time: while data flows each request sees a new version, and one
            # computation per version would pile up (the one running is at most its own time behind).
            joins = running is not None and (running[0] == version or self._flowing())
            if running is not None and joins and (not asked or not running[1].cancel()):
                return cast(Future[T], running[1])
            if asked:
                future: Future[T] = Future()
                threading.Thread(
                    target=_settle, args=(future, self._recompute, slot, version, compute), daemon=True
                ).start()
            else:
                future = self._pool.submit(self._recompute, slot, version, compute)
            future.add_done_callback(_log_failure)
            self._refreshing[slot] = (version, future)
            self._refresh_started.pop(slot, None)
            if asked:  # its thread starts now; one queued behind the watcher's says when it starts (`_recompute`)
                self._refresh_started[slot] = time.monotonic()
            return future

    def _recompute(self, slot: Hashable, version: tuple[Any, ...], compute: Callable[[], T]) -> T:
        with self._lock:
            if self._refreshing.get(slot, (None,))[0] == version:
                self._refresh_started[slot] = time.monotonic()
        try:
            value, took = self._timed(str(slot[0]) if isinstance(slot, tuple) else "", compute, None)  # the server's
            return self._store(slot, version, compute, value, took)
        finally:
            with self._lock:
                if self._refreshing.get(slot, (None,))[0] == version:
                    del self._refreshing[slot]
                    self._refresh_started.pop(slot, None)

    def _timed(self, name: str, compute: Callable[[], T], user: str | None) -> tuple[T, float]:
        heavy = name.removeprefix("page.") in HEAVY
        started = time.monotonic()
        with self._slot(user) if heavy else nullcontext(), time_limit(self.ws.settings.web.analysis_seconds):
            value = compute()
        return value, time.monotonic() - started

    def _store(self, slot: Hashable, version: tuple[Any, ...], compute: Callable[[], T], value: T, took: float) -> T:
        flowing = self._flowing()
        with self._lock:
            before = self._cache.get(slot)
            if flowing and before is not None and not before.flowing and before.took >= TIMED:
                self._slowdown = min(MAX_SLOWDOWN, max(1.0, took / before.took))  # the latest seen
            self._cache[slot] = Entry(version, value, time.time(), took, compute, flowing)
            self._cache.move_to_end(slot)
            while len(self._cache) > CACHE_SIZE:
                evicted, _ = self._cache.popitem(last=False)
                self._used.pop(evicted, None)
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


@dataclass(frozen=True)
class Entry:
    """A cached answer: the data version it is of, when it was computed and how long that took."""

    version: tuple[Any, ...]
    value: Any
    at: float
    took: float
    compute: Callable[[], Any]
    flowing: bool = False  # computed while live events flowed in


def _settle(future: Future[T], work: Callable[..., T], *args: Any) -> None:
    """Run `work` on this thread and give its result or its exception to `future`."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(work(*args))
    except BaseException as exc:  # handed to whoever waits on the future, as an executor would
        future.set_exception(exc)


def _log_failure(future: Future[Any]) -> None:
    """A background recomputation nobody waited for still says why it failed (the next request retries it)."""
    if future.cancelled():
        return  # taken out of the queue: a request computes it now
    failure = future.exception()
    if failure is not None:
        log.warning("recomputing a cached answer failed: %s", failure)


def _mark_stale(at: float) -> None:
    """Tell the request it is answered from data as of `at` (the oldest answer it used)."""
    found = REQUEST_STATE.get()
    if found is not None:
        found["stale_since"] = min(found.get("stale_since", at), at)


def _user_name() -> str | None:
    """The signed-in user of the request being served, if any."""
    found = REQUEST_STATE.get()
    user = found.get("user") if found is not None else None
    name = getattr(user, "name", None)
    return name if isinstance(name, str) else None
