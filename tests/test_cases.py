"""Follow-up cases (issue 21, part 2): a low score or a negative comment opens one for the touchpoint's owner,
once; closing records the note; time to act and to close, and whether customers came back, per touchpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import EXAMPLES, write
from touchlens.cases import Case, follow_up
from touchlens.errors import BadOption, UnknownItem
from touchlens.web.app import create_app

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ws(tmp_path: Path) -> touchlens.Workspace:
    w = touchlens.init(tmp_path / "ws")
    w.import_map(EXAMPLES / "outdoor_retail.yaml")
    return w


def answers(tmp_path: Path, rows: list[tuple[str, datetime, str, int, str, str]]) -> Path:
    lines = ["customer_id,ts,metric,score,touchpoint,comment"]
    lines += [f'{c},{ts.isoformat()},{m},{s},{tp},"{comment}"' for c, ts, m, s, tp, comment in rows]
    return write(tmp_path / f"answers{len(rows)}.csv", "\n".join(lines) + "\n")


def test_low_scores_and_negative_comments_open_one_case_each_for_the_owner(
    ws: touchlens.Workspace, tmp_path: Path
) -> None:
    day = NOW - timedelta(days=1)
    rows = [
        ("low", day, "csat", 2, "delivered_sms", ""),  # low CSAT
        ("fine", day, "csat", 4, "delivered_sms", "Great, thanks"),  # happy: nothing
        ("angry", day, "csat", 4, "delivered_sms", "Terrible, rude and useless, I hate this awful service"),
        ("detractor", day, "nps", 6, "phone_support", ""),  # NPS 0-6
        ("promoter", day, "nps", 9, "phone_support", ""),
        ("effort", day, "ces", 6, "return_portal", ""),  # CES 5-7 is a lot of effort
        ("old", NOW - timedelta(days=60), "csat", 1, "delivered_sms", ""),  # too old to follow up
    ]
    ws.ingest_feedback([answers(tmp_path, rows)])
    found = {c.customer_id: c for c in ws.cases.list()}
    assert set(found) == {"low", "angry", "detractor", "effort"}
    assert found["low"].reason == "low score (2 of 5 CSAT)"
    assert found["angry"].reason == "negative comment"
    owner = next(t.owner for t in ws.map().touchpoints if t.key == "delivered_sms")
    assert found["low"].owner == owner
    assert found["low"].status == "open"
    assert found["low"].due - found["low"].opened_at == timedelta(days=2)
    ws.ingest_feedback([answers(tmp_path, rows)])  # the same file again: no case twice
    assert len(ws.cases.list("all")) == 4


def test_a_second_low_answer_while_a_case_is_open_adds_no_case(ws: touchlens.Workspace, tmp_path: Path) -> None:
    ws.ingest_feedback([answers(tmp_path, [("c", NOW - timedelta(hours=5), "csat", 1, "delivered_sms", "")])])
    more = [("c", NOW - timedelta(hours=5), "csat", 1, "delivered_sms", ""), ("c", NOW, "csat", 2, "delivered_sms", "")]
    ws.ingest_feedback([answers(tmp_path, more)])
    assert len(ws.cases.list("all")) == 1
    ws.cases.close(ws.cases.list()[0].id, "Called back")
    ws.ingest_feedback([answers(tmp_path, [*more, ("c", NOW, "csat", 1, "delivered_sms", "again")])])
    assert len(ws.cases.list("all")) == 2  # after the first closed, a new low answer is a new case


def test_a_low_survey_link_answer_opens_a_case_whose_page_shows_the_journey(ws: touchlens.Workspace) -> None:
    events = write(
        ws.root.parent / "e.csv",
        "customer_id,ts,event,channel,template\n"
        f"ann,{(NOW - timedelta(hours=3)).isoformat()},email_sent,email,order_confirmation\n"
        f"ann,{(NOW - timedelta(hours=1)).isoformat()},sms_sent,sms,delivered\n",
    )
    ws.ingest_events([events])
    url = ws.surveys.link("delivered_sms", "ann")
    ws.surveys.answer(url.rsplit("/s/", 1)[1], 1, "Parcel left in the rain")
    [case] = ws.cases.list()
    shown = ws.cases.show(case.id)
    assert shown.comment == "Parcel left in the rain"
    assert [e["touchpoint"] for e in shown.journey] == ["delivered_sms", "order_confirmation_email"]  # newest first
    assert shown.answers[0]["score"] == 1


def test_assigning_and_closing_record_who_when_and_the_note(ws: touchlens.Workspace, tmp_path: Path) -> None:
    ws.ingest_feedback([answers(tmp_path, [("c", NOW - timedelta(hours=2), "csat", 1, "delivered_sms", "")])])
    [case] = ws.cases.list()
    assigned = ws.cases.assign(case.id, "Dana", now=case.opened_at + timedelta(hours=3))
    assert (assigned.status, assigned.assignee) == ("in_progress", "Dana")
    with pytest.raises(BadOption, match="note"):
        ws.cases.close(case.id, "  ")
    closed = ws.cases.close(case.id, "Refunded the delivery fee", now=case.opened_at + timedelta(hours=10))
    assert (closed.status, closed.note) == ("closed", "Refunded the delivery fee")
    assert closed.first_action_at == case.opened_at + timedelta(hours=3)  # the assignment was the first action
    with pytest.raises(BadOption, match="closed"):
        ws.cases.assign(case.id, "Eve")
    assert ws.cases.list() == []
    assert [c.id for c in ws.cases.list("closed")] == [case.id]
    with pytest.raises(UnknownItem):
        ws.cases.show(999)
    [stats] = ws.cases.stats()
    assert (stats.opened, stats.closed, stats.hours_to_first_action, stats.hours_to_close) == (1, 1, 3.0, 10.0)


def test_came_back_counts_customers_with_an_event_after_their_case_closed(
    ws: touchlens.Workspace, tmp_path: Path
) -> None:
    rows = [(c, NOW - timedelta(days=3), "csat", 1, "delivered_sms", "") for c in ("back", "gone")]
    ws.ingest_feedback([answers(tmp_path, rows)])
    for case in ws.cases.list():
        ws.cases.close(case.id, "Apologised", now=NOW - timedelta(days=2))
    ws.ingest_events([write(tmp_path / "later.csv", f"customer_id,ts,event\nback,{NOW.isoformat()},page_view\n")])
    [stats] = ws.cases.stats()
    assert (stats.closed, stats.came_back, stats.came_back_share) == (2, 1, 0.5)


def test_follow_up_medians_by_hand() -> None:
    def case(i: int, tp: str, acted: float | None, closed: float | None) -> Case:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        return Case(
            i, tp, f"c{i}", "csat", 1, None, "low", at, at, None, None, "closed" if closed else "open",
            at + timedelta(days=2), None if acted is None else at + timedelta(hours=acted),
            None if closed is None else at + timedelta(hours=closed), None,
        )  # fmt: skip

    cases = [
        case(1, "a", 1, 4),
        case(2, "a", 3, 8),
        case(3, "a", 8, None),
        case(4, "a", None, None),
        case(5, "b", 2, 2),
    ]
    a, b = follow_up(cases, {1: True, 2: False, 5: True})
    assert (a.touchpoint, a.opened, a.open_now, a.closed) == ("a", 4, 2, 2)
    assert (a.hours_to_first_action, a.hours_to_close) == (3.0, 6.0)  # medians of (1, 3, 8) and (4, 8)
    assert (a.came_back, a.came_back_share) == (1, 0.5)
    assert (b.opened, b.came_back_share) == (1, 1.0)


def test_erasure_deletes_the_customers_cases(ws: touchlens.Workspace, tmp_path: Path) -> None:
    rows = [(c, NOW, "csat", 1, "delivered_sms", "") for c in ("erase-me", "keep")]
    ws.ingest_feedback([answers(tmp_path, rows)])
    ws.forget(["erase-me"])
    assert [c.customer_id for c in ws.cases.list("all")] == ["keep"]


def test_cases_can_be_turned_off(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    touchlens.init(root)
    write(root / "touchlens.toml", "[cases]\nopen = false\n")
    ws = touchlens.open(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    ws.ingest_feedback([answers(tmp_path, [("c", NOW, "csat", 1, "delivered_sms", "")])])
    assert ws.cases.list("all") == []


def test_cases_commands(ws: touchlens.Workspace, tmp_path: Path, cli: Any) -> None:
    ws.ingest_feedback([answers(tmp_path, [("c", NOW, "csat", 1, "delivered_sms", "Late")])])
    root = ws.root
    listed = cli("-w", root, "cases", "list", "--json")
    assert listed.code == 0
    [case] = json.loads(listed.out)
    assert (case["customer_id"], case["status"]) == ("c", "open")
    assert cli("-w", root, "cases", "assign", str(case["id"]), "Dana", "--due", "2030-01-02").code == 0
    bad = cli("-w", root, "cases", "assign", str(case["id"]), "Dana", "--due", "soon")
    assert bad.code == 1
    assert "--due" in bad.err
    assert cli("-w", root, "cases", "close", str(case["id"]), "--note", "Sent a voucher").code == 0
    shown = json.loads(cli("-w", root, "cases", "show", str(case["id"]), "--json").out)
    assert (shown["status"], shown["note"], shown["assignee"]) == ("closed", "Sent a voucher", "Dana")
    stats = cli("-w", root, "cases", "stats")
    assert stats.code == 0
    assert "delivered_sms" in stats.out
    assert cli("-w", root, "cases", "list", "--status", "bogus").code == 1


# -- the pages and the API ----------------------------------------------------------------------------------


def session(client: TestClient, ws: touchlens.Workspace, name: str, role: str) -> str:
    """Sign `client` in as a new user with `role`; the session's CSRF token."""
    from touchlens.store import users as user_store
    from touchlens.web.security import SESSION_COOKIE

    engine = ws.meta_engine()
    user_store.add_user(engine, name, "a-long-password-1", role)
    cookie, csrf = user_store.start_session(engine, user_store.User(name, role))
    client.cookies.set(SESSION_COOKIE, cookie)
    return csrf


