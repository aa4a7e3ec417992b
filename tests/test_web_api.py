"""The REST API on a small hand-made workspace: who may call what (every route × every role), CSRF, sign-in,
edits that persist or are refused whole, uploads, the comments search, and JSON equal to the CLI's."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from touchlens.registry import ANALYSES
from touchlens.store import keys as key_store
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
    admin_token: str  # the admin's, read and write
    write_key: str  # an ingest key for /v1


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
    admin_token = user_store.add_token(engine, "admin", ("read", "write"))
    _, write_key = key_store.add_key(engine, "ingest", "tests", "live", "tests")
    engine.dispose()
    return Template(base / "ws", read_token, write_token, admin_token, write_key)


@dataclass
class Site:
    root: Path
    app: FastAPI
    template: Template

    def client(self, who: str = "anonymous") -> TestClient:
        """A client acting as `who`: anonymous, a role's session (sending its CSRF token), an API token, or the
        write key (as a bearer token, or as Basic auth's user name the way Segment's libraries send it)."""
        client = TestClient(self.app, follow_redirects=False)
        tokens = {"read_token": self.template.read_token, "write_token": self.template.write_token,
                  "admin_token": self.template.admin_token, "key_bearer": self.template.write_key}  # fmt: skip
        if who in tokens:
            client.headers["Authorization"] = f"Bearer {tokens[who]}"
        elif who == "key_basic":
            client.headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{self.template.write_key}:".encode()).decode()
            )
        elif who != "anonymous":
            session, csrf = user_store.start_session(self.app.state.web.ws.meta_engine(), user_store.User(who, who))
            client.cookies.set(SESSION_COOKIE, session)
            client.headers["X-CSRF-Token"] = csrf
        return client


@pytest.fixture
def site(template: Template, tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "ws"
    shutil.copytree(template.root, root)
    app = create_app(root)
    yield Site(root, app, template)
    if app.state.web.live is not None:  # an erasure started the live writer: stop its thread
        app.state.web.live.stop()


# -- the role matrix --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Who may call a route: `least` is public, a role, or "write key" (the /v1 endpoint's only credential)."""

    least: str
    writes: bool = False
    path: str = ""  # the request's path when the route's has parameters
    kwargs: dict[str, Any] = field(default_factory=dict)
    page: bool = False  # a page: anonymous is sent to sign in rather than answered 401


