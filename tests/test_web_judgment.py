"""The judgment in the web app, on HTML: findings in words with what is at stake (never JSON, never scientific
notation), roadmap cards with at_stake and a Done column, the Suggest button for editors only, the strengths on
the overview, health and findings on the touchpoint page, the feedback explorer sorted by score with its score
chart, and a hostile touchpoint name inert inside a finding's summary."""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from touchlens.api import Workspace
from touchlens.demo_workspace import build_demo
from touchlens.store import users as user_store
from touchlens.web.app import create_app
from touchlens.web.pages import evidence_items, stake_text
from touchlens.web.security import SESSION_COOKIE

HOSTILE = "Refund <script>window.__pwned=1</script><img src=x onerror=alert(1)> email"
REFUND = "refund_issued_email"


@dataclass
class Site:
    root: Path
    app: FastAPI
    ws: Workspace

    def client(self, role: str = "editor") -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        session, csrf = user_store.start_session(self.ws.meta_engine(), user_store.User(role, role))
        client.cookies.set(SESSION_COOKIE, session)
        client.headers["X-CSRF-Token"] = csrf
        return client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A small demo whose refund e-mail (the planted moment of truth) has a hostile name."""
    root = tmp_path_factory.mktemp("judgment") / "demo"
    ws = build_demo(root, customers=1500).workspace
    m = ws.map()
    renamed = [t.model_copy(update={"name": HOSTILE}) if t.key == REFUND else t for t in m.touchpoints]
    ws.save_map(m.model_copy(update={"touchpoints": renamed}))
    for role in ("viewer", "editor"):
        user_store.add_user(ws.meta_engine(), role, "correct horse battery", role)
    app = create_app(root)
    return Site(root, app, app.state.web.ws)


def text_of(page: str) -> str:
    """What a reader sees of the page's main part: tags dropped, entities decoded, white space collapsed."""
    main = page.split("<main>", 1)[1].split("</main>", 1)[0]
    main = re.sub(r"<script\b.*?</script>", " ", main, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def assert_readable(text: str) -> None:
    assert '{"' not in text, "raw JSON on the page"
    assert "{'" not in text, "a Python dict on the page"
    assert not re.search(r"\d[eE][+-]?\d", text), "scientific notation on the page"


# -- formatting, checked against hand-worked values --------------------------------------------------------


def test_evidence_reads_as_words_and_units() -> None:
    evidence = {
        "metric": "csat",
        "value": 0.11678,
        "reference": 0.85,
        "gap": -0.7332,
        "low": -0.7768,
        "high": -0.6687,
        "p_value": 5.47e-80,
        "median_seconds": 616726.6,  # 7.14 days
        "share_of_customers": 0.8538,
        "switches": {"from": "a", "to": "b", "within_seconds": 86400.0, "customers": 1505},
        "cycle": ["a", "b", "a"],
    }
    rows = dict(evidence_items(evidence, {"a": "Order tracking page", "b": "Phone support"}))
    assert rows["Metric"] == "CSAT"
    assert rows["Score"] == "12%"
    assert rows["Compared against"] == "85%"
    assert rows["Gap"] == "−73 points"
    assert rows["95% interval"] == "−78 to −67 points"
    assert rows["p-value"] == "< 0.001"
    assert rows["Median wait"] == "7.1 days"
    assert rows["Share of customers"] == "85%"
    assert rows["Switches · from"] == "Order tracking page"
    assert rows["Switches · within"] == "24 hours"
    assert rows["Switches · customers"] == "1,505"
    assert rows["Cycle"] == "Order tracking page → Phone support → Order tracking page"
    assert dict(evidence_items({"p_value": 0.0034, "tiny": 3.2e-7}))["p-value"] == "0.003"
    rule = {"key": "update_buy_get", "name": "Update between buy and get", "after": {"touchpoint": "a"},
            "wait": "3d", "unless": {"touchpoint": "b"}, "holdout": 0.1}  # fmt: skip
    rows = dict(evidence_items({"proactive_rule": rule}, {"a": "Order", "b": "Parcel"}))
    assert rows["Suggested proactive rule"] == (
        "Update between buy and get: 3d after Order, unless Parcel came first, 10% held out to measure it "
        "(key update_buy_get)")  # fmt: skip
    assert_readable(" ".join(v for _, v in evidence_items({"tiny": 3.2e-7, "big": 1.5e12})))


def test_at_stake_in_words() -> None:
    stake = {"value": 83, "low": 73, "high": 91, "unit": "conversions lost", "per": "year"}
    assert stake_text(stake) == "about 83 conversions lost a year (73–91)"
    assert stake_text(None) is None
    assert stake_text({"value": "lots"}) is None  # a hand-written card's evidence, not a stake


# -- pages --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_insights_show_sections_summaries_and_at_stake_never_json(site: Site) -> None:
    found = site.ws.insights()
    page = site.client("viewer").get("/insights")
    assert page.status_code == 200
    text = text_of(page.text)
    assert_readable(text)
    for name, items in found.sections.items():
        assert f"{name.capitalize()} ({len(items)})" in text
    refund = next(i for i in found.sections["problems"] if i.subject == REFUND)
    assert refund.at_stake is not None
    assert f"At stake: about {refund.at_stake.text()}" in text
    effect = refund.effects[0]
    rates = f"{effect.rate_with * 100:.0f}% with it, {effect.rate_without * 100:.0f}% without"
    assert rates in text
    assert f'<a href="/touchpoints/{REFUND}">' in page.text


@pytest.mark.slow
def test_a_hostile_touchpoint_name_in_a_summary_stays_text(site: Site) -> None:
    client = site.client("viewer")
    for path in ("/insights", "/", f"/touchpoints/{REFUND}", "/roadmap"):
        page = client.get(path).text
        assert "<script>window.__pwned" not in page, path
        assert "<img src=x onerror" not in page, path
    page = client.get("/insights").text
    assert "Refund &lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert HOSTILE in text_of(page)


@pytest.mark.slow
def test_roadmap_cards_show_at_stake_findings_and_a_done_column(site: Site) -> None:
    editor = site.client("editor")
    answer = editor.post("/api/roadmap/suggest")
    assert answer.status_code == 200
    cards = answer.json()["suggested"]
    staked = [c for c in cards if c["at_stake"]]
    assert staked
    page = editor.get("/roadmap").text
    text = text_of(page)
    assert_readable(text)
    assert f"At stake: {stake_text(staked[0]['at_stake'])}" in text
    assert staked[0]["description"] in text
    assert 'aria-label="Done"' in page
    done = staked[0]["key"]
    assert editor.patch(f"/api/roadmap/{done}", json={"status": "done"}).status_code == 200
    board = editor.get("/roadmap").text
    done_column = board.split('aria-label="Done"', 1)[1]
    assert f'data-key="{done}"' in done_column
    assert f'data-key="{done}"' not in board.split('aria-label="Done"', 1)[0]


def test_suggest_is_offered_to_editors_not_viewers(site: Site) -> None:
    assert 'id="suggest"' in site.client("editor").get("/roadmap").text
    viewer = site.client("viewer")
    assert 'id="suggest"' not in viewer.get("/roadmap").text
    assert viewer.post("/api/roadmap/suggest").status_code == 403


@pytest.mark.slow
def test_overview_lists_strengths_and_the_worst_by_what_is_at_stake(site: Site) -> None:
    judged = site.ws.insights(("problems", "strengths"))
    text = text_of(site.client("viewer").get("/").text)
    for s in judged.sections["strengths"]:
        assert s.summary in text
    staked = sorted((p for p in judged.sections["problems"] if p.at_stake), key=lambda p: -p.at_stake.value)  # type: ignore[union-attr]
    worst = text.split("Worst touchpoints", 1)[1].split("Strengths", 1)[0]
    positions = [worst.index(p.summary) for p in staked]
    assert positions == sorted(positions)


@pytest.mark.slow
def test_touchpoint_page_gives_health_with_its_reason_and_its_findings(site: Site) -> None:
    health = {r["touchpoint"]: r for r in site.ws.health_report()}[REFUND]
    text = text_of(site.client("viewer").get(f"/touchpoints/{REFUND}").text)
    assert f"Health: {health['health']} {health['reason']}" in text
    refund = next(i for i in site.ws.insights(("problems",)).sections["problems"] if i.subject == REFUND)
    assert refund.summary in text


def _shown_scores(page: str) -> list[float]:
    return [float(s) for s in re.findall(r'class="verbatim" data-score="([^"]+)"', page)]


@pytest.mark.parametrize("order", ["lowest", "highest"])
def test_the_feedback_explorer_sorts_comments_by_score(site: Site, order: str) -> None:
    page = site.client("viewer").get("/feedback", params={"metric": "csat", "sort": order}).text
    shown = _shown_scores(page)
    every = sorted(c["score"] for c in site.ws.comments(metric="csat", limit=100_000))
    expected = every[:60] if order == "lowest" else every[::-1][:60]
    assert shown == expected


def test_the_feedback_chart_counts_every_answer_of_the_filter(site: Site) -> None:
    with site.ws.events(read_only=True) as con:
        rows = con.execute(
            "SELECT score, count(*) FROM feedback WHERE metric = 'csat' AND touchpoint = ? AND score >= 2 GROUP BY 1",
            [REFUND],
        ).fetchall()
    expected = Counter({float(score): n for score, n in rows})
    page = site.client("viewer").get("/feedback", params={"touchpoint": REFUND, "metric": "csat", "min_score": "2"})
    bars = re.findall(r'class="bar" data-score="([^"]+)" data-answers="(\d+)"', page.text)
    assert {float(s): int(n) for s, n in bars} == {v: expected.get(v, 0) for v in (2.0, 3.0, 4.0, 5.0)}