def test_the_case_pages_list_show_and_close_a_case(ws: touchlens.Workspace, tmp_path: Path) -> None:
    ws.ingest_feedback([answers(tmp_path, [("c-7", NOW, "csat", 1, "delivered_sms", "<b>Late</b> again")])])
    [case] = ws.cases.list()
    with TestClient(create_app(ws.root), follow_redirects=False) as client:
        csrf = session(client, ws, "ed", "editor")
        listed = client.get("/cases")
        assert listed.status_code == 200
        assert f'href="/cases/{case.id}"' in listed.text
        assert "low score (1 of 5 CSAT)" in listed.text
        page = client.get(f"/cases/{case.id}")
        assert "&lt;b&gt;Late&lt;/b&gt; again" in page.text  # what the customer said, as text
        assert 'action="/cases/' in page.text
        refused = client.post(f"/cases/{case.id}/close", data={"note": "x"})  # no CSRF token
        assert refused.status_code == 403
        closed = client.post(f"/cases/{case.id}/close", data={"note": "Refunded the fee", "csrf": csrf})
        assert (closed.status_code, closed.headers["location"]) == (303, f"/cases/{case.id}")
        assert "Refunded the fee" in client.get(f"/cases/{case.id}").text
        assert client.get("/api/cases?status=closed").json()[0]["note"] == "Refunded the fee"
        assert client.get("/api/cases/999").status_code == 404
        stats = client.get("/api/cases/stats").json()
        assert (stats[0]["touchpoint"], stats[0]["closed"]) == ("delivered_sms", 1)