# (who) → (role, scopes) of the identities that are users
IDENTITIES = {
    "viewer": ("viewer", ("read", "write")),
    "editor": ("editor", ("read", "write")),
    "admin": ("admin", ("read", "write")),
    "read_token": ("admin", ("read",)),
    "write_token": ("editor", ("read", "write")),
    "admin_token": ("admin", ("read", "write")),
}
WHO = ("anonymous", *IDENTITIES, "key_bearer", "key_basic")
PAGE = Rule("viewer", page=True)
PUBLIC = Rule("public")
ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/api/me"): Rule("viewer"),
    ("GET", "/api/map"): Rule("viewer"),
    ("GET", "/api/touchpoints"): Rule("viewer"),
    ("GET", "/api/touchpoints/{key}"): Rule("viewer", path="/api/touchpoints/ad"),
    ("PATCH", "/api/touchpoints/{key}"): Rule("editor", True, "/api/touchpoints/ad", {"json": {"owner": "Ads"}}),
    ("PATCH", "/api/journeys/{journey}/stages/{stage}"): Rule(
        "editor", True, "/api/journeys/main/stages/find", {"json": {"emotion": 1}}
    ),
    ("GET", "/api/scorecard"): Rule("viewer"),
    ("GET", "/api/flows"): Rule("viewer"),
    ("GET", "/api/analyses"): Rule("viewer"),
    ("GET", "/api/analyses/{name}"): Rule("viewer", path="/api/analyses/weekdays"),
    ("GET", "/api/variants"): Rule("viewer", kwargs={"params": {"top": 3}}),
    ("GET", "/api/sankey"): Rule("viewer"),
    ("GET", "/api/paths"): Rule("viewer", kwargs={"params": {"from_": "ad"}}),
    ("GET", "/api/funnel"): Rule("viewer", kwargs={"params": {"steps": "ad,order"}}),
    ("GET", "/api/attribution"): Rule("viewer", kwargs={"params": {"model": "linear"}}),
    ("GET", "/api/feedback"): Rule("viewer"),
    ("GET", "/api/feedback/comments"): Rule("viewer"),
    ("GET", "/api/drivers"): Rule("viewer", kwargs={"params": {"outcome": "nps"}}),
    ("GET", "/api/insights"): Rule("viewer", kwargs={"params": {"sections": "gaps"}}),
    ("GET", "/api/health"): Rule("viewer"),
    ("GET", "/api/conformance"): Rule("viewer"),
    ("GET", "/api/trends"): Rule("viewer"),
    ("GET", "/api/roadmap"): Rule("viewer"),
    ("PATCH", "/api/roadmap/{key}"): Rule("editor", True, "/api/roadmap/faster_calls", {"json": {"horizon": "now"}}),
    ("POST", "/api/roadmap/suggest"): Rule("editor", True),
    ("POST", "/api/ingest/events"): Rule("editor", True),  # no file: 422 once allowed
    ("POST", "/api/ingest/feedback"): Rule("editor", True),
    ("GET", "/api/ingest/history"): Rule("viewer"),
    ("GET", "/api/quarantine"): Rule("viewer"),
    ("DELETE", "/api/quarantine"): Rule("editor", True),
    ("GET", "/api/unmapped"): Rule("viewer"),
    ("POST", "/api/touchpoints"): Rule(
        "editor", True, kwargs={"json": {"key": "chat", "name": "Chat", "event": "chat"}}
    ),
    ("GET", "/api/users"): Rule("admin"),
    ("POST", "/api/users"): Rule(
        "admin", True, kwargs={"json": {"name": "temp", "password": PASSWORD, "role": "viewer"}}
    ),
    ("DELETE", "/api/users/{name}"): Rule("admin", True, "/api/users/temp"),  # 404 after the first: still allowed
    ("DELETE", "/api/customers/{customer_id}"): Rule("admin", True, "/api/customers/nobody"),
    ("GET", "/api/audit"): Rule("admin"),
    ("POST", "/api/survey-links"): Rule("editor", True, kwargs={"json": {"touchpoint": "ad", "customer_id": "c1"}}),
    ("GET", "/api/cases"): Rule("viewer"),
    ("GET", "/api/cases/stats"): Rule("viewer"),
    ("GET", "/api/cases/{case_id}"): Rule("viewer", path="/api/cases/1"),  # none yet: 404, once past the door
    ("POST", "/api/cases/{case_id}/assign"): Rule("editor", True, "/api/cases/1/assign", {"json": {"assignee": "x"}}),
    ("POST", "/api/cases/{case_id}/close"): Rule("editor", True, "/api/cases/1/close", {"json": {"note": "done"}}),
    ("GET", "/api/alerts/rules"): Rule("viewer"),
    ("POST", "/api/alerts/rules"): Rule(
        "admin", True, kwargs={"json": {"name": "r", "kind": "health", "emails": ["owner@example.com"]}}
    ),
    ("DELETE", "/api/alerts/rules/{rule_id}"): Rule("admin", True, "/api/alerts/rules/999"),
    ("POST", "/api/alerts/rules/{rule_id}/test"): Rule("admin", True, "/api/alerts/rules/999/test"),
    ("GET", "/api/alerts"): Rule("viewer"),
    ("GET", "/api/proactive/queue"): Rule("editor"),
    ("POST", "/api/proactive/confirm"): Rule("editor", True, kwargs={"json": {"contacts": [{"contact_id": 1}]}}),
    ("GET", "/api/proactive/{rule}/effect"): Rule("viewer", path="/api/proactive/nothing/effect"),
    ("GET", "/alerts"): PAGE,
    ("POST", "/alerts"): Rule(
        "admin", True, kwargs={"data": {"name": "r", "kind": "health", "emails": "owner@example.com"}}, page=True
    ),
    ("POST", "/alerts/{rule_id}/test"): Rule("admin", True, "/alerts/999/test", page=True),
    ("POST", "/alerts/{rule_id}/remove"): Rule("admin", True, "/alerts/999/remove", page=True),
    ("POST", "/touchpoints/{key}/survey-link"): Rule(
        "editor", True, "/touchpoints/ad/survey-link", {"data": {"customer": "c1"}}, page=True
    ),
    ("GET", "/audits"): PAGE,
    ("POST", "/audits"): Rule("editor", True, kwargs={"data": {"journey": "nope", "auditor": "x"}}, page=True),
    ("GET", "/audits/compare"): Rule("viewer", kwargs={"params": {"journey": "main"}}, page=True),
    ("GET", "/audits/{audit_id}"): Rule("viewer", path="/audits/999", page=True),
    ("GET", "/audits/{audit_id}/photo/{touchpoint}"): Rule("viewer", path="/audits/999/photo/ad", page=True),
    # Public: an auditor's walkthrough, where the signed link is the permission (a made-up one: 404).
    ("GET", "/walk/{token}"): Rule("public", path="/walk/1.x.y"),
    ("GET", "/walk/{token}/done"): Rule("public", path="/walk/1.x.y/done"),
    ("GET", "/walk/{token}/{number}"): Rule("public", path="/walk/1.x.y/1"),
    ("POST", "/walk/{token}/{number}"): Rule("public", path="/walk/1.x.y/1", kwargs={"data": {"met": "yes"}}),
    ("GET", "/cases"): PAGE,
    ("GET", "/cases/{case_id}"): Rule("viewer", path="/cases/1", page=True),
    ("POST", "/cases/{case_id}/assign"): Rule(
        "editor", True, "/cases/1/assign", {"data": {"assignee": "x"}}, page=True
    ),
    ("POST", "/cases/{case_id}/close"): Rule("editor", True, "/cases/1/close", {"data": {"note": "done"}}, page=True),
    ("GET", "/"): PAGE,
    ("GET", "/canvas"): PAGE,
    ("GET", "/touchpoints/{key}"): Rule("viewer", path="/touchpoints/ad", page=True),
    ("GET", "/inventory"): PAGE,
    ("GET", "/inventory.csv"): PAGE,
    ("GET", "/matrix"): PAGE,
    ("GET", "/flows"): PAGE,
    ("GET", "/analyses/{name}"): Rule("viewer", path="/analyses/weekdays", page=True),
    ("GET", "/funnel"): PAGE,
    ("GET", "/attribution"): PAGE,
    ("GET", "/feedback"): PAGE,
    ("GET", "/insights"): PAGE,
    ("GET", "/roadmap"): PAGE,
    ("GET", "/data"): PAGE,
    # Public: the sign-in form and its answers, and Plotly's script; none holds any of the workspace's data.
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): Rule("public", kwargs={"data": {"name": "x", "password": "y", "csrf": "not the token"}}),
    ("POST", "/logout"): Rule("public", kwargs={"data": {"csrf": "not the token"}}),  # so no session ends here
    ("GET", "/vendor/plotly.min.js"): PUBLIC,
    # Public: a customer's survey page, where the signed link is the permission (a made-up one is refused, 400).
    ("GET", "/s/{token}"): Rule("public", path="/s/v1.not-a-link"),
    ("POST", "/s/{token}"): Rule("public", path="/s/v1.not-a-link", kwargs={"data": {"score": "5"}}),
    ("POST", "/s/{token}/comment"): Rule("public", path="/s/v1.not-a-link/comment", kwargs={"data": {"comment": "x"}}),
}
# Every route under /v1 (live ingestion) takes a write key and nothing else; `[]` is refused (400) before any
# event is stored, so what is checked is only who gets past authentication.
LIVE = Rule("write key", True, kwargs={"json": []})


