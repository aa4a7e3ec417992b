"""The REST API on a small hand-made workspace: who may call what (every route × every role), CSRF, sign-in,
edits that persist or are refused whole, uploads, the comments search, and JSON equal to the CLI's."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import write
from touchlens import editing
from touchlens.model.map import Stage, Touchpoint
from touchlens.store import users as user_store
from touchlens.web import api as web_api
from touchlens.web.app import create_app, routes
from touchlens.web.security import SESSION_COOKIE

MAP = """
name: Shop
channels: [{key: web, kind: digital}, {key: phone, kind: human}]
personas: [{key: pro}]
journeys:
  - key: main
    persona: pro
    stages: [{key: find}, {key: buy}, {key: get}]
touchpoints:
  - {key: ad, stage: find, channel: web, match: {event: ad}}
  - {key: order, stage: buy, channel: web, match: {event: order}}
  - {key: track, stage: get, channel: web, match: {event: track}}
  - {key: call, stage: get, channel: phone, match: {event: call}}
outcomes:
  conversion: {event: order}
opportunities:
  - {key: faster_calls, title: Answer calls faster, touchpoints: [call], horizon: next, impact: 3, effort: 2}
"""
T0 = datetime(2026, 1, 5, 9, 0)
PASSWORD = "correct horse battery"
INJECTION = "%' OR 1=1 --"
COMMENTS = [
    ("track", 2, "Tracking never updated, refund was slow"),
    ("track", 5, "Tracking page was clear"),
    ("call", 1, f"The agent typed 100{INJECTION} into my order notes"),
    ("call", 4, "Quick and friendly call"),
    ("order", 5, "Easy checkout"),
]


def _events(n: int = 24) -> str:
    lines = ["customer_id,ts,event"]
    for i in range(n):
        t = T0 + timedelta(hours=i)
        steps = ["ad", "order", "track"] if i % 3 else ["ad", "track", "call", "track"]
        lines += [f"c{i:02d},{(t + timedelta(minutes=10 * k)).isoformat()}Z,{e}" for k, e in enumerate(steps)]
    return "\n".join(lines) + "\n"


def _feedback() -> str:
    lines = ["customer_id,ts,metric,score,touchpoint,comment"]
    for i, (tp, score, text) in enumerate(COMMENTS):
        lines.append(f'c{i:02d},{(T0 + timedelta(days=1, hours=i)).isoformat()}Z,csat,{score},{tp},"{text}"')
    return "\n".join(lines) + "\n"


@dataclass
class Template:
    root: Path
    read_token: str  # the admin's, read scope only
    write_token: str  # the editor's, read and write


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Built once per module with the library (no app holds it open); each test works on a copy."""
    base = tmp_path_factory.mktemp("template")
    ws = touchlens.init(base / "ws")
    ws.import_map(write(base / "m.yaml", MAP))
    ws.ingest_events([write(base / "e.csv", _events())])
    ws.ingest_feedback([write(base / "f.csv", _feedback())])
    engine = ws.meta_engine()
    for role in user_store.ROLES:
        user_store.add_user(engine, role, PASSWORD, role)
    read_token = user_store.add_token(engine, "admin", ("read",))
    write_token = user_store.add_token(engine, "editor", ("read", "write"))
    engine.dispose()
    return Template(base / "ws", read_token, write_token)


@dataclass
class Site:
    root: Path
    app: FastAPI
    template: Template

    def client(self, who: str = "anonymous") -> TestClient:
        """A client acting as `who`: anonymous, a role's session (sending its CSRF token), or read_token."""
        client = TestClient(self.app, follow_redirects=False)
        if who == "read_token":
            client.headers["Authorization"] = f"Bearer {self.template.read_token}"
        elif who == "write_token":
            client.headers["Authorization"] = f"Bearer {self.template.write_token}"
        elif who != "anonymous":
            session, csrf = user_store.start_session(self.app.state.web.ws.meta_engine(), user_store.User(who, who))
            client.cookies.set(SESSION_COOKIE, session)
            client.headers["X-CSRF-Token"] = csrf
        return client


@pytest.fixture
def site(template: Template, tmp_path: Path) -> Site:
    root = tmp_path / "ws"
    shutil.copytree(template.root, root)
    return Site(root, create_app(root), template)


# -- the role matrix --------------------------------------------------------------------------------------