def test_a_viewer_reads_cases_but_cannot_act_on_them(ws: touchlens.Workspace, tmp_path: Path) -> None:
    ws.ingest_feedback([answers(tmp_path, [("c-8", NOW, "csat", 2, "delivered_sms", "")])])
    [case] = ws.cases.list()
    with TestClient(create_app(ws.root), follow_redirects=False) as client:
        csrf = session(client, ws, "vi", "viewer")
        page = client.get(f"/cases/{case.id}")
        assert page.status_code == 200
        assert 'action="/cases/' not in page.text
        assert client.post(f"/cases/{case.id}/assign", data={"assignee": "me", "csrf": csrf}).status_code == 403
    assert ws.cases.list()[0].assignee is None


def test_a_comment_after_a_one_click_score_reaches_its_case_or_opens_one(ws: touchlens.Workspace) -> None:
    low = ws.surveys.link("delivered_sms", "low").rsplit("/s/", 1)[1]
    ws.surveys.answer(low, 1)
    assert [c.comment for c in ws.cases.list()] == [None]
    ws.surveys.comment(low, "Soaked through")
    assert [c.comment for c in ws.cases.list()] == ["Soaked through"]
    fair = ws.surveys.link("delivered_sms", "fair").rsplit("/s/", 1)[1]
    ws.surveys.answer(fair, 4)
    assert len(ws.cases.list()) == 1  # a fair score: nothing to follow up yet
    ws.surveys.comment(fair, "Actually the driver was rude and awful, terrible experience")
    assert {c.customer_id: c.reason for c in ws.cases.list()}["fair"] == "negative comment"
