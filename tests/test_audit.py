"""The audit log: every sign-in, sign-out and change, through the web app or the CLI, leaves exactly one entry
naming who did it, what they did and to what; admins read it through `GET /api/audit` and `touchlens audit`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import ROOT, Result, workspace_with, write
from touchlens import editing
from touchlens.cli_privacy import cli_actor
from touchlens.cli_web import demo_admin
from touchlens.errors import BadOption, MapError
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
FEEDBACK = "customer_id,ts,metric,score\nc1,2026-01-02T11:00:00Z,csat,4\nc2,2026-01-03T11:00:00Z,nps,9\n"
PEOPLE = "customer_id,segment\nc1,pro\nc2,new\n"


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


@pytest.mark.slow
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


def test_uploads_and_erasures_through_the_app_are_audited_by_whoever_made_them(web: tuple[Path, FastAPI]) -> None:
    root, app = web
    before = len(_entries(root))
    upload = {"file": ("new.csv", EVENTS.replace(",c", ",n").replace("\nc", "\nn"), "text/csv")}
    assert _as(app, "editor").post("/api/ingest/events", files=upload).is_success
    entry = _one_new(root, before)
    assert (entry["actor"], entry["action"], entry["target"]) == ("editor", "ingest", "events")
    assert entry["detail"].items() >= {"files": ["new.csv"], "accepted": 18}.items()
    assert _as(app, "admin").delete("/api/customers/n1").is_success
    erased = _one_new(root, before + 1)
    assert (erased["actor"], erased["action"], erased["target"]) == ("admin", "erase", "customer")
    assert "n1" not in json.dumps(erased)


@pytest.mark.slow
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


@pytest.mark.slow
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
        (["ingest", "events", str(write(tmp_path / "more.csv", EVENTS))], "ingest", "events",
         {"files": ["more.csv"], "read": 18, "accepted": 0, "duplicates": 18}),
        (["ingest", "feedback", str(write(tmp_path / "fb.csv", FEEDBACK))], "ingest", "feedback",
         {"files": ["fb.csv"], "accepted": 2}),
        (["ingest", "customers", str(write(tmp_path / "people.csv", PEOPLE))], "ingest", "customers",
         {"files": ["people.csv"], "read": 2}),
        (["remap"], "remap", "events", {"unmapped": 0, "mapped": 18}),
        (["quarantine", "clear"], "quarantine-clear", "quarantine", {"rows": 0}),
        (["change", "add", "ad", "--date", "2026-01-03"], "change-add", "touchpoint ad", {"date": "2026-01-03"}),
        (["keys", "add", "--label", "shop"], "key-create", "key 1", {"scope": "ingest", "label": "shop"}),
        (["keys", "revoke", "1"], "key-revoke", "key 1", {}),
        (["forget", "c1"], "erase", "customer", {"suppressed": True}),
        (["forget", "--lift", "c1"], "suppression-lift", "customer", {"count": 1}),
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
        ("ingest", "events"),
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


# -- a library caller -----------------------------------------------------------------------------------------

Change = Callable[[touchlens.Workspace, Path], object]
LIBRARY_CHANGES: list[tuple[str, Change, str, str, dict[str, Any]]] = [
    ("import_map", lambda ws, d: ws.import_map(write(d / "again.yaml", MAP), actor="ann"), "map-change", "map",
     {"file": "again.yaml", "merge": False}),
    ("save_map", lambda ws, d: ws.save_map(ws.map(), actor="ann"), "map-change", "map", {}),
    ("ingest_events", lambda ws, d: ws.ingest_events([write(d / "e2.csv", EVENTS)], actor="ann"), "ingest",
     "events", {"files": ["e2.csv"], "format": "auto", "duplicates": 18}),
    ("ingest_feedback", lambda ws, d: ws.ingest_feedback([write(d / "f.csv", FEEDBACK)], actor="ann"), "ingest",
     "feedback", {"files": ["f.csv"], "accepted": 2}),
    ("ingest_customers", lambda ws, d: ws.ingest_customers(write(d / "p.csv", PEOPLE), actor="ann"), "ingest",
     "customers", {"files": ["p.csv"], "read": 2}),
    ("remap", lambda ws, d: ws.remap(actor="ann"), "remap", "events", {"mapped": 18}),
    ("clear_quarantine", lambda ws, d: ws.clear_quarantine(actor="ann"), "quarantine-clear", "quarantine",
     {"rows": 0}),
    ("add_change", lambda ws, d: ws.add_change("ad", date(2026, 1, 3), "new copy", actor="ann"), "change-add",
     "touchpoint ad", {"id": 1, "date": "2026-01-03"}),
    ("roadmap_suggest", lambda ws, d: ws.roadmap_suggest(actor="ann"), "roadmap-change", "roadmap", {}),
    ("roadmap_update", lambda ws, d: ws.roadmap_update("faster_ads", horizon="now", actor="ann"),
     "roadmap-change", "opportunity faster_ads", {"horizon": "now"}),
    ("forget", lambda ws, d: ws.forget(["c1"], actor="ann"), "erase", "customer", {"suppressed": True}),
    ("users.add", lambda ws, d: ws.users.add("bob", PASSWORD, "viewer", actor="ann"), "user-change", "user bob",
     {"change": "add", "role": "viewer"}),
    ("users.issue_token", lambda ws, d: ws.users.issue_token("ed", ("read",), "ci", actor="ann"), "token-create",
     "user ed", {"scopes": ["read"], "label": "ci", "days": 90}),
    ("keys.create", lambda ws, d: ws.keys.create(label="shop", actor="ann"), "key-create", "key 1",
     {"scope": "ingest", "label": "shop", "source": "live"}),
    ("backup.create", lambda ws, d: ws.backup.create(d / "b.tar.gz", actor="ann"), "backup", "b.tar.gz", {}),
    ("editing.update_touchpoint",
     lambda ws, d: editing.update_touchpoint(ws, "ad", editing.TouchpointChanges(owner="Ads"), actor="ann"),
     "map-change", "touchpoint ad", {"fields": ["owner"]}),
    ("editing.update_stage",
     lambda ws, d: editing.update_stage(ws, "main", "find", editing.StageChanges(emotion=1), actor="ann"),
     "map-change", "stage main/find", {"fields": ["emotion"]}),
]  # fmt: skip


@pytest.fixture
def library(cli: Callable[..., Result], tmp_path: Path) -> tuple[Path, touchlens.Workspace]:
    """A workspace with the map, the events and a user `ed`, as a script using the library sees it."""
    root = workspace_with(cli, tmp_path, MAP, EVENTS)
    ws = touchlens.open(root)
    ws.users.add("ed", PASSWORD, "editor")
    return root, ws


@pytest.mark.parametrize(("name", "change", "action", "target", "detail"), LIBRARY_CHANGES,
                         ids=[c[0] for c in LIBRARY_CHANGES])  # fmt: skip
def test_each_change_through_the_library_leaves_one_entry_by_the_actor_it_names(
    library: tuple[Path, touchlens.Workspace],
    tmp_path: Path,
    name: str,
    change: Change,
    action: str,
    target: str,
    detail: dict[str, Any],
) -> None:
    root, ws = library
    before = len(_entries(root))
    change(ws, tmp_path)
    entry = _one_new(root, before)
    assert (entry["actor"], entry["action"], entry["target"]) == ("ann", action, target), name
    assert entry["detail"].items() >= detail.items(), name
    assert PASSWORD not in json.dumps(entry)


def test_a_library_caller_that_names_nobody_is_audited_as_library(library: tuple[Path, touchlens.Workspace]) -> None:
    root, ws = library
    before = len(_entries(root))
    ws.import_map(write(root.parent / "again.yaml", MAP))
    entry = _one_new(root, before)
    assert (entry["actor"], entry["action"], entry["target"]) == ("library", "map-change", "map")
    assert entry["detail"]["file"] == "again.yaml"  # the file's name, never where it lay


def test_undoing_through_the_library_is_audited_like_doing(library: tuple[Path, touchlens.Workspace]) -> None:
    root, ws = library
    _, kept = ws.users.issue_token("ed", ("read",), actor="ann")
    key_id, _ = ws.keys.create(actor="ann")
    ws.forget(["c1"], actor="ann")
    before = len(_entries(root))
    assert ws.users.revoke_token(kept.id, actor="ann") == kept
    assert ws.keys.revoke(key_id, actor="ann")
    assert ws.lift_suppression(["c1"], actor="ann") == [True]
    assert ws.users.remove("ed", actor="ann")
    found = _entries(root)[: len(_entries(root)) - before]
    assert [(e["actor"], e["action"], e["target"]) for e in reversed(found)] == [
        ("ann", "token-revoke", "user ed"),
        ("ann", "key-revoke", f"key {key_id}"),
        ("ann", "suppression-lift", "customer"),
        ("ann", "user-change", "user ed"),
    ]
    assert found[-1]["detail"] == {"id": kept.id, "label": ""}


def test_a_refused_or_empty_change_through_the_library_leaves_no_entry(
    library: tuple[Path, touchlens.Workspace],
) -> None:
    root, ws = library
    before = len(_entries(root))
    broken = MAP.replace("channel: web, match: {event: ad}", "channel: sms")
    with pytest.raises(MapError):
        ws.import_map(write(root.parent / "broken.yaml", broken))
    with pytest.raises(MapError):
        editing.update_touchpoint(ws, "ad", editing.TouchpointChanges(stage="nope"), actor="ann")
    assert not ws.users.remove("nobody", actor="ann")
    assert ws.users.revoke_token("nothing", actor="ann") is None
    assert not ws.keys.revoke(99, actor="ann")
    editing.update_touchpoint(ws, "ad", editing.TouchpointChanges(channel="web"), actor="ann")  # as it was
    assert len(_entries(root)) == before


def test_the_facade_reads_the_log_filtered_and_limited(library: tuple[Path, touchlens.Workspace]) -> None:
    _, ws = library
    ws.roadmap_update("faster_ads", horizon="now", actor="ann")
    assert [e["action"] for e in ws.audit_entries(limit=2)] == ["roadmap-change", "user-change"]
    assert [e["target"] for e in ws.audit_entries(action="map-change")] == ["map"]
    with pytest.raises(BadOption, match="actions are: sign-in"):
        ws.audit_entries(action="nope")


def test_the_command_line_reaches_the_stores_only_through_the_facade() -> None:
    """So that what the CLI changes is audited as any library caller's change is: by the facade itself."""
    for module in sorted((ROOT / "touchlens").glob("cli*.py")):
        assert "touchlens.store" not in module.read_text(encoding="utf-8"), module.name