ROLES = ("anonymous", "viewer", "editor", "admin", "read_token")
# (method, route) → (least role, whether it writes, the request's path and keyword arguments)
ROUTES: dict[tuple[str, str], tuple[str, bool, str, dict[str, Any]]] = {
    ("GET", "/api/me"): ("viewer", False, "/api/me", {}),
    ("GET", "/api/map"): ("viewer", False, "/api/map", {}),
    ("GET", "/api/touchpoints"): ("viewer", False, "/api/touchpoints", {}),
    ("GET", "/api/touchpoints/{key}"): ("viewer", False, "/api/touchpoints/ad", {}),
    ("PATCH", "/api/touchpoints/{key}"): ("editor", True, "/api/touchpoints/ad", {"json": {"owner": "Ads"}}),
    ("PATCH", "/api/journeys/{journey}/stages/{stage}"): (
        "editor",
        True,
        "/api/journeys/main/stages/find",
        {"json": {"emotion": 1}},
    ),
    ("GET", "/api/scorecard"): ("viewer", False, "/api/scorecard", {}),
    ("GET", "/api/flows"): ("viewer", False, "/api/flows", {}),
    ("GET", "/api/variants"): ("viewer", False, "/api/variants", {"params": {"top": 3}}),
    ("GET", "/api/sankey"): ("viewer", False, "/api/sankey", {}),
    ("GET", "/api/paths"): ("viewer", False, "/api/paths", {"params": {"from_": "ad"}}),
    ("GET", "/api/funnel"): ("viewer", False, "/api/funnel", {"params": {"steps": "ad,order"}}),
    ("GET", "/api/attribution"): ("viewer", False, "/api/attribution", {"params": {"model": "linear"}}),
    ("GET", "/api/feedback"): ("viewer", False, "/api/feedback", {}),
    ("GET", "/api/feedback/comments"): ("viewer", False, "/api/feedback/comments", {}),
    ("GET", "/api/drivers"): ("viewer", False, "/api/drivers", {"params": {"outcome": "nps"}}),
    ("GET", "/api/insights"): ("viewer", False, "/api/insights", {"params": {"sections": "gaps"}}),
    ("GET", "/api/conformance"): ("viewer", False, "/api/conformance", {}),
    ("GET", "/api/trends"): ("viewer", False, "/api/trends", {}),
    ("GET", "/api/roadmap"): ("viewer", False, "/api/roadmap", {}),
    ("PATCH", "/api/roadmap/{key}"): ("editor", True, "/api/roadmap/faster_calls", {"json": {"horizon": "now"}}),
    ("POST", "/api/roadmap/suggest"): ("editor", True, "/api/roadmap/suggest", {}),
    ("POST", "/api/ingest/events"): ("editor", True, "/api/ingest/events", {}),  # no file: 422 once allowed
    ("POST", "/api/ingest/feedback"): ("editor", True, "/api/ingest/feedback", {}),
    ("GET", "/api/ingest/history"): ("viewer", False, "/api/ingest/history", {}),
    ("GET", "/api/quarantine"): ("viewer", False, "/api/quarantine", {}),
    ("GET", "/api/users"): ("admin", False, "/api/users", {}),
    ("POST", "/api/users"): (
        "admin",
        True,
        "/api/users",
        {"json": {"name": "temp", "password": PASSWORD, "role": "viewer"}},
    ),
    ("DELETE", "/api/users/{name}"): ("admin", True, "/api/users/temp", {}),
}


def _expected(who: str, least: str, writes: bool) -> str:
    if who == "anonymous":
        return "401"
    role = "admin" if who == "read_token" else who
    allowed = user_store.ROLES.index(role) >= user_store.ROLES.index(least) and not (writes and who == "read_token")
    return "allowed" if allowed else "403"


def test_every_route_answers_each_role_as_the_rules_say(site: Site) -> None:
    served = {(m, path) for m, path in routes(site.app) if path.startswith("/api") and path != "/api/docs"}
    assert served - set(ROUTES) == set(), "a route of the app is missing from the role table"
    assert set(ROUTES) - served == set(), "the role table names a route the app does not serve"
    clients = {who: site.client(who) for who in ROLES}
    wrong = []
    for (method, _), (least, writes, path, kwargs) in ROUTES.items():
        for who in ROLES:
            status = clients[who].request(method, path, **kwargs).status_code
            got = str(status) if status in (401, 403) else "allowed" if status < 500 else f"error {status}"
            if got != _expected(who, least, writes):
                wrong.append(f"{method} {path} as {who}: {status}, expected {_expected(who, least, writes)}")
    assert wrong == []


# -- sessions, CSRF and sign-in ---------------------------------------------------------------------------


