"""Caches that survive change (issue 19): the web app's cached analyses are keyed by what of the map analyses
read (model/fingerprint.py), so editing prose or a roadmap card keeps them, and a change to what they read
recomputes them."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from types import SimpleNamespace

import pytest

import touchlens
from touchlens.editing import (
    OpportunityChanges,
    StageChanges,
    TouchpointChanges,
    update_opportunity,
    update_stage,
    update_touchpoint,
)
from touchlens.model.fingerprint import UNREAD, analysis_fingerprint
from touchlens.model.map import Desired, Horizon, MatchRule, OpportunityStatus, Targets
from touchlens.queries import FlowsQuery
from touchlens.web.state import HEAVY, REQUEST_STATE, WebState

from .conftest import journeys_workspace, write

PACKAGE = Path(touchlens.__file__).parent
# The layers whose results the web app caches. The roadmap (prioritise.py, the facade's roadmap methods in
# experience.py) reads the cards (`opportunities`, a card's `description`) and is never cached.
READERS = ("analytics", "insights", "queries", "registry.py", "engines.py", "analyses.py", "experience.py")
ALLOWED = {
    ("insights/prioritise.py", "description"),
    ("insights/prioritise.py", "opportunities"),
    ("experience.py", "opportunities"),
}


def test_no_analysis_reads_what_the_fingerprint_leaves_out() -> None:
    unread = sorted({name for names in UNREAD.values() for name in names})
    pattern = re.compile(r"\.(" + "|".join(unread) + r")\b")
    found = set()
    for reader in READERS:
        files = [PACKAGE / reader] if reader.endswith(".py") else sorted((PACKAGE / reader).rglob("*.py"))
        for path in files:
            for match in pattern.finditer(path.read_text("utf-8")):
                found.add((path.relative_to(PACKAGE).as_posix(), match.group(1)))
    assert found <= ALLOWED


@pytest.fixture
def web(tmp_path: Path) -> WebState:
    ws = journeys_workspace(tmp_path / "j", {"c1": ["home", "cart", "buy"], "c2": ["home", "cart"]})
    fuller = {
        "name": "Journeys",
        "journeys": [{"key": "j", "stages": [{"key": "s", "name": "Shop"}]}],
        "touchpoints": [{"key": k, "stage": "s", "match": {"event": k}} for k in ("buy", "cart", "home")],
        "opportunities": [{"key": "o", "title": "Faster cart"}],
    }
    ws.import_map(write(tmp_path / "fuller.json", json.dumps(fuller)))
    ws.share_connection()  # as the server does (web/app.py): its threads share one connection
    return WebState(ws)


class Probe:
    """A cached analysis that counts how often it really ran."""

    def __init__(self, web: WebState) -> None:
        self.web, self.runs = web, 0

    def __call__(self) -> int:
        self.web.cached("page.flows", ("probe",), self._compute)
        return self.runs

    def _compute(self) -> int:
        self.runs += 1
        return len(self.web.ws.run(FlowsQuery()).to_dict()["edges"])


def test_prose_and_card_edits_keep_cached_analyses_and_rule_edits_recompute(web: WebState) -> None:
    ws, runs = web.ws, Probe(web)
    assert runs() == 1
    assert runs() == 1  # cached
    prose = TouchpointChanges(
        description="New words",
        expectations="Quick",
        annoyances="Slow",
        script="Say hi",
        desired=Desired(think="fine", do="buy", feel="calm"),
    )
    update_touchpoint(ws, "cart", prose)
    update_stage(ws, "j", "s", StageChanges(goal="Buy", tasks=["a"], questions=["b"], description="d"))
    update_opportunity(ws, "o", OpportunityChanges(horizon=Horizon.now, status=OpportunityStatus.planned))
    assert runs() == 1  # every prose edit left the cache as it was
    update_touchpoint(ws, "cart", TouchpointChanges(targets=Targets(csat=0.8)))
    assert runs() == 2  # a target is read (health, success)
    update_touchpoint(ws, "cart", TouchpointChanges(match=MatchRule.model_validate({"event": "basket"})))
    assert runs() == 3
    update_touchpoint(ws, "cart", TouchpointChanges(name="Basket"))
    assert runs() == 4  # results show names


def test_the_fingerprint_ignores_exactly_the_unread_fields(web: WebState) -> None:
    m = web.ws.map()
    before = analysis_fingerprint(m)
    tp = m.touchpoints[0]
    for name in UNREAD[type(tp)]:
        changed = m.model_copy(update={"touchpoints": [tp.model_copy(update={name: None}), *m.touchpoints[1:]]})
        if getattr(tp, name) is not None:
            assert analysis_fingerprint(changed) == before, name
    for name, value in (("stage", None), ("channel", "web"), ("owner", "Ann"), ("personas", ["p"])):
        changed = m.model_copy(update={"touchpoints": [tp.model_copy(update={name: value}), *m.touchpoints[1:]]})
        assert analysis_fingerprint(changed) != before, name


def test_after_a_change_a_slow_new_answer_is_not_waited_for_the_last_one_is_given_with_its_age(
    web: WebState,
) -> None:
    release, answers = threading.Event(), iter(["first", "second"])

    def compute() -> str:
        answer = next(answers)
        if answer == "second":
            release.wait(30)  # the new answer takes long
        return answer

    web.ws.settings.web.fresh_wait_seconds = 0.2
    assert web.cached("flows", ("slow",), compute) == "first"
    web.changed()  # new data
    state: dict[str, object] = {}
    token = REQUEST_STATE.set(state)
    try:
        assert web.cached("flows", ("slow",), compute) == "first"  # not waited for past fresh_wait_seconds
    finally:
        REQUEST_STATE.reset(token)
    assert isinstance(state["stale_since"], float)
    release.set()
    deadline = time.monotonic() + 30
    while web.cached("flows", ("slow",), compute) != "second":  # computed in the background, then given
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_while_live_events_flow_a_recent_answer_is_given_at_once_and_computed_again_one_at_a_time(
    web: WebState,
) -> None:
    """A change with no live events (an upload, an edit): the page waits for its new answer. While the live
    writer commits: an answer computed within `behind_seconds` is given at once with its age, and however many
    versions go by, one computation of it runs at a time."""
    running, most, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def compute() -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(30)
        with lock:
            running[0] -= 1
        return web.generation

    release.set()
    assert web.cached("flows", ("live",), compute) == 0
    web.changed()
    assert web.cached("flows", ("live",), compute) == 1  # no live events: waited for, the new data's answer
    release.clear()
    web.live = SimpleNamespace(committed=0.0)  # type: ignore[assignment]  # the live writer, as far as read
    for _ in range(5):  # live events: a commit, a new version, before every request
        web.live.committed = time.monotonic()  # type: ignore[union-attr]
        web.changed()
        state: dict[str, object] = {}
        token = REQUEST_STATE.set(state)
        try:
            started = time.monotonic()
            assert web.cached("flows", ("live",), compute) == 1  # the recent answer, at once
            assert time.monotonic() - started < 0.5
        finally:
            REQUEST_STATE.reset(token)
        assert isinstance(state["stale_since"], float)  # with its age
    assert most[0] == 1  # one computation at a time, not one a version
    release.set()
    web.ws.settings.web.behind_seconds = 0  # turned off: waits (up to fresh_wait_seconds) as with no live events
    web.changed()
    assert web.cached("flows", ("live",), compute) == web.generation


def _asked_while_flowing(web: WebState, name: str, compute: Callable[[], int]) -> tuple[int, float, object]:
    """A page's request for `name` while live events flow (the live writer committed just now): the answer, how
    long it took, and the age the request was marked with (None: current)."""
    web.live = SimpleNamespace(committed=time.monotonic())  # type: ignore[assignment]
    state: dict[str, object] = {}
    token = REQUEST_STATE.set(state)
    try:
        started = time.monotonic()
        answer = web.cached("flows", (name,), compute)
        return answer, time.monotonic() - started, state.get("stale_since")
    finally:
        REQUEST_STATE.reset(token)


def test_while_live_events_flow_an_answer_that_cannot_come_within_the_wait_is_not_waited_for(
    web: WebState,
) -> None:
    """Past `behind_seconds`, a page waits up to `fresh_wait_seconds` for the new answer, unless its last
    computation took longer than that: then the last answer comes at once, with its age, and the new one goes on
    in the background. An answer computed quickly before is still waited for, and the page shows it."""
    web.ws.settings.web.fresh_wait_seconds = 0.5
    web.ws.settings.web.behind_seconds = 0.05
    release = threading.Event()
    release.set()

    def slow() -> int:
        release.wait(30)
        return web.generation

    assert web.cached("flows", ("slow",), slow) == 0
    assert web.cached("flows", ("quick",), lambda: web.generation) == 0
    release.clear()  # the next computation of `slow` takes a second: its time is what the next wait goes by
    web.changed()
    threading.Timer(1.0, release.set).start()
    deadline = time.monotonic() + 30
    while web.cached("flows", ("slow",), slow) != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    release.clear()
    web.changed()
    time.sleep(0.1)  # the answers are now older than behind_seconds
    try:
        answer, took, age = _asked_while_flowing(web, "slow", slow)
        assert answer == 1  # the last answer, at once: the new one takes a second
        assert took < 0.3
        assert isinstance(age, float)
        answer, _, age = _asked_while_flowing(web, "quick", lambda: web.generation)
        assert (answer, age) == (2, None)  # quick before: waited for, and new
    finally:
        release.set()


def test_an_answer_last_computed_before_live_events_flowed_is_expected_as_slow_as_others_are_now(
    web: WebState,
) -> None:
    """How much longer answers take while live events flow is learnt from the first one recomputed then: an
    answer last computed before the flow (0.1 s) is then expected to take that many times longer (1 s), past the
    wait, so the page shows its last answer at once instead of waiting for a new one that cannot come in time."""
    web.ws.settings.web.fresh_wait_seconds = 0.5
    web.ws.settings.web.behind_seconds = 0.05
    release = threading.Event()
    release.set()

    def timed() -> int:  # 0.1 s, and as long as `release` keeps it
        time.sleep(0.1)
        release.wait(30)
        return web.generation

    assert web.cached("flows", ("first",), timed) == web.cached("flows", ("second",), timed) == 0
    release.clear()
    web.changed()
    time.sleep(0.1)  # both answers are now older than behind_seconds
    threading.Timer(1.0, release.set).start()  # under the live load, the first's new answer takes a second
    assert _asked_while_flowing(web, "first", timed)[0] == 0  # waited for (0.1 s before), not in time: the last
    deadline = time.monotonic() + 30
    while web._slowdown == 1.0:  # learnt once the first's new answer is in
        assert time.monotonic() < deadline
        web.live.committed = time.monotonic()  # type: ignore[union-attr]
        time.sleep(0.05)
    assert web._slowdown > 5
    release.clear()
    try:
        answer, took, age = _asked_while_flowing(web, "second", timed)
        assert answer == 0  # expected to take a second: the last one, at once
        assert took < 0.3
        assert isinstance(age, float)
    finally:
        release.set()


def test_a_change_starts_the_recomputation_before_anyone_asks(web: WebState) -> None:
    runs = Probe(web)
    assert runs() == 1
    stop = web.watch(every=0.05)
    try:
        update_touchpoint(web.ws, "cart", TouchpointChanges(name="Basket"))
        deadline = time.monotonic() + 30
        while runs.runs < 2:  # the watcher recomputed it
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert runs() == 2  # and the next request finds it ready
    finally:
        stop.set()


def test_light_answers_are_always_fresh_and_an_asked_answer_does_not_queue_behind_the_watcher(web: WebState) -> None:
    counts = iter([1, 2])
    assert web.cached("counts", (), lambda: next(counts)) == 1
    web.changed()
    assert web.cached("counts", (), lambda: next(counts)) == 2  # light: computed now, never the last answer
    blocker = threading.Event()
    web._pool.submit(blocker.wait, 30)  # the watcher's queue is busy with something long
    try:
        answers = iter(["old", "new"])
        assert web.cached("flows", ("queue",), lambda: next(answers)) == "old"
        web.changed()
        assert web.cached("flows", ("queue",), lambda: next(answers)) == "new"  # computed beside the queue
    finally:
        blocker.set()


def test_an_answer_begun_beside_a_slower_one_is_computed_once_and_joined(web: WebState) -> None:
    """`begin` overlaps an answer with the request's slower work: asking for it later waits on that same
    computation, and beginning it again (another request for the page) starts nothing new."""
    started, release, runs = threading.Event(), threading.Event(), []

    def slow() -> str:
        runs.append(threading.current_thread().name)
        started.set()
        release.wait(30)
        return "findings"

    web.begin([("page.insights", (), slow)])
    assert started.wait(30)  # already running on its own thread, before anyone asks
    web.begin([("page.insights", (), slow)])  # a second request for the page while it runs
    release.set()
    assert web.cached("page.insights", (), slow) == "findings"
    assert len(runs) == 1
    assert runs[0] != threading.current_thread().name
    web.begin([("page.insights", (), slow)])  # cached for this data version: nothing to start
    assert len(runs) == 1


def test_server_start_computes_the_first_pages_answers_under_the_keys_the_pages_use(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from touchlens.store import users as user_store
    from touchlens.web.app import create_app
    from touchlens.web.pages.common import warm_start
    from touchlens.web.security import SESSION_COOKIE

    ws = journeys_workspace(tmp_path / "j", {"c1": ["home", "cart", "buy"], "c2": ["home", "cart"]})
    app = create_app(ws.root)
    web: WebState = app.state.web
    assert warm_start(web) == 8
    web._pool.submit(lambda: None).result(60)  # the queue ran dry: every warmed answer is in
    warmed = set(web._cache)
    user_store.add_user(web.ws.meta_engine(), "v", "correct horse battery", "viewer")
    client = TestClient(app)
    session, _ = user_store.start_session(web.ws.meta_engine(), user_store.User("v", "viewer"))
    client.cookies.set(SESSION_COOKIE, session)
    asked: set[tuple[str, Hashable]] = set()
    cached = web.cached

    def recording(name: str, params: Hashable, compute: Callable[[], object]) -> object:
        asked.add((name, params))
        return cached(name, params, compute)

    web.cached = recording  # type: ignore[method-assign]
    assert client.get("/").status_code == 200
    heavy = {(name, params) for name, params in asked if name.removeprefix("page.") in HEAVY}
    assert heavy <= warmed  # the page people land on finds every heavy answer of its own ready
    for page in ("/canvas", "/touchpoints/cart"):
        assert client.get(page).status_code == 200
    assert warmed <= asked  # each warmed answer is one of these pages' own
    assert warm_start(web) == 0  # all there already


def test_every_answer_the_app_caches_is_declared_heavy_or_light() -> None:
    """A heavy answer is computed in the background after a change and takes a user's slot; one left out of
    HEAVY (as the drivers for every outcome, health and the registry's analyses once were) is recomputed inside
    every request while live events flow."""
    from touchlens.web import state

    web = Path(state.__file__).parent
    source = "\n".join(p.read_text() for p in web.rglob("*.py"))
    names = set(re.findall(r'cached\(\s*(?:request,\s*)?"([a-z_]+)', source)) - {"page"}
    assert len(names) > 15
    assert names <= state.HEAVY | state.LIGHT, names - state.HEAVY - state.LIGHT
    assert not state.HEAVY & state.LIGHT
