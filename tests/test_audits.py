"""Walkthrough audits (issue 22, part 4): a journey walked touchpoint by touchpoint through a link limited to the
audit; each step recorded against the map's expectations; audits compared per stage with the design and the
data; exported for the record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import write
from touchlens.audits import LinkRefused
from touchlens.errors import BadOption, UnknownItem
from touchlens.web.app import create_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MAP = {
    "name": "Shop",
    "personas": [{"key": "new"}, {"key": "loyal"}],
    "journeys": [
        {"key": "first", "persona": "new", "stages": [{"key": "find", "emotion": 1}, {"key": "buy", "emotion": 2}]},
        {"key": "again", "persona": "loyal", "stages": [{"key": "buy"}]},
    ],
    "touchpoints": [
        {"key": "ad", "name": "Search ad", "stage": "find", "expectations": "Shows the price"},
        {"key": "checkout", "stage": "buy", "expectations": "Three steps at most"},
        {"key": "loyalty_offer", "stage": "buy", "personas": ["loyal"]},
        {"key": "receipt", "stage": "buy"},
    ],
}


@pytest.fixture
def ws(tmp_path: Path) -> touchlens.Workspace:
    w = touchlens.init(tmp_path / "ws")
    w.import_map(write(tmp_path / "map.json", json.dumps(MAP)))
    return w


def token_of(link: str) -> str:
    return link.rsplit("/walk/", 1)[1]


def walk(ws: touchlens.Workspace, token: str, emotions: list[int]) -> None:
    for number, emotion in enumerate(emotions, 1):
        following = ws.audits.record(token, number, {"met": "yes", "emotion": str(emotion), "think": f"t{number}"})
        assert following == (number + 1 if number < len(emotions) else None)


def test_a_walkthrough_follows_the_journey_for_its_persona_and_finishes(ws: touchlens.Workspace) -> None:
    audit_id, link = ws.audits.start("first", "Olga (outsider)")
    token = token_of(link)
    steps = [ws.audits.step(token, n).touchpoint.key for n in (1, 2, 3)]
    assert steps == ["ad", "checkout", "receipt"]  # by stage; the loyal persona's offer is not on this journey
    first = ws.audits.step(token, 1)
    assert (first.number, first.of, first.touchpoint.expectations) == (1, 3, "Shows the price")
    walk(ws, token, [1, -2, 0])
    shown = ws.audits.show(audit_id)
    assert shown["finished_at"] is not None
    assert [s["recorded"]["emotion"] for s in shown["steps"]] == [1, -2, 0]
    assert "nonce" not in shown
    ws.audits.record(token, 2, {"met": "no", "emotion": "-1", "annoyances": "Asked for my address twice"})
    again = ws.audits.show(audit_id)["steps"][1]["recorded"]
    assert (again["met"], again["emotion"], again["annoyances"]) == (False, -1, "Asked for my address twice")


def test_the_link_opens_its_own_audit_only(ws: touchlens.Workspace) -> None:
    a, link_a = ws.audits.start("first", "A")
    b, _ = ws.audits.start("first", "B")
    token = token_of(link_a)
    assert ws.audits.opened(token)["id"] == a
    head, _, signature = token.rpartition(".")
    audit_id, _, nonce = head.partition(".")
    for forged in (f"{b}.{nonce}.{signature}", f"{audit_id}.{nonce}x.{signature}", token[:-2] + "AA", "1", ""):
        with pytest.raises(LinkRefused):
            ws.audits.opened(forged)
    with pytest.raises(UnknownItem):
        ws.audits.step(token, 9)


def test_answers_are_checked(ws: touchlens.Workspace) -> None:
    _, link = ws.audits.start("first", "A")
    with pytest.raises(BadOption, match="emotion"):
        ws.audits.record(token_of(link), 1, {"emotion": "5"})
    with pytest.raises(BadOption, match="PNG or JPEG"):
        ws.audits.record(token_of(link), 1, {"emotion": "1"}, b"GIF89a....")
    with pytest.raises(UnknownItem, match="journeys are: first, again"):
        ws.audits.start("nope", "A")
    with pytest.raises(BadOption, match="--auditor"):
        ws.audits.start("first", " ")


def test_audits_compare_per_stage_across_walkthroughs(ws: touchlens.Workspace) -> None:
    for emotions in ([1, -2, 0], [2, -1, 0]):
        _, link = ws.audits.start("first", "someone")
        walk(ws, token_of(link), emotions)
    per_stage = ws.audits.audited_emotion("first")
    assert per_stage["find"] == (1.5, 2)  # the ad: +1 and +2
    assert per_stage["buy"] == (pytest.approx(-0.75), 4)  # checkout −2, −1 and the receipt 0, 0


def test_a_photo_is_kept_and_served_to_the_team_only(ws: touchlens.Workspace) -> None:
    audit_id, link = ws.audits.start("first", "A")
    with TestClient(create_app(ws.root), follow_redirects=False) as client:
        token = token_of(link)
        page = client.get(f"/walk/{token}/1")
        assert page.status_code == 200
        assert "Shows the price" in page.text
        assert "<script" not in page.text
        sent = client.post(f"/walk/{token}/1", data={"met": "yes", "emotion": "2", "feel": "<b>Calm</b>"},
                           files={"photo": ("shot.png", PNG, "image/png")})  # fmt: skip
        assert (sent.status_code, sent.headers["location"]) == (303, f"/walk/{token}/2")
        assert client.get(f"/walk/{token}").headers["location"] == f"/walk/{token}/2"  # where they left off
        assert client.get(f"/audits/{audit_id}/photo/ad").status_code == 303  # not signed in: sign in first
        assert client.get("/walk/1.x.y/1").status_code == 404
        _sign_in(client, ws)
        assert client.get(f"/audits/{audit_id}/photo/ad").content == PNG
        record = client.get(f"/audits/{audit_id}")
        assert "&lt;b&gt;Calm&lt;/b&gt;" in record.text
        canvas = client.get("/canvas?journey=first")
        assert 'id="emotion-compare"' in canvas.text
        assert "+2.0" in canvas.text  # the audited emotion of the find stage


def _sign_in(client: TestClient, ws: touchlens.Workspace) -> None:
    from touchlens.store import users as user_store
    from touchlens.web.security import SESSION_COOKIE

    engine = client.app.state.web.ws.meta_engine()  # type: ignore[attr-defined]
    user_store.add_user(engine, "vi", "a-long-password-1", "viewer")
    cookie, _ = user_store.start_session(engine, user_store.User("vi", "viewer"))
    client.cookies.set(SESSION_COOKIE, cookie)


def test_walkthrough_commands(ws: touchlens.Workspace, cli: Any) -> None:
    started = cli("-w", ws.root, "walkthrough", "start", "first", "--auditor", "Olga")
    assert started.code == 0
    walk(ws, token_of(started.out.strip()), [1, 0, -1])
    listed = json.loads(cli("-w", ws.root, "walkthrough", "list", "--json").out)
    assert [(a["journey"], a["auditor"]) for a in listed] == [("first", "Olga")]
    exported = json.loads(cli("-w", ws.root, "walkthrough", "export").out)
    assert [s["recorded"]["think"] for s in exported[0]["steps"]] == ["t1", "t2", "t3"]
    assert cli("-w", ws.root, "walkthrough", "start", "nope", "--auditor", "x").code == 1