def _login(client: TestClient, name: str, password: str, next_: str = "/") -> Any:
    client.get("/login")
    token = client.cookies.get("touchlens_login_csrf")
    return client.post("/login", data={"name": name, "password": password, "csrf": token, "next": next_})


def test_a_cookie_session_changes_nothing_without_its_csrf_token(site: Site) -> None:
    client = TestClient(site.app, follow_redirects=False)
    assert _login(client, "editor", PASSWORD).status_code == 303
    refused = client.patch("/api/touchpoints/ad", json={"owner": "Mallory"})
    assert refused.status_code == 403
    assert (
        client.patch("/api/touchpoints/ad", json={"owner": "Mallory"}, headers={"X-CSRF-Token": "guess"}).status_code
        == 403
    )
    assert client.get("/api/touchpoints/ad").json()["touchpoint"].get("owner") is None
    csrf = client.get("/api/me").json()["csrf"]
    assert client.patch("/api/touchpoints/ad", json={"owner": "Ads"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    # A form upload may carry the token as a `csrf` field instead of the header.
    upload = {"file": ("more.csv", "customer_id,ts,event\nz1,2026-02-01T10:00:00Z,ad\n", "text/csv")}
    assert client.post("/api/ingest/events", files=upload).status_code == 403
    assert client.post("/api/ingest/events", files=upload, data={"csrf": csrf}).status_code == 200


def test_a_bearer_token_writes_without_csrf(site: Site) -> None:
    response = site.client("write_token").patch("/api/touchpoints/ad", json={"owner": "Ads"})
    assert response.status_code == 200
    assert response.json()["owner"] == "Ads"


def test_a_wrong_password_signs_nobody_in(site: Site) -> None:
    client = TestClient(site.app, follow_redirects=False)
    response = _login(client, "editor", "not the password")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?failed=true")
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_the_site(site: Site, target: str) -> None:
    response = _login(TestClient(site.app, follow_redirects=False), "viewer", PASSWORD, target)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/")
    assert location[1:2] not in ("/", "\\")  # a path on this site, never //host or /\\host


# -- edits --------------------------------------------------------------------------------------------------


def test_a_touchpoint_edit_persists(site: Site) -> None:
    client = site.client("editor")
    changed = client.patch("/api/touchpoints/track", json={"expectations": "Know where the parcel is.", "owner": "Ops"})
    assert changed.status_code == 200
    assert changed.json()["expectations"] == "Know where the parcel is."
    detail = client.get("/api/touchpoints/track").json()
    assert detail["touchpoint"]["expectations"] == "Know where the parcel is."
    assert detail["score"]["touchpoint"] == "track"
    assert detail["feedback"]["key"] == "track"
    assert touchlens.open(site.root).map().touchpoint("track").owner == "Ops"  # type: ignore[union-attr]
    # null clears a field
    assert client.patch("/api/touchpoints/track", json={"owner": None}).json().get("owner") is None


def test_an_invalid_edit_is_refused_whole(site: Site) -> None:
    client = site.client("editor")
    before = client.get("/api/map").json()
    response = client.patch("/api/touchpoints/ad", json={"stage": "nope", "owner": "Ads"})
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["path"] == "touchpoints[0].stage"
    assert "unknown stage 'nope'" in problem["message"]
    assert client.patch("/api/touchpoints/ad", json={"key": "renamed"}).status_code == 422
    assert client.patch("/api/touchpoints/ad", json={"channel": "not a key!"}).status_code == 422
    assert client.patch("/api/journeys/main/stages/find", json={"emotion": 5}).status_code == 422
    assert client.get("/api/map").json() == before
    assert client.patch("/api/touchpoints/nope", json={"owner": "x"}).status_code == 404
    assert client.patch("/api/journeys/nope/stages/find", json={"goal": "x"}).status_code == 404
    assert client.patch("/api/journeys/main/stages/nope", json={"goal": "x"}).status_code == 404
    assert client.get("/api/touchpoints/nope").status_code == 404


def test_a_stage_edit_changes_that_journey_stage(site: Site) -> None:
    client = site.client("editor")
    body = {
        "goal": "Get it fast",
        "tasks": ["Pay"],
        "emotion": -2,
        "weaknesses": ["Slow"],
        "opportunities": ["1-click"],
    }
    response = client.patch("/api/journeys/main/stages/buy", json=body)
    assert response.status_code == 200
    stage = client.get("/api/map").json()["journeys"][0]["stages"][1]
    assert stage == {"key": "buy", **body, "questions": []}


def test_the_roadmap_moves_and_suggests(site: Site) -> None:
    client = site.client("editor")
    moved = client.patch("/api/roadmap/faster_calls", json={"horizon": "now", "status": "planned"})
    assert moved.status_code == 200
    assert (moved.json()["horizon"], moved.json()["status"], moved.json()["source"]) == ("now", "planned", "person")
    assert client.get("/api/roadmap").json()[0]["key"] == "faster_calls"
    assert client.patch("/api/roadmap/nope", json={"horizon": "now"}).status_code == 404
    assert client.patch("/api/roadmap/faster_calls", json={"horizon": "someday"}).status_code == 422
    suggested = client.post("/api/roadmap/suggest").json()
    assert set(suggested) == {"suggested", "kept"}
    assert "faster_calls" not in [o["key"] for o in suggested["suggested"]]


def test_edit_bodies_cover_every_field_but_the_key() -> None:
    assert set(editing.TouchpointChanges.model_fields) == set(Touchpoint.model_fields) - {"key"}
    assert set(editing.StageChanges.model_fields) == set(Stage.model_fields) - {"key"}


# -- data -------------------------------------------------------------------------------------------------


def _uploads_left() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("touchlens-upload-*"))


def test_an_upload_is_ingested_logged_and_deleted(site: Site) -> None:
    client = site.client("editor")
    history = client.get("/api/ingest/history").json()["ingests"]
    customers = client.get("/api/scorecard").json()["customers"]
    left = _uploads_left()
    text = "customer_id,ts,event\nnew1,2026-02-01T10:00:00Z,ad\nnew1,2026-02-01T10:05:00Z,order\nnew2,bad,ad\n"
    response = client.post("/api/ingest/events", files={"file": ("../../etc/passwd.csv", text, "text/csv")})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["read"], report["accepted"], report["quarantined"]) == (3, 2, 1)
    assert report["by_touchpoint"] == {"ad": 1, "order": 1}
    assert "files" not in report
    after = client.get("/api/ingest/history").json()["ingests"]
    assert len(after) == len(history) + 1
    assert after[0]["accepted"] == 2
    # Stored in a generated folder under the client's name cut to its last part: never the client's path.
    assert after[0]["file"] == "passwd.csv"
    assert report["file"] == "passwd.csv"
    assert client.get("/api/scorecard").json()["customers"] == customers + 1  # the cache saw the new data
    assert client.get("/api/quarantine").json()["reasons"][0]["count"] == 1
    assert _uploads_left() == left
    feedback = "customer_id,ts,metric,score,touchpoint,comment\nnew1,2026-02-01T11:00:00Z,csat,5,order,Great\n"
    response = client.post("/api/ingest/feedback", files={"file": ("f.csv", feedback, "text/csv")})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert client.post("/api/ingest/events", files={"file": ("e.csv", "x")}, data={"format": "nope"}).status_code == 422
    jsonl = '{"customer_id": "new3", "ts": "2026-02-02T10:00:00Z", "event": "track"}\n'
    response = client.post("/api/ingest/events", files={"file": ("e.txt", jsonl)}, data={"format": "jsonl"})
    assert response.json()["accepted"] == 1  # the format field wins over the name's .txt