def _rules(app: FastAPI) -> dict[tuple[str, str], Rule]:
    """The expected rule of every route the app serves: the table's, or LIVE for /v1."""
    return {**{r: LIVE for r in routes(app) if r[1].startswith("/v1/")}, **ROUTES}


def _expected(who: str, rule: Rule) -> set[str]:
    if rule.least == "public":
        return {"allowed"}
    if who.startswith("key_"):  # a write key sends events and reads nothing
        return {"allowed"} if rule.least == "write key" else {"401", "403"}
    if rule.least == "write key":
        return {"401"}
    if who == "anonymous":
        return {"sign-in"} if rule.page else {"401"}
    role, scopes = IDENTITIES[who]
    allowed = user_store.ROLES.index(role) >= user_store.ROLES.index(rule.least)
    return {"allowed"} if allowed and (not rule.writes or "write" in scopes) else {"403"}


def _outcome(response: Any) -> str:
    status = response.status_code
    if status in (401, 403):
        return str(status)
    if status == 303 and response.headers["location"].startswith("/login?next="):
        return "sign-in"
    return "allowed" if status < 500 else f"error {status}"


@pytest.mark.slow
def test_every_route_answers_each_role_as_the_rules_say(site: Site) -> None:
    served = routes(site.app)
    rules = _rules(site.app)
    assert served - set(rules) == set(), "a route of the app is missing from the role table"
    assert set(rules) - served == set(), "the role table names a route the app does not serve"
    clients = {who: site.client(who) for who in WHO}
    wrong = []
    for (method, route), rule in rules.items():
        for who in WHO:
            response = clients[who].request(method, rule.path or route, **rule.kwargs)
            got = _outcome(response)
            if got not in _expected(who, rule):
                wrong.append(f"{method} {route} as {who}: {response.status_code}, expected {_expected(who, rule)}")
            elif who.startswith("key_") and got != "allowed" and set(response.json()) != {"detail"}:
                wrong.append(f"{method} {route} as {who}: refused, but with more than a reason")
    assert wrong == []


