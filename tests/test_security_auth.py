"""Issue 16, accounts and credentials: the sign-in limiter cannot be raced, unknown names cost what known ones do,
API tokens expire and can be listed and revoked, forwarded addresses are believed only from trusted proxies,
logout always ends the session, and passwords and user names follow a policy. Each attack the issue found is a
named regression test."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from alembic import command
from alembic.config import Config
from argon2 import PasswordHasher, extract_parameters
from fastapi import FastAPI
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import Result
from touchlens.cli_web import proxy_options
from touchlens.locate import SETTINGS_FILE
from touchlens.store import audit, meta
from touchlens.store import users as user_store
from touchlens.store.meta import api_tokens, users
from touchlens.web.app import create_app
from touchlens.web.auth import MAX_FAILURES, SignInLimiter
from touchlens.web.security import SESSION_COOKIE

PASSWORD = "correct horse battery"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = touchlens.init(tmp_path / "ws")
    for role in user_store.ROLES:
        user_store.add_user(ws.meta_engine(), role, PASSWORD, role)
    return ws.root


def _set_web(root: Path, line: str) -> None:
    """Change one `[web]` setting in the workspace's settings file (e.g. `trusted_proxies = ["127.0.0.1"]`)."""
    path = root / SETTINGS_FILE
    key = line.split("=")[0].strip()
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line if x.startswith(f"{key} =") else x for x in lines) + "\n")


def _client(app: FastAPI, address: str = "10.0.0.1") -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 50000))


def _login(client: TestClient, name: str, password: str, **headers: str) -> httpx.Response:
    client.get("/login")
    token = client.cookies.get("touchlens_login_csrf")
    answer: httpx.Response = client.post(
        "/login", data={"name": name, "password": password, "csrf": token}, headers=headers
    )
    return answer


def _signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and SESSION_COOKIE in response.cookies


def _last(root: Path, action: str) -> dict[str, Any]:
    return audit.entries(touchlens.open(root).meta_engine(), 1, action)[0]


# -- 1. the sign-in limiter cannot be raced -----------------------------------------------------------------


def test_regression_concurrent_reservations_never_exceed_the_limit() -> None:
    limits = SignInLimiter(limit=MAX_FAILURES)
    start, granted = threading.Barrier(16), []

    def attempt() -> None:
        start.wait()
        if limits.reserve(["name:admin", "address:10.0.0.9"]).wait == 0:
            granted.append(1)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == MAX_FAILURES


