"""The audit log: every sign-in, sign-out and change, through the web app or the CLI, leaves exactly one entry
naming who did it, what they did and to what; admins read it through `GET /api/audit` and `touchlens audit`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import Result, workspace_with, write
from touchlens.cli_privacy import cli_actor
from touchlens.cli_web import demo_admin
from touchlens.store import audit
from touchlens.store import users as user_store
from touchlens.web.app import create_app
from touchlens.web.security import SESSION_COOKIE

MAP = """
name: Shop
channels: [{key: web, kind: digital}]
personas: [{key: pro}]
journeys: [{key: main, persona: pro, stages: [{key: find}, {key: buy}]}]
touchpoints:
  - {key: ad, stage: find, channel: web, match: {event: ad}}
  - {key: order, stage: buy, channel: web, match: {event: order}}
outcomes: {conversion: {event: order}}
opportunities: [{key: faster_ads, title: Faster ads, touchpoints: [ad], horizon: next, impact: 3, effort: 2}]
"""
EVENTS = "customer_id,ts,event\n" + "".join(
    f"c{i},2026-01-0{1 + i % 5}T10:00:00Z,ad\n" + (f"c{i},2026-01-0{1 + i % 5}T10:05:00Z,order\n" if i % 2 else "")
    for i in range(12)
)
PASSWORD = "correct horse battery"


def _entries(root: Path) -> list[dict[str, Any]]:
    return audit.entries(touchlens.open(root).meta_engine(), 10_000)


def _one_new(root: Path, before: int) -> dict[str, Any]:
    """The only entry added since there were `before`; fails when there is none or more than one."""
    found = _entries(root)
    assert len(found) == before + 1, found[: len(found) - before]
    return found[0]


# -- the web app --------------------------------------------------------------------------------------------


@pytest.fixture
def web(cli: Callable[..., Result], tmp_path: Path) -> tuple[Path, FastAPI]:
    root = workspace_with(cli, tmp_path, MAP, EVENTS)
    for role in user_store.ROLES:
        user_store.add_user(touchlens.open(root).meta_engine(), role, PASSWORD, role)
    return root, create_app(root)


def _as(app: FastAPI, who: str) -> TestClient:
    """A session started in the store, so signing in adds no entry of its own."""
    client = TestClient(app, follow_redirects=False)
    session, csrf = user_store.start_session(app.state.web.ws.meta_engine(), user_store.User(who, who))
    client.cookies.set(SESSION_COOKIE, session)
    client.headers["X-CSRF-Token"] = csrf
    return client


CHANGES = [
    ("editor", "PATCH", "/api/touchpoints/ad", {"owner": "Ads"}, "map-change", "touchpoint ad", {"fields": ["owner"]}),
    ("editor", "PATCH", "/api/journeys/main/stages/find", {"emotion": 1, "goal": "Find"}, "map-change",
     "stage main/find", {"fields": ["emotion", "goal"]}),
    ("editor", "PATCH", "/api/roadmap/faster_ads", {"horizon": "now"}, "roadmap-change", "opportunity faster_ads",
     {"horizon": "now"}),
    ("editor", "POST", "/api/roadmap/suggest", None, "roadmap-change", "roadmap", {}),
    ("admin", "POST", "/api/users", {"name": "ann", "password": PASSWORD, "role": "editor"}, "user-change",
     "user ann", {"change": "add", "role": "editor"}),
    ("admin", "POST", "/api/users", {"name": "viewer", "password": PASSWORD, "role": "editor"}, "user-change",
     "user viewer", {"change": "update", "role": "editor"}),
    ("admin", "DELETE", "/api/users/viewer", None, "user-change", "user viewer", {"change": "remove"}),
]  # fmt: skip


@pytest.mark.parametrize(("who", "method", "path", "body", "action", "target", "detail"), CHANGES,
                         ids=[f"{c[1]} {c[2]}" for c in CHANGES])  # fmt: skip
def test_each_change_through_the_app_leaves_one_entry(
    web: tuple[Path, FastAPI], who: str, method: str, path: str, body: Any, action: str, target: str, detail: Any
) -> None:
    root, app = web
    before = len(_entries(root))
    response = _as(app, who).request(method, path, json=body)
    assert response.is_success, response.text
    entry = _one_new(root, before)
    assert (entry["actor"], entry["action"], entry["target"]) == (who, action, target)
    assert entry["detail"].items() >= detail.items()
    assert PASSWORD not in json.dumps(entry)


def test_a_refused_change_leaves_no_entry(web: tuple[Path, FastAPI]) -> None:
    root, app = web
    before = len(_entries(root))
    assert _as(app, "editor").patch("/api/touchpoints/ad", json={"stage": "nope"}).status_code == 422
    assert _as(app, "viewer").patch("/api/touchpoints/ad", json={"owner": "x"}).status_code == 403
    assert (
        _as(app, "editor").post("/api/users", json={"name": "x", "password": PASSWORD, "role": "admin"}).status_code
        == 403
    )
    assert len(_entries(root)) == before


def _login(client: TestClient, name: str, password: str) -> Any:
    client.get("/login")
    return client.post(
        "/login", data={"name": name, "password": password, "csrf": client.cookies.get("touchlens_login_csrf")}
    )


def test_signing_in_failing_and_signing_out_are_each_recorded(web: tuple[Path, FastAPI]) -> None:
    root, app = web
    client = TestClient(app, follow_redirects=False)
    before = len(_entries(root))
    _login(client, "editor", "not the password")
    failed = _one_new(root, before)
    assert (failed["actor"], failed["action"], failed["target"]) == ("anonymous", "sign-in-failed", "user editor")
    assert failed["detail"] == {"address": "testclient"}
    _login(client, "editor", PASSWORD)
    signed_in = _one_new(root, before + 1)
    assert (signed_in["actor"], signed_in["action"], signed_in["target"]) == ("editor", "sign-in", "user editor")
    csrf = client.get("/api/me").json()["csrf"]
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    out = _one_new(root, before + 2)
    assert (out["actor"], out["action"], out["target"]) == ("editor", "sign-out", "user editor")


def test_admins_read_the_log_filtered_and_limited(web: tuple[Path, FastAPI]) -> None:
    _, app = web
    editor, admin = _as(app, "editor"), _as(app, "admin")
    for owner in ("A", "B", "C"):
        editor.patch("/api/touchpoints/ad", json={"owner": owner})
    editor.patch("/api/roadmap/faster_ads", json={"status": "planned"})
    changes = admin.get("/api/audit", params={"action": "map-change"}).json()
    assert [e["action"] for e in changes] == ["map-change"] * 4  # three edits here, the CLI's map import first
    assert [e["target"] for e in changes[:3]] == ["touchpoint ad"] * 3
    newest = admin.get("/api/audit", params={"limit": 1}).json()
    assert [(e["actor"], e["action"], e["target"]) for e in newest] == [
        ("editor", "roadmap-change", "opportunity faster_ads")
    ]
    assert set(newest[0]) == {"id", "at", "actor", "action", "target", "detail"}
    assert admin.get("/api/audit", params={"action": "nope"}).status_code == 422
    assert editor.get("/api/audit").status_code == 403


# -- the command line ---------------------------------------------------------------------------------------


def test_each_change_through_the_cli_leaves_one_entry(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = workspace_with(cli, tmp_path, MAP, EVENTS)
    me = cli_actor()
    assert me.startswith("cli:")
    steps: list[tuple[list[str], str, str, dict[str, Any]]] = [
        (["users", "add", "ann", "--role", "editor", "--password", PASSWORD], "user-change", "user ann",
         {"change": "add", "role": "editor"}),
        (["users", "add", "ann", "--role", "admin", "--password", PASSWORD], "user-change", "user ann",
         {"change": "update", "role": "admin"}),
        (["tokens", "add", "ann", "--scope", "read", "--scope", "write", "--label", "ci"], "token-create",
         "user ann", {"scopes": ["read", "write"], "label": "ci"}),
        (["map", "import", str(write(tmp_path / "again.yaml", MAP))], "map-change", "map",
         {"file": "again.yaml", "merge": False}),
        (["roadmap", "suggest"], "roadmap-change", "roadmap", {}),
        (["roadmap", "move", "faster_ads", "now"], "roadmap-change", "opportunity faster_ads", {"horizon": "now"}),
        (["roadmap", "done", "faster_ads"], "roadmap-change", "opportunity faster_ads", {"status": "done"}),
        (["users", "remove", "ann"], "user-change", "user ann", {"change": "remove"}),
    ]  # fmt: skip
    printed = []
    for args, action, target, detail in steps:
        before = len(_entries(root))
        result = cli("-w", root, *args)
        assert result.code == 0, (args, result.err)
        printed.append(result.out)
        entry = _one_new(root, before)
        assert (entry["actor"], entry["action"], entry["target"]) == (me, action, target), args
        assert entry["detail"].items() >= detail.items(), args
    token = printed[2].strip()
    assert token.startswith("tl_")
    assert token not in json.dumps(_entries(root))
    assert PASSWORD not in json.dumps(_entries(root))


def test_one_time_admin_credentials_are_recorded_without_the_password(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    root = workspace_with(cli, tmp_path, MAP)
    for change in ("add", "update"):  # `serve --admin ops` and `demo` make (or remake) an admin this way
        before = len(_entries(root))
        _, password = demo_admin(root, "ops")
        entry = _one_new(root, before)
        assert (entry["actor"], entry["action"], entry["target"]) == (cli_actor(), "user-change", "user ops")
        assert entry["detail"] == {"role": "admin", "change": change}
        assert password not in json.dumps(entry)


def test_the_audit_command_lists_filters_and_limits(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = workspace_with(cli, tmp_path, MAP, EVENTS)
    cli("-w", root, "roadmap", "move", "faster_ads", "now")
    cli("-w", root, "roadmap", "move", "faster_ads", "later")
    listed = json.loads(cli("-w", root, "audit", "--json").out)
    assert [(e["action"], e["target"]) for e in listed] == [
        ("roadmap-change", "opportunity faster_ads"),
        ("roadmap-change", "opportunity faster_ads"),
        ("map-change", "map"),
    ]
    assert listed[0]["detail"] == {"horizon": "later"}
    only = json.loads(cli("-w", root, "audit", "--json", "--action", "map-change").out)
    assert [e["target"] for e in only] == ["map"]
    assert len(json.loads(cli("-w", root, "audit", "--json", "--limit", "1").out)) == 1
    table = cli("-w", root, "audit")
    assert table.code == 0
    assert "roadmap-change" in table.out
    assert "later" in table.out
    wrong = cli("-w", root, "audit", "--action", "nope")
    assert wrong.code == 1
    assert "sign-in" in wrong.err  # names the actions there are
