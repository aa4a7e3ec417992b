"""Access beyond the role matrix: failed sign-ins are rate limited, sessions expire (idle and absolute) and end
on sign-out, a new password or removal, and no password ever reaches a log, the audit log or an answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import Result
from tests.fakes import Clock
from touchlens.store import audit
from touchlens.store import users as user_store
from touchlens.store.meta import sessions
from touchlens.web.app import create_app
from touchlens.web.auth import FAILURE_WINDOW, MAX_FAILURES, SignInLimiter
from touchlens.web.security import SESSION_COOKIE

PASSWORD = "correct horse battery"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = touchlens.init(tmp_path / "ws")
    for role in user_store.ROLES:
        user_store.add_user(ws.meta_engine(), role, PASSWORD, role)
    return ws.root


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(root: Path, clock: Clock) -> FastAPI:
    app = create_app(root)
    app.state.sign_in_limiter = SignInLimiter(clock=clock)
    return app


def _login(app: FastAPI, name: str, password: str, address: str = "10.0.0.1") -> Any:
    client = TestClient(app, follow_redirects=False, client=(address, 50000))
    client.get("/login")
    token = client.cookies.get("touchlens_login_csrf")
    return client.post("/login", data={"name": name, "password": password, "csrf": token})


def _signed_in(response: Any) -> bool:
    return response.status_code == 303 and SESSION_COOKIE in response.cookies


# -- the sign-in rate limit -------------------------------------------------------------------------------


@pytest.mark.slow
def test_after_five_failures_for_a_name_even_the_right_password_waits_out_the_window(
    app: FastAPI, clock: Clock
) -> None:
    for i in range(MAX_FAILURES):
        assert _login(app, "editor", "wrong password", f"10.0.0.{i}").headers["location"].startswith("/login?failed")
        clock.now += 1
    refused = _login(app, "editor", PASSWORD, "10.0.9.9")  # another address: the name's count still holds
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == FAILURE_WINDOW - MAX_FAILURES
    assert "Too many failed sign-ins for this name or from this address" in refused.text
    assert "Try again in 15 minutes" in refused.text
    assert SESSION_COOKIE not in refused.cookies
    assert _signed_in(_login(app, "viewer", PASSWORD, "10.0.9.9"))  # other names are not held back
    clock.now += FAILURE_WINDOW - MAX_FAILURES  # the first failure leaves the window
    assert _signed_in(_login(app, "editor", PASSWORD, "10.0.9.9"))


@pytest.mark.slow
def test_five_failures_from_one_address_hold_back_every_name_from_it(app: FastAPI, clock: Clock) -> None:
    for name in ("a", "b", "c", "d", "e"):
        _login(app, name, "wrong password", "10.0.0.7")
    assert _login(app, "admin", PASSWORD, "10.0.0.7").status_code == 429
    assert _signed_in(_login(app, "admin", PASSWORD, "10.0.0.8"))
    clock.now += FAILURE_WINDOW
    assert _signed_in(_login(app, "admin", PASSWORD, "10.0.0.7"))


@pytest.mark.slow
def test_a_success_clears_the_names_count(app: FastAPI) -> None:
    for i in range(MAX_FAILURES - 1):
        _login(app, "viewer", "wrong password", f"10.1.0.{i}")
    assert _signed_in(_login(app, "viewer", PASSWORD, "10.1.1.1"))
    for i in range(MAX_FAILURES - 1):
        _login(app, "viewer", "wrong password", f"10.2.0.{i}")
    assert _signed_in(_login(app, "viewer", PASSWORD, "10.2.1.1"))  # 8 failures in all, never 5 since a success


def test_the_limiter_slides_its_window_and_stays_bounded() -> None:
    clock = Clock()
    limits = SignInLimiter(limit=3, window=60, clock=clock, capacity=4)
    for _ in range(3):
        limits.failed(["name:ann"])
        clock.now += 10
    assert limits.retry_after(["name:ann", "address:x"]) == 30  # the first failure leaves the window at +60
    clock.now += 30
    assert limits.retry_after(["name:ann"]) == 0
    limits.failed(["name:ann"])  # one more within the window of the other two: held back again
    assert limits.retry_after(["name:ann"]) == 10
    for i in range(4):  # newer keys push the least recent out: memory is bounded, the newest are kept
        limits.failed([f"name:n{i}"] * 3)
    assert limits.retry_after(["name:ann"]) == 0
    assert limits.retry_after(["name:n3"]) > 0


# -- sessions ---------------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _expiry(engine: sa.Engine) -> datetime:
    with engine.connect() as conn:
        stored: datetime = conn.execute(sa.select(sessions.c.expires_at)).scalar_one()
    return stored if stored.tzinfo else stored.replace(tzinfo=UTC)


def test_a_session_ends_after_two_idle_hours_and_each_request_keeps_it_alive(root: Path) -> None:
    engine = touchlens.open(root).meta_engine()
    token, _ = user_store.start_session(engine, user_store.User("viewer", "viewer"), now=T0)
    assert user_store.session_user(engine, token, now=T0 + timedelta(hours=1, minutes=59)) is not None
    # That request moved the idle deadline: two hours from it, not from sign-in.
    assert user_store.session_user(engine, token, now=T0 + timedelta(hours=3, minutes=58)) is not None
    assert user_store.session_user(engine, token, now=T0 + timedelta(hours=5, minutes=58, seconds=1)) is None
    idle, _ = user_store.start_session(engine, user_store.User("viewer", "viewer"), now=T0)
    assert user_store.session_user(engine, idle, now=T0 + timedelta(hours=2)) is None


def test_a_session_ends_twelve_hours_after_sign_in_however_active(root: Path) -> None:
    engine = touchlens.open(root).meta_engine()
    token, _ = user_store.start_session(engine, user_store.User("viewer", "viewer"), now=T0)
    at = T0
    while at < T0 + timedelta(hours=11, minutes=59):
        assert user_store.session_user(engine, token, now=at) is not None, at
        at += timedelta(minutes=30)
    assert _expiry(engine) == T0 + user_store.SESSION_LIFETIME  # the idle deadline never passes the lifetime
    assert user_store.session_user(engine, token, now=T0 + timedelta(hours=12)) is None


def test_the_idle_deadline_is_written_at_most_once_a_minute(root: Path) -> None:
    engine = touchlens.open(root).meta_engine()
    token, _ = user_store.start_session(engine, user_store.User("viewer", "viewer"), now=T0)
    user_store.session_user(engine, token, now=T0 + timedelta(seconds=59))
    assert _expiry(engine) == T0 + user_store.SESSION_IDLE
    user_store.session_user(engine, token, now=T0 + timedelta(seconds=61))
    assert _expiry(engine) == T0 + timedelta(seconds=61) + user_store.SESSION_IDLE


def test_the_app_refuses_a_session_left_idle(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, _login(app, "viewer", PASSWORD).cookies[SESSION_COOKIE])
    assert client.get("/api/me").status_code == 200
    later = datetime.now(UTC) + user_store.SESSION_IDLE + timedelta(seconds=1)
    monkeypatch.setattr(user_store, "_now", lambda: later)
    assert client.get("/api/me").status_code == 401
    assert client.get("/canvas").headers["location"].startswith("/login")


def _session_client(app: FastAPI, name: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, _login(app, name, PASSWORD).cookies[SESSION_COOKIE])
    client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf"]
    return client


def test_signing_out_ends_the_session_on_the_server(app: FastAPI) -> None:
    client = _session_client(app, "viewer")
    cookie = client.cookies[SESSION_COOKIE]
    answer = client.post("/logout", data={"csrf": client.headers["X-CSRF-Token"]})
    assert answer.status_code == 303
    assert 'touchlens_session=""' in answer.headers["set-cookie"]  # the browser drops its cookie …
    replay = TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie})
    assert replay.get("/api/me").status_code == 401


def test_a_new_password_or_removal_ends_the_users_sessions(app: FastAPI) -> None:
    admin = _session_client(app, "admin")
    editor = _session_client(app, "editor")
    viewer = _session_client(app, "viewer")
    assert editor.get("/api/me").status_code == 200
    assert admin.post("/api/users", json={"name": "editor", "password": "a new password", "role": "editor"}).is_success
    assert editor.get("/api/me").status_code == 401
    assert viewer.get("/api/me").status_code == 200  # others stay signed in
    assert admin.delete("/api/users/viewer").is_success
    assert viewer.get("/api/me").status_code == 401
    assert admin.get("/api/me").status_code == 200


# -- passwords are never logged ---------------------------------------------------------------------------

SECRET = "Zq7-never-log-this-password"
SHORT = "Zq7-sh"  # too short to be accepted: refused without being echoed


@pytest.mark.slow
def test_a_password_reaches_no_log_no_audit_entry_and_no_answer(
    root: Path, cli: Callable[..., Result], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore", "fastapi", "starlette"):
        caplog.set_level(logging.DEBUG, logger=name)
    said = [cli("-w", root, "users", "add", "carol", "--role", "viewer", "--password", SECRET)]
    said.append(cli("-w", root, "users", "add", "carl", "--role", "viewer", "--password", SHORT))
    assert (said[0].code, said[1].code) == (0, 1)
    app = create_app(root)
    answers = [_login(app, "carol", SECRET), _login(app, "carol", SHORT)]
    assert _signed_in(answers[0])
    assert not _signed_in(answers[1])
    admin = _session_client(app, "admin")
    for body in ({"name": "dave", "password": SECRET, "role": "viewer"}, {"name": "erin", "password": SHORT,
                 "role": "viewer"}, {"name": "fay", "password": SECRET}, {"name": "gus", "password": SECRET,
                 "role": "owner"}):  # fmt: skip
        answers.append(admin.post("/api/users", json=body))
    assert [a.status_code for a in answers[2:]] == [201, 422, 422, 422]
    answers.append(admin.get("/api/audit"))
    assert caplog.records, "nothing was logged: the capture would prove nothing"
    logged = [r.getMessage() + repr(r.args) + repr(r.__dict__) for r in caplog.records]
    found = audit.entries(touchlens.open(root).meta_engine(), 1000)
    assert {(e["action"], e["target"]) for e in found} >= {
        ("sign-in-failed", "user carol"),
        ("user-change", "user dave"),
    }
    entries = json.dumps(found)
    for where, text in [*(("log", t) for t in logged), ("audit", entries),
                        *(("answer", a.text + str(a.headers)) for a in answers),
                        *(("cli", r.out + r.err) for r in said)]:  # fmt: skip
        assert [word for word in (SECRET, SHORT) if word in text] == [], f"a password in the {where}: {text}"
