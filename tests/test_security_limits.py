"""Limits on what one request may cost, and malformed input answered 4xx (issue 16): caps on funnel steps, the
Markov order, resamples and durations, agreed by the library, the CLI and the API; a per-user limit on
concurrent expensive analyses (429); a time limit that interrupts the engine query (503); a safety net for
input too deep or too large to parse; uploads staged inside the workspace, swept at start and at erasure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import Result, write
from touchlens.analyses import compare_attribution
from touchlens.analytics import attribution as attribution_module
from touchlens.analytics.attribution import Path as P
from touchlens.api import UPLOADS, Workspace
from touchlens.errors import BadOption
from touchlens.limits import TooSlow, time_limit, watch
from touchlens.store import keys as key_store
from touchlens.store import users as user_store
from touchlens.web.app import create_app

MAP = """
name: Shop
channels: [{key: web, kind: digital}]
touchpoints:
  - {key: ad, channel: web, match: {event: ad}}
  - {key: order, channel: web, match: {event: order}}
  - {key: track, channel: web, match: {event: track}}
outcomes:
  conversion: {event: order}
"""
T0 = datetime(2026, 1, 5, 9, 0)
PASSWORD = "correct horse battery"
HUGE = "99999999999d"
SLOW_SQL = "SELECT count(*) FROM range(20000000000) t(i) WHERE i % 7 = 3"


def _events(n: int = 30) -> str:
    lines = ["customer_id,ts,event"]
    for i in range(n):
        steps = ["ad", "order", "track"] if i % 3 else ["ad", "track"]
        t = T0 + timedelta(hours=i)
        lines += [f"c{i:02d},{(t + timedelta(minutes=10 * k)).isoformat()}Z,{e}" for k, e in enumerate(steps)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", MAP))
    ws.ingest_events([write(tmp_path / "e.csv", _events())])
    return ws.root


def _token(root: Path, name: str) -> str:
    engine = touchlens.open(root).meta_engine()
    user_store.add_user(engine, name, PASSWORD, "viewer")
    token = user_store.add_token(engine, name, ("read",), "test")
    engine.dispose()
    return token


def _client(app: FastAPI, token: str) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def app(root: Path) -> Iterator[FastAPI]:
    found = create_app(root)
    yield found
    if found.state.web.live is not None:
        found.state.web.live.stop()


# -- caps, the same in the library, the CLI and the API ---------------------------------------------------


def test_regression_a_200_step_funnel_is_refused_by_the_library_and_the_api(root: Path, app: FastAPI) -> None:
    steps = ["ad", "order"] * 100
    with pytest.raises(BadOption, match="1 to 20 steps"):
        touchlens.open(root).funnel(steps)
    answer = _client(app, _token(root, "ann")).get("/api/funnel", params={"steps": ",".join(steps)})
    assert answer.status_code == 422
    assert "20 steps" in answer.json()["detail"]


def test_regression_a_200_step_funnel_is_refused_on_the_command_line(root: Path, cli: Callable[..., Result]) -> None:
    steps = ["ad", "order"] * 100
    result = cli("-w", root, "analyze", "funnel", "--steps", ",".join(steps))
    assert result.code == 1
    assert "20 steps" in result.err
    assert cli("-w", root, "analyze", "funnel", "--steps", ",".join(steps[:20]), "--json").code == 0


@pytest.mark.slow
def test_regression_markov_order_and_bootstrap_resamples_are_capped_in_the_library(root: Path) -> None:
    paths = [P(("a", "b"), 1.0, 1.0), P(("b",), 0.0, 2.0)]
    with pytest.raises(BadOption, match="order is 1 to 3"):
        compare_attribution(paths, ["markov"], order=4)
    with pytest.raises(BadOption, match="0 to 200 resamples"):
        compare_attribution(paths, ["linear"], bootstrap_samples=201)
    with pytest.raises(BadOption, match="0 to 200 resamples"):
        touchlens.open(root).drivers("conversion", samples=201)


def test_regression_the_cli_refuses_bootstraps_beyond_the_cap(root: Path, cli: Callable[..., Result]) -> None:
    for args in (("attribution", "--bootstrap", "1000"), ("drivers", "--bootstrap", "1000")):
        result = cli("-w", root, "analyze", *args)
        assert result.code == 1, result
        assert "0 to 200 resamples" in result.err


def test_regression_web_drivers_take_at_most_100_resamples(root: Path, app: FastAPI) -> None:
    answer = _client(app, _token(root, "ann")).get("/api/drivers", params={"outcome": "conversion", "samples": 200})
    assert answer.status_code == 422


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("/api/scorecard", {"window": HUGE}),
        ("/api/funnel", {"steps": "ad,order", "window": HUGE}),
        ("/api/attribution", {"lookback": HUGE}),
        ("/api/attribution", {"model": "time-decay", "half_life": HUGE}),
        ("/api/attribution", {"model": "time-decay", "half_life": "0s"}),
        ("/api/scorecard", {"window": "9" * 5000 + "d"}),
    ],
)
def test_regression_huge_or_zero_durations_answer_422_not_500(
    root: Path, app: FastAPI, route: str, params: dict[str, str]
) -> None:
    answer = _client(app, _token(root, "ann")).get(route, params=params)
    assert answer.status_code == 422, answer.text
    assert "duration" in answer.json()["detail"]


def test_regression_a_huge_window_on_the_command_line_is_a_clear_error(root: Path, cli: Callable[..., Result]) -> None:
    result = cli("-w", root, "analyze", "funnel", "--steps", "ad,order", "--window", HUGE)
    assert result.code == 1
    assert "longest duration allowed" in result.err


def test_sampled_shapley_credits_each_path_to_its_last_key_to_join_as_the_reference_loop_does() -> None:
    """The vectorised Shapley (for more than 15 keys) gives exactly what the loop over coalitions gave."""
    rng = np.random.default_rng(3)
    keys = [f"k{i}" for i in range(20)]
    paths = [
        P(tuple(str(k) for k in rng.choice(keys, size=int(rng.integers(1, 6)))), float(rng.integers(0, 4)), 1.0)
        for _ in range(300)
    ]
    flat = attribution_module._flatten(paths)
    assert attribution_module._sampled_shapley(flat, keys, 50, 7) == pytest.approx(_reference(paths, keys, 50, 7))


def _reference(paths: list[P], keys: list[str], samples: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    sets = [(frozenset(p.steps), p.conversions) for p in paths if p.steps and p.conversions]
    phi = dict.fromkeys(keys, 0.0)
    for _ in range(samples):
        joined: set[str] = set()
        before = 0.0
        for key in rng.permutation(keys):
            joined.add(str(key))
            after = sum(c for s, c in sets if s <= joined)
            phi[str(key)] += after - before
            before = after
    return {k: v / samples for k, v in phi.items()}


# -- concurrent expensive analyses per user ---------------------------------------------------------------


@pytest.mark.slow
def test_regression_a_third_heavy_analysis_of_one_user_gets_429_while_light_pages_answer(
    root: Path, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Semaphore(0), threading.Event()
    real = Workspace.run_funnel

    def held(self: Workspace, query: Any, breakdown: str | None = None) -> Any:
        started.release()
        release.wait(30)
        return real(self, query, breakdown)

    monkeypatch.setattr(Workspace, "run_funnel", held)
    ann, bob = _client(app, _token(root, "ann")), _client(app, _token(root, "bob"))
    answers: list[int] = []
    heavy = [
        threading.Thread(target=lambda w=w: answers.append(ann.get("/api/funnel", params={"steps": w}).status_code))
        for w in ("ad,order", "ad,track")
    ]
    for t in heavy:
        t.start()
    for _ in heavy:
        assert started.acquire(timeout=30)
    try:
        third = ann.get("/api/funnel", params={"steps": "order,track"})
        assert third.status_code == 429
        assert third.headers["Retry-After"].isdigit()
        assert "heavy_per_user" in third.json()["detail"]
        assert ann.get("/api/feedback").status_code == 200  # light: never waits behind heavy ones
        assert ann.get("/api/roadmap").status_code == 200
        assert bob.get("/api/scorecard").status_code == 200  # another user's slots are their own
    finally:
        release.set()
        for t in heavy:
            t.join(60)
    assert answers == [200, 200]
    assert ann.get("/api/funnel", params={"steps": "order,track"}).status_code == 200  # slots given back


# -- the time limit -----------------------------------------------------------------------------------------


def _slow(ended: list[BaseException | None]) -> Callable[..., Any]:
    """A stand-in analysis running a query that takes minutes, on a cursor the workspace hands out; it records
    how the query ended (a safety timer stops it should nothing else)."""

    def run(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        backend = self._backend()
        safety = threading.Timer(60, backend.con.interrupt)
        safety.start()
        try:
            backend.con.execute(SLOW_SQL).fetchall()
            ended.append(None)
        except duckdb.Error as exc:
            ended.append(exc)
            raise
        finally:
            safety.cancel()

    return run


@pytest.mark.slow
def test_regression_an_analysis_past_analysis_seconds_is_interrupted_and_answers_503(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOUCHLENS_WEB__ANALYSIS_SECONDS", "0.5")
    ended: list[BaseException | None] = []
    monkeypatch.setattr(Workspace, "run_funnel", _slow(ended))
    client = _client(create_app(root), _token(root, "ann"))
    answer = client.get("/api/funnel", params={"steps": "ad,order"})
    assert answer.status_code == 503
    assert "analysis_seconds" in answer.json()["detail"]
    assert "0.5 seconds" in answer.json()["detail"]
    assert len(ended) == 1
    assert isinstance(ended[0], duckdb.InterruptException)
    # And the server goes on: its shared connection answers the next request that reads the events store. A
    # read of the ingest log, not an analysis: under two suites on two cores even the flows (a few queries since
    # the wait sketches) passed the 0.5 s limit this test sets, and the scorecard before them.
    after = client.get("/api/ingest/history")
    assert after.status_code == 200
    assert after.json()["ingests"]


@pytest.mark.slow
def test_regression_a_page_whose_analysis_is_stopped_answers_503_not_500(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOUCHLENS_WEB__ANALYSIS_SECONDS", "0.5")
    ended: list[BaseException | None] = []
    monkeypatch.setattr(Workspace, "sankey", _slow(ended))
    client = _client(create_app(root), _token(root, "ann"))
    assert client.get("/flows").status_code == 503
    assert isinstance(ended[0], duckdb.InterruptException)


@pytest.mark.slow
def test_regression_insights_stopped_stop_the_scorecard_they_compute_on_another_thread(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Insights compute the scorecard on a thread of their own: its queries are under the request's time limit
    too (the thread runs in the request's context), so the page answers 503 and the query is interrupted, not
    left running for minutes."""
    monkeypatch.setenv("TOUCHLENS_WEB__ANALYSIS_SECONDS", "0.5")
    ended: list[BaseException | None] = []
    ran_on: list[str] = []
    slow = _slow(ended)

    def scorecard(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        ran_on.append(threading.current_thread().name)
        return slow(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "scorecard", scorecard)
    client = _client(create_app(root), _token(root, "ann"))
    start = time.monotonic()
    assert client.get("/insights").status_code == 503
    assert ran_on[0].startswith("touchlens-insights")
    assert isinstance(ended[0], duckdb.InterruptException)
    # Stopped by the deadline, not by the stand-in's own safety timer (60 s) as a thread outside it would be.
    assert time.monotonic() - start < 30


def test_a_deadline_interrupts_every_cursor_of_its_block_and_refuses_new_ones() -> None:
    con = duckdb.connect()

    def analysis() -> None:
        with time_limit(0.2):
            try:
                watch(con.cursor()).execute(SLOW_SQL).fetchall()
            except duckdb.InterruptException:
                watch(con.cursor())  # past the deadline: refused before it runs anything

    with pytest.raises(TooSlow, match=r"0\.2 seconds") as stopped:
        analysis()
    assert isinstance(stopped.value.__cause__, TooSlow)  # the second cursor was refused
    assert con.cursor().execute("SELECT 42").fetchone() == (42,)


# -- malformed input ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    ["[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000, '{"batch": [], "n": ' + "9" * 5000 + "}"],
    ids=["deep-list", "deep-object", "5000-digits"],
)
def test_regression_json_too_deep_or_with_a_5000_digit_number_answers_400_not_500(
    root: Path, app: FastAPI, body: str
) -> None:
    engine = touchlens.open(root).meta_engine()
    user_store.add_user(engine, "adm", PASSWORD, "admin")
    _, key = key_store.add_key(engine, "ingest", "k", "k", "adm")
    engine.dispose()
    client = _client(app, key)
    for route in ("/v1/batch", "/v1/track"):
        answer = client.post(route, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert "Traceback" not in answer.text
        shape = answer.json()
        # /v1's own error shape, which Segment's and RudderStack's libraries read (code and message)
        assert shape == {
            "success": False,
            "detail": shape["detail"],
            "code": "invalid_json",
            "message": shape["detail"],
        }
        assert "not valid JSON" in shape["detail"]


def test_a_value_error_that_is_a_bug_still_reaches_the_server_as_a_500(app: FastAPI) -> None:
    """Only input that cannot be parsed becomes 400: a ValueError of our own goes on to the server, which
    answers 500 and logs the traceback (TestClient re-raises it where uvicorn would log it)."""

    @app.get("/boom")
    def boom() -> None:
        raise ValueError("a real bug")

    answer = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert answer.status_code == 500
    assert "a real bug" not in answer.text
    with pytest.raises(ValueError, match="a real bug"):
        TestClient(app).get("/boom")


HOSTILE = [HUGE, "9" * 5000, "-1", "1e308", "NaN", "0", "", "%00", "' OR 1=1 --", "1" * 300 + "d"]


@pytest.mark.slow
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_in_analysis_parameters_never_answer_500(root: Path, app: FastAPI, value: str) -> None:
    client = _client(app, _token(root, "ann"))
    for route, name, base in [
        ("/api/scorecard", "window", {}),
        ("/api/funnel", "window", {"steps": "ad,order"}),
        ("/api/funnel", "steps", {}),
        ("/api/funnel", "exclude", {"steps": "ad,order"}),
        ("/api/funnel", "breakdown", {"steps": "ad,order"}),
        ("/api/attribution", "order", {}),
        ("/api/attribution", "lookback", {}),
        ("/api/attribution", "half_life", {"model": "time-decay"}),
        ("/api/drivers", "samples", {"outcome": "conversion"}),
        ("/api/variants", "top", {}),
        ("/api/paths", "steps", {"from": "ad"}),
        ("/funnel", "window", {"steps": "ad,order"}),
    ]:
        answer = client.get(route, params={**base, name: value})
        assert answer.status_code < 500, (route, name, value, answer.text)


# -- uploads --------------------------------------------------------------------------------------------------


def _leftover(root: Path) -> Path:
    """A raw upload as a killed server leaves it: in its staging folder, never ingested."""
    folder = root / UPLOADS / "upload-killed"
    folder.mkdir(parents=True)
    return write(folder / "customers.csv", "customer_id,ts,event\nc01,2026-01-05T09:00:00Z,ad\n")


def test_regression_a_staged_upload_left_by_a_killed_server_is_removed_at_start(root: Path) -> None:
    left = _leftover(root)
    create_app(root)
    assert not left.exists()
    assert not left.parent.exists()


def test_regression_erasure_removes_staged_uploads(root: Path) -> None:
    left = _leftover(root)
    touchlens.open(root).forget(["c01"], "test")
    assert not left.exists()


def test_regression_erasure_through_the_api_removes_staged_uploads(root: Path, app: FastAPI) -> None:
    engine = touchlens.open(root).meta_engine()
    user_store.add_user(engine, "adm", PASSWORD, "admin")
    token = user_store.add_token(engine, "adm", ("read", "write"), "t")
    engine.dispose()
    left = _leftover(root)
    assert _client(app, token).delete("/api/customers/c01").status_code == 200
    assert not left.exists()


def test_an_upload_is_staged_in_a_private_folder_of_the_workspace_and_removed_after(
    root: Path, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = touchlens.open(root).meta_engine()
    user_store.add_user(engine, "ed", PASSWORD, "editor")
    token = user_store.add_token(engine, "ed", ("read", "write"), "t")
    engine.dispose()
    seen: list[tuple[Path, int]] = []
    real = Workspace.ingest_events

    def spy(self: Workspace, paths: list[Path], *args: Any, **kwargs: Any) -> Any:
        seen.append((Path(paths[0]), Path(paths[0]).parent.parent.stat().st_mode & 0o777))
        return real(self, paths, *args, **kwargs)

    monkeypatch.setattr(Workspace, "ingest_events", spy)
    files = {"file": ("more.csv", _events(3).encode(), "text/csv")}
    assert _client(app, token).post("/api/ingest/events", files=files).status_code == 200
    [(path, mode)] = seen
    assert path.parent.parent == root / UPLOADS
    assert mode == 0o700
    assert not path.exists()
    assert list((root / UPLOADS).iterdir()) == []