@pytest.mark.slow
def test_regression_eight_concurrent_wrong_passwords_reach_the_password_check_at_most_five_times(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: 8 sign-ins at once, all checked against the limit before the first failure was counted."""
    checked: list[str] = []

    def slow_wrong(engine: sa.Engine, name: str, password: str) -> None:
        checked.append(name)
        time.sleep(0.3)  # Argon2's time: long enough for every attempt to arrive while the others are checked

    monkeypatch.setattr(user_store, "authenticate", slow_wrong)
    app = create_app(root)
    clients = [_client(app, f"10.0.1.{i}") for i in range(8)]
    for client in clients:
        client.get("/login")
    start, answers = threading.Barrier(len(clients)), []

    def try_once(client: TestClient) -> None:
        token = client.cookies.get("touchlens_login_csrf")
        start.wait()
        answers.append(client.post("/login", data={"name": "admin", "password": "guess", "csrf": token}))

    threads = [threading.Thread(target=try_once, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checked) <= MAX_FAILURES
    assert sorted(a.status_code for a in answers) == [303] * len(checked) + [429] * (8 - len(checked))


@pytest.mark.slow
def test_a_success_gives_back_its_place_in_the_address_count(root: Path) -> None:
    app = create_app(root)
    client = _client(app, "10.0.2.1")
    for _ in range(MAX_FAILURES + 2):  # more sign-ins than the limit, all right: none is counted as a failure
        assert _signed_in(_login(client, "viewer", PASSWORD))
    for name in ("a", "b", "c", "d"):
        _login(client, name, "wrong password")
    assert _signed_in(_login(client, "viewer", PASSWORD))  # 4 failures from the address: still below 5


@pytest.mark.slow
def test_regression_look_alikes_of_a_name_share_its_sign_in_limit(root: Path) -> None:
    app = create_app(root)
    for i, name in enumerate(["Admin", "admin ", "ADMIN", " admin", "ａｄｍｉｎ"]):
        _login(_client(app, f"10.0.3.{i}"), name, "wrong password")
    assert _login(_client(app, "10.0.3.9"), "admin", PASSWORD).status_code == 429


@pytest.mark.slow
def test_regression_padding_a_name_past_200_characters_does_not_make_a_fresh_limit(root: Path) -> None:
    """The red team's bypass: the limiter counted the first 200 characters while the lookup read the whole name
    without its leading spaces, so each amount of padding was a new name with five fresh guesses."""
    app = create_app(root)
    for i in range(MAX_FAILURES):
        _login(_client(app, f"10.0.4.{i}"), "admin", "wrong password")
    for pad in (" " * 199, "\u3000" * 250):
        assert _login(_client(app, "10.0.4.99"), pad + "admin", PASSWORD).status_code == 429


class Spy:
    """A password hasher that records each Argon2 run; `refuse` makes every run fail the test."""

    def __init__(self, refuse: bool = False) -> None:
        self.real, self.refuse, self.calls, self.verified = PasswordHasher(), refuse, list[str](), list[str]()

    def hash(self, password: str) -> str:
        return self._run("hash", password)

    def verify(self, hashed: str, password: str) -> bool:
        self._run("verify", password)
        self.verified.append(hashed)
        return self.real.verify(hashed, password)

    def _run(self, what: str, password: str) -> str:
        assert not self.refuse, f"a refused password reached Argon2 ({what})"
        self.calls.append(what)
        return self.real.hash(password)


# -- 2. unknown names cost what known ones do -----------------------------------------------------------------


def test_regression_unknown_user_names_take_as_long_as_known_ones(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: an unknown name took two Argon2 runs (745 ms), a known one with a wrong password one (375 ms).
    A sign-in's time is its Argon2 work, so both must do the same: one verification each, against hashes of the
    same cost (memory, passes, lanes: what Argon2's time depends on). Checked as work done, not as a ratio of
    timings, which a busy machine broke (1.46 against the issue's 1.2 while other tests ran beside it)."""
    engine = touchlens.open(root).meta_engine()
    user_store.authenticate(engine, "no such user", "wrong password")  # the dummy hash is made on first use
    runs = {}
    for name in ("editor", "no such user"):
        spy = Spy()
        monkeypatch.setattr(user_store, "_hasher", spy)
        assert user_store.authenticate(engine, name, "wrong password") is None
        assert spy.calls == ["verify"]
        runs[name] = extract_parameters(spy.verified[0])
    assert runs["no such user"] == runs["editor"] == extract_parameters(PasswordHasher().hash("x"))


@pytest.mark.slow
def test_regression_an_unknown_name_is_verified_against_one_hash_made_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = touchlens.open(root).meta_engine()
    user_store.authenticate(engine, "nobody", "wrong password")
    spy = Spy()
    monkeypatch.setattr(user_store, "_hasher", spy)
    for _ in range(3):
        assert user_store.authenticate(engine, "nobody", "wrong password") is None
    assert spy.calls == ["verify"] * 3  # the old code hashed a dummy password, then verified: two runs each


# -- 3. API tokens expire, are listed, revoked, and end with a new password ---------------------------------


def _me(app: FastAPI, token: str) -> int:
    code: int = _client(app).get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
    return code


def test_regression_an_expired_api_token_gets_401(root: Path) -> None:
    engine = touchlens.open(root).meta_engine()
    long_ago = datetime.now(UTC) - timedelta(days=31)
    old, _ = user_store.issue_token(engine, "viewer", ("read",), days=30, now=long_ago)
    fresh, kept = user_store.issue_token(engine, "viewer", ("read",), days=30)
    app = create_app(root)
    assert (_me(app, old), _me(app, fresh)) == (401, 200)
    assert user_store.token_user(engine, fresh, now=kept.expires_at) is None  # it ends at its expiry exactly


@pytest.mark.slow
def test_regression_a_revoked_api_token_gets_401(root: Path, cli: Callable[..., Result]) -> None:
    made = cli("-w", root, "tokens", "add", "editor", "--scope", "read", "--scope", "write", "--label", "ci")
    token = made.out.strip()
    listed = json.loads(cli("-w", root, "tokens", "list", "--json").out)
    assert [(t["user"], t["scopes"], t["label"]) for t in listed] == [("editor", "read,write", "ci")]
    app = create_app(root)
    assert _me(app, token) == 200
    revoked = cli("-w", root, "tokens", "revoke", listed[0]["id"])
    assert revoked.code == 0, revoked.err
    assert _me(app, token) == 401
    entry = _last(root, "token-revoke")
    assert (entry["target"], entry["detail"]["id"]) == ("user editor", listed[0]["id"])
    assert cli("-w", root, "tokens", "revoke", listed[0]["id"]).code == 1  # gone: a clear error


@pytest.mark.slow
def test_regression_a_password_reset_ends_the_users_api_tokens(root: Path, cli: Callable[..., Result]) -> None:
    engine = touchlens.open(root).meta_engine()
    editor = user_store.add_token(engine, "editor", ("read",))
    viewer = user_store.add_token(engine, "viewer", ("read",))
    assert cli("-w", root, "users", "add", "editor", "--role", "editor", "--password", "a new password").code == 0
    app = create_app(root)
    assert (_me(app, editor), _me(app, viewer)) == (401, 200)
    assert [t.user for t in user_store.list_tokens(engine)] == ["viewer"]


@pytest.mark.slow
def test_tokens_last_token_days_or_days_and_their_list_never_shows_a_secret(
    root: Path, cli: Callable[..., Result]
) -> None:
    _set_web(root, "token_days = 7")
    default = cli("-w", root, "tokens", "add", "admin").out.strip()
    cli("-w", root, "tokens", "add", "viewer", "--days", "400")
    assert cli("-w", root, "tokens", "add", "viewer", "--days", "0").code != 0
    listed = json.loads(cli("-w", root, "tokens", "list", "--json").out)
    lives = [datetime.fromisoformat(t["expires"]) - datetime.fromisoformat(t["created"]) for t in listed]
    assert lives == [timedelta(days=7), timedelta(days=400)]
    assert [t["expired"] for t in listed] == [False, False]
    table = cli("-w", root, "tokens", "list").out + json.dumps(listed)
    with touchlens.open(root).meta_engine().connect() as conn:
        hashes = conn.execute(sa.select(api_tokens.c.token_hash)).scalars().all()
    assert all(secret not in table for secret in (default, default[3:], *hashes))
    only = json.loads(cli("-w", root, "tokens", "list", "--user", "viewer", "--json").out)
    assert [t["user"] for t in only] == ["viewer"]


def test_tokens_expire_list_and_revoke_on_every_metadata_backend(meta_workspace: touchlens.Workspace) -> None:
    engine = meta_workspace.meta_engine()
    user_store.add_user(engine, "ann", PASSWORD, "editor")
    began = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    token, kept = user_store.issue_token(engine, "ann", ("read",), "ci", days=2, now=began)
    assert user_store.token_user(engine, token, now=began + timedelta(days=1)) is not None
    assert user_store.token_user(engine, token, now=began + timedelta(days=2)) is None
    assert user_store.list_tokens(engine, "ann") == [kept]
    assert user_store.list_tokens(engine, "bob\x00") == []
    assert user_store.revoke_token(engine, kept.id) == kept
    assert (user_store.revoke_token(engine, kept.id), user_store.list_tokens(engine)) == (None, [])


def test_tokens_made_before_expiry_existed_get_one_on_upgrade(tmp_path: Path) -> None:
    """A store at revision 0004 with a token: the upgrade gives it an id and 90 days from the upgrade."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(meta.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.execute(sa.insert(users).values(name="ann", password_hash="x", role="viewer"))
        conn.execute(sa.text("INSERT INTO api_tokens (token_hash, user, scopes, label) VALUES (:h, 'ann', 'read', '')"),
                     {"h": user_store._digest("tl_old")})  # fmt: skip
    meta.migrate(engine)
    (token,) = user_store.list_tokens(engine)
    assert len(token.id) == 12
    assert abs(token.expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=5)
    assert user_store.token_user(engine, "tl_old") == user_store.User("ann", "viewer", ("read",))
    engine.dispose()


# -- 4. X-Forwarded-For only from trusted proxies -------------------------------------------------------------


@pytest.mark.slow
def test_regression_a_spoofed_forwarded_for_from_loopback_is_not_believed(root: Path) -> None:
    app = create_app(root)
    client = _client(app, "127.0.0.1")
    for i in range(MAX_FAILURES):  # a new spoofed address each time: the limit must still see one client
        _login(client, "nobody", "wrong password", **{"X-Forwarded-For": f"203.0.113.{i}"})
    assert _last(root, "sign-in-failed")["detail"]["address"] == "127.0.0.1"
    assert _login(client, "viewer", PASSWORD, **{"X-Forwarded-For": "203.0.113.99"}).status_code == 429


@pytest.mark.slow
def test_a_trusted_proxys_forwarded_address_is_the_clients(root: Path) -> None:
    _set_web(root, 'trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]')
    app = create_app(root)
    # The client wrote the first entry; the proxies appended the rest: the nearest untrusted one is the client.
    chain = "6.6.6.6, 198.51.100.7, 10.2.3.4"
    _login(_client(app, "127.0.0.1"), "nobody", "wrong password", **{"X-Forwarded-For": chain})
    assert _last(root, "sign-in-failed")["detail"]["address"] == "198.51.100.7"
    _login(_client(app, "192.0.2.5"), "nobody", "wrong password", **{"X-Forwarded-For": "198.51.100.8"})
    assert _last(root, "sign-in-failed")["detail"]["address"] == "192.0.2.5"  # not a proxy: header ignored


def test_a_wrong_trusted_proxy_entry_stops_serve_with_a_clear_error(
    root: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_web(root, 'trusted_proxies = ["my-proxy"]')
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: pytest.fail("served with a wrong trusted_proxies"))
    result = cli("-w", root, "serve")
    assert result.code == 1
    assert "trusted_proxies: 'my-proxy' is neither an IP address nor a network" in result.err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("trusted_proxies = []", {"proxy_headers": False}),
        ('trusted_proxies = ["10.0.0.0/8", "::1"]',
         {"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.0/8", "::1"]}),
    ],
)  # fmt: skip
def test_regression_serve_tells_uvicorn_to_trust_only_the_configured_proxies(
    root: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, setting: str, expected: dict[str, Any]
) -> None:
    """uvicorn's defaults (proxy_headers on, 127.0.0.1 trusted) let any local process choose its address."""
    _set_web(root, setting)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    assert cli("-w", root, "serve", "--port", "8123").code == 0
    assert {k: v for k, v in seen.items() if k in ("proxy_headers", "forwarded_allow_ips")} == expected


@pytest.fixture
def served(root: Path) -> Iterator[str]:
    """The app on a real uvicorn with `touchlens serve`'s proxy options, on a free port of this machine."""
    config = uvicorn.Config(create_app(root), host="127.0.0.1", port=0, log_level="warning", **proxy_options([]))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_regression_behind_uvicorn_a_spoofed_forwarded_for_from_loopback_is_audited_as_loopback(
    root: Path, served: str
) -> None:
    with httpx.Client(base_url=served, follow_redirects=False) as client:
        client.get("/login")
        csrf = client.cookies.get("touchlens_login_csrf")
        form = {"name": "nobody", "password": "wrong password", "csrf": csrf}
        client.post("/login", data=form, headers={"X-Forwarded-For": "203.0.113.50"})
    assert _last(root, "sign-in-failed")["detail"]["address"] == "127.0.0.1"


# -- 5. logout ends the session however it is called ---------------------------------------------------------


@pytest.mark.slow
def test_regression_logout_without_its_csrf_token_ends_the_server_session(root: Path) -> None:
    app = create_app(root)
    cookie = _login(_client(app), "viewer", PASSWORD).cookies[SESSION_COOKIE]
    browser = TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie})
    assert browser.get("/api/me").status_code == 200
    answer = browser.post("/logout")  # no CSRF token at all
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert user_store.session_user(touchlens.open(root).meta_engine(), cookie) is None
    copied = TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie})
    assert copied.get("/api/me").status_code == 401
    assert _last(root, "sign-out")["actor"] == "viewer"