def test_an_expired_or_unknown_credential_reads_nothing(site: Site) -> None:
    client = TestClient(site.app, follow_redirects=False)
    for auth in ("Bearer tl_not-a-token", "Bearer tlw_not-a-key", "Basic " + base64.b64encode(b"tlw_x:").decode()):
        for path in ("/api/map", "/canvas"):
            assert client.get(path, headers={"Authorization": auth}).status_code == 401, (auth, path)
    # Basic auth that is no write key may be a proxy's in front of the app: a browser is still sent to sign in.
    proxy = "Basic " + base64.b64encode(b"team:secret").decode()
    assert client.get("/canvas", headers={"Authorization": proxy}).headers["location"].startswith("/login")


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
    # A person's card is never replaced: a suggestion on its touchpoints is linked to it, its words and place kept.
    mine = [c for c in suggested["suggested"] if c["key"] == "faster_calls"]
    assert all(c["source"] == "person" and c["horizon"] == "now" for c in mine)
    assert bool(mine) == ("faster_calls" in suggested["kept"])
    assert all(set(c) >= {"key", "title", "kind", "touchpoints", "horizon", "score", "at_stake", "findings", "source",
                          "status"} for c in suggested["suggested"])  # fmt: skip


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
    monkeypatch.setattr(web_api.data, "UPLOAD_LIMIT", 100)
    assert client.post("/api/ingest/events", files=files).status_code == 413
    monkeypatch.setattr(web_api.base, "BODY_LIMIT", 100)
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


@pytest.mark.slow
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
        "/api/analyses/variants?top=2&session_gap=30m": ["analyze", "variants", "--top", "2", "--session-gap", "30m"],
        "/api/analyses/weekdays?count=customers": ["analyze", "weekdays", "--count", "customers"],
    }
    # The CLI first: the app keeps the events store open read-write for as long as it lives.
    printed = {url: json.loads(cli("-w", root, *args, "--json").out) for url, args in commands.items()}
    client = Site(root, create_app(root), template).client("viewer")
    for url, expected in printed.items():
        assert client.get(url).json() == expected, url


def test_every_registry_analysis_has_a_route_and_a_page(site: Site) -> None:
    client = site.client("viewer")
    listed = client.get("/api/analyses").json()["analyses"]
    assert [a["name"] for a in listed] == list(ANALYSES)
    for name in ANALYSES:
        page = client.get(f"/analyses/{name}")
        assert page.status_code == 200, name
        assert f"touchlens analyze {name}" in page.text
    week = client.get("/analyses/weekdays", params={"count": "customers"}).text
    assert "Mon" in week
    assert "busiest" in week
    wrong = client.get("/api/analyses/variants", params={"top": "many"})
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "top"
    assert "is not a number" in client.get("/analyses/variants", params={"top": "many"}).text
    assert client.get("/api/analyses/horoscope").status_code == 404


@pytest.mark.slow
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