def test_uploads_are_size_limited(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    client = site.client("editor")
    files = {"file": ("e.csv", "customer_id,ts,event\n" + "c1,2026-02-01T10:00:00Z,ad\n" * 50, "text/csv")}
    monkeypatch.setattr(web_api, "UPLOAD_LIMIT", 100)
    assert client.post("/api/ingest/events", files=files).status_code == 413
    monkeypatch.setattr(web_api, "BODY_LIMIT", 100)
    assert client.post("/api/ingest/events", files=files).status_code == 413
    assert len(client.get("/api/ingest/history").json()["ingests"]) == 2  # the template's two, nothing new


def test_the_comments_search_takes_text_as_text(site: Site) -> None:
    client = site.client("viewer")

    def found(**params: Any) -> list[str]:
        response = client.get("/api/feedback/comments", params=params)
        assert response.status_code == 200
        return [c["comment"] for c in response.json()["comments"]]

    assert found(q=INJECTION) == [COMMENTS[2][2]]
    assert found(q="' OR '1'='1") == []
    assert found(q="_") == []  # a LIKE wildcard matches only itself
    assert sorted(found(q="TRACKING")) == sorted([COMMENTS[0][2], COMMENTS[1][2]])
    assert found(touchpoint="call", min_score=3) == ["Quick and friendly call"]
    assert found(max_score=1) == [COMMENTS[2][2]]
    newest = client.get("/api/feedback/comments", params={"limit": 1}).json()["comments"]
    assert [c["comment"] for c in newest] == [COMMENTS[-1][2]]
    assert set(newest[0]) >= {"score", "metric", "sentiment", "touchpoint", "ts"}


# -- shapes and errors ------------------------------------------------------------------------------------


def test_answers_are_what_the_cli_prints(cli, template: Template, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(template.root, root)
    commands = {
        "/api/scorecard": ["analyze", "scorecard"],
        "/api/feedback?by=stage": ["analyze", "feedback", "--by", "stage"],
        "/api/flows": ["analyze", "flows"],
        "/api/funnel?steps=ad,order,track": ["analyze", "funnel", "--steps", "ad,order,track"],
        "/api/attribution?model=linear&by=channel": ["analyze", "attribution", "--model", "linear", "--by", "channel"],
        "/api/roadmap": ["roadmap", "list"],
        "/api/touchpoints": ["touchpoints"],
    }
    # The CLI first: the app keeps the events store open read-write for as long as it lives.
    printed = {url: json.loads(cli("-w", root, *args, "--json").out) for url, args in commands.items()}
    client = Site(root, create_app(root), template).client("viewer")
    for url, expected in printed.items():
        assert client.get(url).json() == expected, url


def test_library_errors_become_http_answers(site: Site, tmp_path: Path) -> None:
    client = site.client("viewer")
    assert client.get("/api/scorecard", params={"by": "nope"}).status_code == 422
    assert client.get("/api/scorecard", params={"window": "soon"}).status_code == 422
    assert client.get("/api/funnel", params={"steps": "ad,nope"}).json()["detail"].startswith("unknown touchpoint")
    assert client.get("/api/attribution", params={"model": "magic"}).status_code == 422
    assert client.get("/api/paths").status_code == 422
    assert client.get("/api/variants", params={"top": 0}).status_code == 422
    empty = touchlens.init(tmp_path / "empty")
    user_store.add_user(empty.meta_engine(), "viewer", PASSWORD, "viewer")
    bare = Site(empty.root, create_app(empty.root), site.template).client("viewer")
    assert bare.get("/api/touchpoints").json() == {"touchpoints": []}
    assert bare.get("/api/insights").status_code == 409  # no map yet


def test_admins_manage_users(site: Site) -> None:
    client = site.client("admin")
    assert client.post("/api/users", json={"name": "ann", "password": PASSWORD, "role": "editor"}).status_code == 201
    assert {"name": "ann", "role": "editor"} in client.get("/api/users").json()
    assert client.post("/api/users", json={"name": "bob", "password": PASSWORD, "role": "owner"}).status_code == 422
    assert client.post("/api/users", json={"name": "bob", "password": "short", "role": "viewer"}).status_code == 422
    assert _login(TestClient(site.app, follow_redirects=False), "ann", PASSWORD).status_code == 303
    assert client.delete("/api/users/admin").status_code == 409  # not yourself
    assert client.delete("/api/users/ann").status_code == 200
    assert client.delete("/api/users/ann").status_code == 404
    assert "ann" not in [u["name"] for u in client.get("/api/users").json()]


def test_the_openapi_document_describes_every_endpoint(site: Site) -> None:
    schema = site.client().get("/api/openapi.json").json()
    for (method, route), _ in ROUTES.items():
        operation = schema["paths"][route][method.lower()]
        assert operation.get("description"), f"{method} {route} has no description"
    params = {p["name"]: p for p in schema["paths"]["/api/funnel"]["get"]["parameters"]}
    assert params["steps"]["required"]
    assert params["window"].get("description")


def test_every_endpoint_is_in_the_docs_with_its_role() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "web.md").read_text(encoding="utf-8")
    for (method, route), (least, _, _, _) in ROUTES.items():
        assert f"| {method} | `{route}` | {least}" in text, f"docs/web.md does not list {method} {route}"


def test_the_touchpoint_page_marks_its_changes_and_shows_their_notes_as_text(site: Site) -> None:
    ws = site.app.state.web.ws
    change = ws.add_change("track", datetime(2026, 1, 20).date(), "<script>alert(1)</script> new page")
    page = site.client("viewer").get("/touchpoints/track")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; new page" in page.text
    assert "<script>alert(1)</script>" not in page.text
    trend = json.loads(page.text.split('id="trend-data">', 1)[1].split("</script>", 1)[0])
    assert trend["changes"][0]["id"] == change