# -- 6. a password policy, and user names normalised and unique ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "password", [" " * 8, "\t \u3000 \n   ", "x" * 7, "x" * 1025], ids=["spaces", "blanks", "short", "long"]
)
def test_regression_blank_short_and_huge_passwords_are_refused(root: Path, password: str) -> None:
    with pytest.raises(user_store.CredentialError, match="password"):
        user_store.add_user(touchlens.open(root).meta_engine(), "ann", password, "viewer")


def test_regression_a_one_megabyte_password_is_refused_before_hashing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = touchlens.open(root).meta_engine()
    monkeypatch.setattr(user_store, "_hasher", Spy(refuse=True))
    with pytest.raises(user_store.CredentialError, match="at most 1024"):
        user_store.add_user(engine, "ann", "x" * 1_000_000, "viewer")
    assert user_store.authenticate(engine, "admin", "x" * 1_000_000) is None


@pytest.mark.slow
def test_regression_weak_passwords_get_422_from_the_api(root: Path) -> None:
    app = create_app(root)
    admin = _client(app)
    cookie = _login(admin, "admin", PASSWORD).cookies[SESSION_COOKIE]
    admin.cookies.set(SESSION_COOKIE, cookie)
    admin.headers["X-CSRF-Token"] = admin.get("/api/me").json()["csrf"]
    for password in (" " * 8, "y" * 2000):
        answer = admin.post("/api/users", json={"name": "ann", "password": password, "role": "viewer"})
        assert answer.status_code == 422, answer.text
        assert password not in answer.text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["admin ", " admin", "Admin", "ADMIN", "admin\u200b", "ad\u00admin", "admin\n"])