def test_one_handler_answers_a_library_error_as_json_to_the_api_and_as_a_page_to_a_person(site: Site) -> None:
    from touchlens.errors import WorkspaceError
    from touchlens.limits import Busy

    def refuse() -> None:
        raise WorkspaceError("the map has no <b>conversion</b> outcome")

    def busy() -> None:
        raise Busy("three analyses are running", retry_after=7)

    for path, call in (("/api/test-refuse", refuse), ("/test-refuse", refuse), ("/test-busy", busy)):
        site.app.add_api_route(path, call, methods=["GET"])
    client = site.client("viewer")
    api = client.get("/api/test-refuse")
    assert (api.status_code, api.json()) == (409, {"detail": "the map has no <b>conversion</b> outcome"})
    page = client.get("/test-refuse")
    assert page.status_code == 409
    assert page.headers["content-type"].startswith("text/html")
    assert "the map has no &lt;b&gt;conversion&lt;/b&gt; outcome" in page.text  # the message, as text
    assert "<h1>Not ready</h1>" in page.text
    busy_page = client.get("/test-busy")
    assert (busy_page.status_code, busy_page.headers["retry-after"]) == (429, "7")


def test_the_data_page_maps_an_unmapped_event_and_clears_the_quarantine(site: Site) -> None:
    editor = site.client("editor")
    rows = "customer_id,ts,event\n" + "".join(f"c{i:02d},2026-01-09T10:0{i}:00Z,chat\n" for i in range(3))
    bad = "c99,not a time,chat\n"
    upload = editor.post("/api/ingest/events", files={"file": ("chat.csv", rows + bad, "text/csv")})
    assert upload.json()["unmapped_events"] == {"chat": 3}
    assert editor.get("/api/unmapped").json()["events"][0] | {"last_seen": None} == {
        "event": "chat", "events": 3, "customers": 3, "last_seen": None}  # fmt: skip
    page = editor.get("/data").text
    assert 'data-event="chat"' in page
    assert 'id="clear-quarantine"' in page
    seen_by_viewer = site.client("viewer").get("/data").text
    assert "chat" in seen_by_viewer
    assert "Create touchpoint" not in seen_by_viewer
    assert 'id="clear-quarantine"' not in seen_by_viewer
    taken = editor.post("/api/touchpoints", json={"key": "ad", "name": "Chat", "event": "chat"})
    assert taken.status_code == 422  # the key is the ad's: nothing stored
    made = editor.post("/api/touchpoints", json={"key": "chat", "name": "Chat", "event": "chat", "stage": "get"})
    assert (made.status_code, made.json()["mapped"], made.json()["touchpoint"]["stage"]) == (201, 3, "get")
    assert editor.get("/api/unmapped").json()["events"] == []
    claimed = editor.post("/api/touchpoints", json={"key": "chat2", "name": "Chat again", "event": "chat"})
    assert claimed.status_code == 422  # another touchpoint's rule already claims the event
    assert editor.get("/api/quarantine").json()["reasons"]
    assert 'id="count-quarantine">1<' in editor.get("/data").text  # cached until the quarantine changes
    assert editor.delete("/api/quarantine").json() == {"cleared": 1}
    assert 'id="count-quarantine">0<' in editor.get("/data").text
    assert editor.get("/api/quarantine").json()["reasons"] == []
    actions = [e["action"] for e in site.client("admin").get("/api/audit").json()[:3]]
    assert actions == ["quarantine-clear", "remap", "map-change"]


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
    for method, route in (r for r in ROUTES if r[1].startswith("/api/")):
        operation = schema["paths"][route][method.lower()]
        assert operation.get("description"), f"{method} {route} has no description"
    params = {p["name"]: p for p in schema["paths"]["/api/funnel"]["get"]["parameters"]}
    assert params["steps"]["required"]
    assert params["window"].get("description")


def test_every_endpoint_is_in_the_docs_with_its_role(site: Site) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "web.md").read_text(encoding="utf-8")
    for (method, route), rule in _rules(site.app).items():
        if route.startswith(("/api/", "/v1/")):
            assert f"| {method} | `{route}` | {rule.least}" in text, f"docs/web.md does not list {method} {route}"


@pytest.mark.slow
def test_the_touchpoint_page_marks_its_changes_and_shows_their_notes_as_text(site: Site) -> None:
    ws = site.app.state.web.ws
    change = ws.add_change("track", datetime(2026, 1, 20).date(), "<script>alert(1)</script> new page")
    page = site.client("viewer").get("/touchpoints/track")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; new page" in page.text
    assert "<script>alert(1)</script>" not in page.text
    trend = json.loads(page.text.split('id="trend-data">', 1)[1].split("</script>", 1)[0])
    assert trend["changes"][0]["id"] == change
