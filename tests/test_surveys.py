"""Survey links: signed per customer and touchpoint, answered once, refused when replayed, tampered with, expired
or the customer was erased; answers land through the feedback pipeline (issue 21, part 1)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

import touchlens
from tests.conftest import EXAMPLES, Result, write
from touchlens.errors import BadOption
from touchlens.ingest.survey_links import LinkError, new_link, sign, verify
from touchlens.web.app import create_app

SECRET = b"k" * 32
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>\"'&"


def token_of(url: str) -> str:
    return url.rsplit("/s/", 1)[1]


def feedback(ws: touchlens.Workspace, where: str = "TRUE") -> list[dict[str, Any]]:
    with ws.events() as con:
        cursor = con.execute(f"SELECT * FROM feedback WHERE source = 'survey' AND {where} ORDER BY ts")
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture
def ws(tmp_path: Path) -> touchlens.Workspace:
    w = touchlens.init(tmp_path / "ws")
    w.import_map(EXAMPLES / "outdoor_retail.yaml")
    return w


# -- the token ----------------------------------------------------------------------------------------------


def test_a_signed_link_verifies_to_what_was_signed() -> None:
    link = new_link("homepage", "c-1", "nps", NOW, NOW + timedelta(days=1))
    assert verify(sign(link, SECRET), SECRET, NOW) == link
    assert link.scale == (0, 10)


@pytest.mark.parametrize("part", [1, 2])
def test_changing_any_character_of_a_token_voids_it(part: int) -> None:
    token = sign(new_link("homepage", "c-1", "csat", NOW, NOW + timedelta(days=1)), SECRET)
    pieces = token.split(".")
    for i in range(len(pieces[part])):
        changed = list(pieces[part])
        changed[i] = "A" if changed[i] != "A" else "B"
        forged = ".".join([*pieces[:part], "".join(changed), *pieces[part + 1 :]])
        with pytest.raises(LinkError) as caught:
            verify(forged, SECRET, NOW)
        assert caught.value.reason == "invalid"


def test_a_payload_re_signed_with_another_secret_or_for_another_customer_is_refused() -> None:
    link = new_link("homepage", "c-1", "csat", NOW, NOW + timedelta(days=1))
    with pytest.raises(LinkError):
        verify(sign(link, b"x" * 32), SECRET, NOW)
    # Someone swaps the customer in the readable payload but keeps the signature.
    token = sign(link, SECRET)
    version, body, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["c"] = "c-2"
    other = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(LinkError, match="altered"):
        verify(f"{version}.{other}.{signature}", SECRET, NOW)


def test_a_link_expires_at_its_expiry_and_not_before() -> None:
    link = new_link("homepage", "c-1", "csat", NOW, NOW + timedelta(days=30))
    token = sign(link, SECRET)
    assert verify(token, SECRET, NOW + timedelta(days=30, seconds=-1)) == link
    with pytest.raises(LinkError) as caught:
        verify(token, SECRET, NOW + timedelta(days=30))
    assert caught.value.reason == "expired"


@given(st.text(max_size=200))
def test_no_random_text_verifies(text: str) -> None:
    with pytest.raises(LinkError):
        verify(text, SECRET, NOW)


# -- answers through the facade -----------------------------------------------------------------------------


def test_a_link_answered_once_stores_one_response_and_a_replay_is_refused(ws: touchlens.Workspace) -> None:
    token = token_of(ws.surveys.link("delivered_sms", "c-1"))
    before = ws.data_version()
    ws.surveys.answer(token, "2", "Box was soaked, contact me at ann@example.com")
    with pytest.raises(LinkError) as caught:
        ws.surveys.answer(token, "5")
    assert caught.value.reason == "answered"
    rows = feedback(ws)
    assert len(rows) == 1
    row = rows[0]
    assert (row["customer_id"], row["touchpoint"], row["metric"], row["score"]) == ("c-1", "delivered_sms", "csat", 2)
    assert row["channel"] == "sms"  # the touchpoint's, from the map
    assert (row["scale_min"], row["scale_max"]) == (1, 5)
    assert "ann@example.com" not in row["comment"]  # scrubbed like every imported comment
    assert row["sentiment"] is not None
    assert ws.data_version() != before  # caches keyed by the version see it at once


def test_an_answer_counts_in_the_touchpoints_score(ws: touchlens.Workspace) -> None:
    for customer, score in [("a", 5), ("b", 4), ("c", 1), ("d", 2)]:
        ws.surveys.answer(token_of(ws.surveys.link("delivered_sms", customer)), score)
    row = ws.feedback().row("delivered_sms")
    assert row is not None
    assert row.responses == 4
    assert row.csat.to_dict()["value"] == pytest.approx(0.5)


def test_a_score_off_the_scale_is_refused_and_nothing_is_stored(ws: touchlens.Workspace) -> None:
    token = token_of(ws.surveys.link("delivered_sms", "c-1", metric="nps"))
    for bad in ("11", "-1", "4.5", "ten", ""):
        with pytest.raises(BadOption, match="0 to 10"):
            ws.surveys.answer(token, bad)
    assert feedback(ws) == []
    ws.surveys.answer(token, "10")
    assert [r["score"] for r in feedback(ws)] == [10]


def test_an_erased_customers_link_is_refused(ws: touchlens.Workspace) -> None:
    token = token_of(ws.surveys.link("delivered_sms", "c-1"))
    ws.forget(["c-1"])
    with pytest.raises(LinkError) as caught:
        ws.surveys.question(token)
    assert caught.value.reason == "erased"
    with pytest.raises(LinkError):
        ws.surveys.answer(token, "5")
    assert feedback(ws) == []


def test_an_erasure_without_suppression_still_voids_links_made_before_it(ws: touchlens.Workspace) -> None:
    old = token_of(ws.surveys.link("delivered_sms", "c-1", now=datetime.now(UTC) - timedelta(minutes=5)))
    ws.forget(["c-1"], suppress=False)
    with pytest.raises(LinkError, match="no longer works"):
        ws.surveys.answer(old, "5")
    ws.surveys.answer(token_of(ws.surveys.link("delivered_sms", "c-1")), "5")  # a new link after it works
    assert len(feedback(ws)) == 1


def test_an_open_link_takes_many_answers_each_from_its_own_anonymous_customer(ws: touchlens.Workspace) -> None:
    token = token_of(ws.surveys.link("in_store_fitting"))
    ws.surveys.answer(token, 5)
    ws.surveys.answer(token, 3)
    rows = feedback(ws)
    assert len(rows) == 2
    assert len({r["customer_id"] for r in rows}) == 2
    assert all(r["customer_id"].startswith("anon:") for r in rows)


def test_with_pseudonymisation_the_link_and_the_answer_carry_the_pseudonym(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    touchlens.init(root)
    write(root / "touchlens.toml", '[privacy]\npseudonymise = true\nsalt = "a-long-random-salt-for-tests"\n')
    ws = touchlens.open(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    url = ws.surveys.link("delivered_sms", "ann@example.com")
    assert "ann@example.com" not in base64.urlsafe_b64decode(token_of(url).split(".")[1] + "==").decode()
    ws.surveys.answer(token_of(url), 4)
    assert [r["customer_id"] for r in feedback(ws)] == [ws.stored_id("ann@example.com")]


def test_the_maps_survey_sets_the_metric_and_question(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "name": "Shop",
            "touchpoints": [
                {
                    "key": "call",
                    "name": "Onboarding call",
                    "survey": {"metric": "ces", "question": "Was {touchpoint} easy?"},
                },
                {"key": "mail", "survey": {"metric": "nps", "comment": False}},
            ],
        }
    )
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.json", text))
    call = ws.surveys.question(token_of(ws.surveys.link("call", "c")))
    assert (call.link.metric, call.text, call.scores) == ("ces", "Was Onboarding call easy?", list(range(1, 8)))
    mail = ws.surveys.question(token_of(ws.surveys.link("mail", "c")))
    assert (mail.link.metric, mail.comment) == ("nps", False)
    assert "Shop" in mail.text


def test_a_bad_survey_section_in_the_map_is_a_located_error(tmp_path: Path, cli: Any) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    bad = write(tmp_path / "m.yaml", "name: S\ntouchpoints:\n  - key: a\n    survey: {metric: stars}\n")
    result = cli("-w", ws, "map", "import", bad)
    assert result.code == 1
    assert "m.yaml:4" in result.err
    assert "survey.metric" in result.err


# -- the page a customer sees -------------------------------------------------------------------------------


@pytest.fixture
def site(ws: touchlens.Workspace) -> Iterator[tuple[TestClient, touchlens.Workspace]]:
    with TestClient(create_app(ws.root)) as client:
        yield client, client.app.state.web.ws  # type: ignore[attr-defined]


def test_the_survey_page_asks_and_stores_the_answer_without_any_script(
    site: tuple[TestClient, touchlens.Workspace],
) -> None:
    client, ws = site
    token = token_of(ws.surveys.link("delivered_sms", "c-1"))
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    assert "How satisfied were you with" in page.text
    assert page.text.count('type="radio" name="score"') == 5
    assert "<script" not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    sent = client.post(f"/s/{token}", data={"score": "4", "comment": "Fine"})
    assert sent.status_code == 200
    assert "Thank you" in sent.text
    assert [(r["score"], r["comment"]) for r in feedback(ws)] == [(4, "Fine")]
    again = client.post(f"/s/{token}", data={"score": "1"})
    assert again.status_code == 409
    assert "already" in again.text
    assert client.get(f"/s/{token}").status_code == 409
    assert len(feedback(ws)) == 1


def test_one_click_rating_stores_the_score_then_takes_one_comment(site: tuple[TestClient, touchlens.Workspace]) -> None:
    client, ws = site
    token = token_of(ws.surveys.link("delivered_sms", "c-1"))
    clicked = client.get(f"/s/{token}?score=1")
    assert clicked.status_code == 200
    assert 'action="/s/' in clicked.text
    assert "/comment" in clicked.text
    assert [(r["score"], r["comment"]) for r in feedback(ws)] == [(1, None)]
    assert client.post(f"/s/{token}/comment", data={"comment": "Left in the rain"}).status_code == 200
    client.post(f"/s/{token}/comment", data={"comment": "Changed my mind"})  # a second comment changes nothing
    rows = feedback(ws)
    assert [(r["score"], r["comment"]) for r in rows] == [(1, "Left in the rain")]
    assert rows[0]["sentiment"] is not None
    assert client.get(f"/s/{token}?score=5").status_code == 409


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda ws: ws.surveys.link("delivered_sms", "c-1")[:-3] + "AAA", 400, "does not work"),
        (lambda ws: "v1.garbage", 400, "does not work"),
        (
            lambda ws: ws.surveys.link("delivered_sms", "c-1", now=datetime.now(UTC) - timedelta(days=31)),
            410,
            "expired",
        ),
    ],
)
def test_tampered_and_expired_links_get_a_clear_page(
    site: tuple[TestClient, touchlens.Workspace], make: Any, status: int, words: str
) -> None:
    client, ws = site
    url = make(ws)
    token = token_of(url) if "/s/" in url else url
    for answer in (
        client.get(f"/s/{token}"),
        client.get(f"/s/{token}?score=5"),
        client.post(f"/s/{token}", data={"score": "5"}),
    ):
        assert answer.status_code == status
        assert words in answer.text
    assert feedback(ws) == []


def test_an_erased_customers_link_gets_a_clear_page(site: tuple[TestClient, touchlens.Workspace]) -> None:
    client, ws = site
    token = token_of(ws.surveys.link("delivered_sms", "c-1"))
    assert client.delete("/api/customers/c-1").status_code in (401, 403)  # erasure is the admin's, not this page's
    ws.forget_on(_writer(client), ["c-1"])
    answer = client.get(f"/s/{token}?score=5")
    assert answer.status_code == 410
    assert "no longer works" in answer.text
    assert feedback(ws) == []


def test_a_bad_score_re_asks_keeping_the_comment_escaped(site: tuple[TestClient, touchlens.Workspace]) -> None:
    client, ws = site
    token = token_of(ws.surveys.link("delivered_sms", "c-1"))
    answer = client.post(f"/s/{token}", data={"score": "9", "comment": HOSTILE})
    assert answer.status_code == 422
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert feedback(ws) == []


def _writer(client: TestClient) -> Any:
    return client.app.state.web.ws.writer_cursor()  # type: ignore[attr-defined]


# -- the command line ---------------------------------------------------------------------------------------


def test_survey_commands_make_links_lists_and_qr_codes(tmp_path: Path, cli: Any, ws: touchlens.Workspace) -> None:
    root = ws.root
    link: Result = cli("-w", root, "survey", "link", "delivered_sms", "--customer", "c-1", "--metric", "NPS")
    assert link.code == 0
    question = touchlens.open(root).surveys.question(token_of(link.out.strip()))
    assert (question.link.customer_id, question.link.metric) == ("c-1", "nps")
    people = write(tmp_path / "people.csv", "email,customer_id\na@x,c-1\nb@x,c-2\nc@x,c-1\n")
    merged = cli("-w", root, "survey", "links", "delivered_sms", "--customers", people, "--csv")
    assert merged.code == 0
    lines = merged.out.strip().splitlines()
    assert lines[0] == "customer_id,link"
    assert [line.split(",")[0] for line in lines[1:]] == ["c-1", "c-2"]
    for kind, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
        assert cli("-w", root, "survey", "qr", "delivered_sms", "-o", tmp_path / f"q.{kind}").code == 0
        assert (tmp_path / f"q.{kind}").read_bytes().startswith(magic)
    wrong = cli("-w", root, "survey", "qr", "delivered_sms", "-o", tmp_path / "q.gif")
    assert wrong.code == 1
    assert ".png or .svg" in wrong.err
    missing = cli("-w", root, "survey", "links", "delivered_sms", "--customers", people, "--id-column", "id")
    assert missing.code == 1
    assert "columns are: email, customer_id" in missing.err


def test_survey_links_since_lists_the_customers_who_met_the_touchpoint(tmp_path: Path) -> None:
    from tests.conftest import journeys_workspace

    ws = journeys_workspace(tmp_path / "j", {"ann": ["home", "cart"], "bob": ["home"], "cy": ["cart"]})
    found = ws.surveys.links("cart", since=datetime(2026, 1, 1, tzinfo=UTC))
    assert [c for c, _ in found] == ["ann", "cy"]
    assert ws.surveys.links("cart", since=datetime(2027, 1, 1, tzinfo=UTC)) == []


# -- the widget's JSON and the API ------------------------------------------------------------------------

JSON = {"Accept": "application/json"}


def test_the_widget_reads_the_question_and_answers_as_json_from_any_origin(
    site: tuple[TestClient, touchlens.Workspace],
) -> None:
    client, ws = site
    token = token_of(ws.surveys.link("delivered_sms", "c-1", metric="ces"))
    asked = client.get(f"/s/{token}", headers={**JSON, "Origin": "https://shop.example"})
    assert asked.status_code == 200
    assert asked.headers["access-control-allow-origin"] == "*"
    body = asked.json()
    assert body["step"] == "ask"
    assert body["question"]["scores"] == list(range(1, 8))
    assert body["question"]["text"].startswith("How much effort did")
    bad = client.post(f"/s/{token}", data={"score": "0"}, headers=JSON)
    assert (bad.status_code, bad.json()["step"]) == (422, "ask")
    assert "1 to 7" in bad.json()["problem"]
    sent = client.post(f"/s/{token}", data={"score": "2", "comment": "easy"}, headers=JSON)
    assert (sent.status_code, sent.json()["step"]) == (200, "thanks")
    again = client.post(f"/s/{token}", data={"score": "2"}, headers=JSON)
    assert again.status_code == 409
    assert (again.json()["step"], again.json()["reason"]) == ("refused", "answered")
    assert [(r["metric"], r["score"], r["comment"]) for r in feedback(ws)] == [("ces", 2, "easy")]


def test_an_editor_makes_a_link_over_the_api_and_a_viewer_cannot(
    site: tuple[TestClient, touchlens.Workspace],
) -> None:
    from touchlens.store import users as user_store

    client, ws = site
    engine = ws.meta_engine()
    user_store.add_user(engine, "ed", "a-long-password-1", "editor")
    user_store.add_user(engine, "vi", "a-long-password-1", "viewer")
    editor = user_store.add_token(engine, "ed", ("read", "write"))
    viewer = user_store.add_token(engine, "vi", ("read", "write"))
    asked = {"touchpoint": "delivered_sms", "customer_id": "c-9", "metric": "nps"}
    made = client.post("/api/survey-links", json=asked, headers={"Authorization": f"Bearer {editor}"})
    assert made.status_code == 200
    question = ws.surveys.question(token_of(made.json()["link"]))
    assert (question.link.customer_id, question.link.metric) == ("c-9", "nps")
    refused = client.post("/api/survey-links", json=asked, headers={"Authorization": f"Bearer {viewer}"})
    assert refused.status_code == 403
    unknown = client.post(
        "/api/survey-links", json={"touchpoint": "nope"}, headers={"Authorization": f"Bearer {editor}"}
    )
    assert unknown.status_code == 422
    assert "touchpoints are:" in unknown.json()["detail"]


def test_the_touchpoint_page_shows_its_survey_and_makes_a_link(site: tuple[TestClient, touchlens.Workspace]) -> None:
    from touchlens.store import users as user_store
    from touchlens.web.security import SESSION_COOKIE

    client, ws = site
    client.follow_redirects = False
    client.post(f"/s/{token_of(ws.surveys.link('delivered_sms', 'c-1'))}", data={"score": "5"})
    engine = ws.meta_engine()
    user_store.add_user(engine, "ed", "a-long-password-1", "editor")
    cookie, csrf = user_store.start_session(engine, user_store.User("ed", "editor"))
    client.cookies.set(SESSION_COOKIE, cookie)
    page = client.get("/touchpoints/delivered_sms")
    assert "How satisfied were you with" in page.text
    assert "1 answers through links" in page.text
    assert 'name="survey.metric"' in page.text
    made = client.post("/touchpoints/delivered_sms/survey-link", data={"customer": "c-2", "csrf": csrf})
    assert made.status_code == 200
    assert 'src="data:image/svg+xml' in made.text
    link = made.text.split('id="survey-link" readonly value="', 1)[1].split('"', 1)[0]
    assert ws.surveys.question(token_of(link)).link.customer_id == "c-2"
    edited = client.patch(
        "/api/touchpoints/delivered_sms",
        json={"survey": {"metric": "nps", "question": None, "comment": False}},
        headers={"X-CSRF-Token": csrf},
    )
    assert edited.status_code == 200, edited.text
    assert ws.map().touchpoint("delivered_sms").survey.metric == "nps"  # type: ignore[union-attr]


def test_a_comment_that_cannot_be_saved_says_why(site: tuple[TestClient, touchlens.Workspace]) -> None:
    client, ws = site
    token = token_of(ws.surveys.link("delivered_sms", "c-3"))
    early = client.post(f"/s/{token}/comment", data={"comment": "Before any score"})
    assert early.status_code == 409
    assert "please answer the question first" in early.text.lower()
    assert client.get(f"/s/{token}?score=2").status_code == 200
    assert client.post(f"/s/{token}/comment", data={"comment": "First"}).status_code == 200
    again = client.post(f"/s/{token}/comment", data={"comment": "Second"})
    assert again.status_code == 409
    assert "already saved" in again.text
    assert [r["comment"] for r in feedback(ws)] == ["First"]


def test_links_refuse_days_below_one_and_erased_customers(ws: touchlens.Workspace) -> None:
    with pytest.raises(BadOption, match="--days"):
        ws.surveys.link("delivered_sms", "c-1", days=0)
    ws.forget(["gone"])
    with pytest.raises(BadOption, match="was erased"):
        ws.surveys.link("delivered_sms", "gone")