def test_regression_look_alike_user_names_are_refused(root: Path, name: str) -> None:
    engine = touchlens.open(root).meta_engine()
    with pytest.raises(user_store.CredentialError, match=r"user name|looks the same"):
        user_store.add_user(engine, name, "another password", "viewer")
    assert [u.name for u in user_store.list_users(engine)] == ["admin", "editor", "viewer"]
    assert user_store.authenticate(engine, "admin", PASSWORD) is not None  # admin's password is unchanged


@pytest.mark.slow
def test_a_compatibility_form_of_a_name_is_that_user(root: Path) -> None:
    engine = touchlens.open(root).meta_engine()
    assert user_store.add_user(engine, "ｖｉｅｗｅｒ", "a new password", "viewer") == "viewer"  # full-width: NFKC
    assert user_store.add_user(engine, "ﬁona", PASSWORD, "viewer") == "fiona"
    assert [u.name for u in user_store.list_users(engine)] == ["admin", "editor", "fiona", "viewer"]
    for typed in ("Viewer", " viewer ", "ＶＩＥＷＥＲ"):  # signing in with a look-alike finds the user
        assert user_store.authenticate(engine, typed, "a new password") == user_store.User("viewer", "viewer")


@pytest.mark.slow
def test_names_stored_before_the_policy_still_sign_in_and_can_be_changed(root: Path) -> None:
    engine = touchlens.open(root).meta_engine()
    with engine.begin() as conn:  # two legacy users a look-alike could confuse
        for name in ("Bob ", "bob"):
            hashed = user_store._hasher.hash(PASSWORD)
            conn.execute(sa.insert(users).values(name=name, password_hash=hashed, role="viewer"))
    assert user_store.authenticate(engine, "Bob ", PASSWORD) == user_store.User("Bob ", "viewer")
    assert user_store.authenticate(engine, "bob", PASSWORD) == user_store.User("bob", "viewer")
    assert user_store.authenticate(engine, "BOB", PASSWORD) is None  # ambiguous: neither
    assert user_store.add_user(engine, "Bob ", "a new password", "editor") == "Bob "
    assert user_store.authenticate(engine, "Bob ", "a new password") == user_store.User("Bob ", "editor")


@pytest.mark.slow
def test_the_cli_refuses_a_look_alike_name_clearly(root: Path, cli: Callable[..., Result]) -> None:
    result = cli("-w", root, "users", "add", "Editor", "--role", "admin", "--password", "long enough")
    assert result.code == 1
    assert "'Editor' looks the same as the existing user 'editor'" in result.err


def test_regression_the_server_creates_files_for_its_owner_only(
    root: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The red team's finding: DuckDB's journal, made while the server ran, was 0644 until the next open."""
    seen: list[int] = []

    def run(app: Any, **options: Any) -> None:
        current = os.umask(0o022)
        os.umask(current)
        seen.append(current)

    monkeypatch.setattr(uvicorn, "run", run)
    before = os.umask(0o022)
    os.umask(before)
    assert cli("-w", root, "serve", "--port", "8124").code == 0
    assert seen == [0o077]
    after = os.umask(before)
    assert after == before  # given back when the server stops
