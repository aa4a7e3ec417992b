"""Walkthroughs compared (issue 22, part 4): side by side and over time, and their annoyances held against the
themes of what customers write, on generated comments with a planted complaint, an unlisted one, and an
annoyance nobody writes about."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import write
from tests.test_audits import token_of
from tests.test_cases import session
from touchlens.insights.walkthroughs import hear, items, unlisted
from touchlens.web.app import create_app

MAP = {
    "name": "Parcels",
    "personas": [{"key": "buyer"}],
    "journeys": [{"key": "order", "persona": "buyer",
                  "stages": [{"key": "buy", "emotion": 1}, {"key": "receive", "emotion": 2}]}],
    "touchpoints": [
        {"key": "checkout", "stage": "buy", "expectations": "Three steps"},
        {"key": "delivery", "stage": "receive", "expectations": "On the promised day",
         "annoyances": "Late deliveries; a confusing returns form"},
    ],
}  # fmt: skip
LATE = ["The parcel arrived late, {n} days after the promised date", "Delivery was late again by {n} days",
        "Late delivery, waited {n} days for it", "My order came {n} days late, very disappointing"]  # fmt: skip
RUDE = ["The driver was rude and threw the box", "Rude driver, slammed the parcel on the step",
        "Driver was rude to my mother at the door"]  # fmt: skip
GOOD = ["Lovely packaging, well wrapped", "Nice packaging and a handwritten note", "Packaging was lovely"]


def test_an_annoyance_list_splits_into_items() -> None:
    assert items("Late deliveries; a confusing returns form\n- no tracking") == [
        "Late deliveries", "a confusing returns form", "no tracking"]  # fmt: skip
    assert items("") == []
    assert items("Slow, rude, expensive") == ["Slow", "rude", "expensive"]


def test_an_annoyance_meets_the_theme_that_shares_its_words() -> None:
    late = {"label": "late / days", "terms": ["late", "days", "delivery", "promised"], "count": 40, "sentiment": -0.6}
    themes = [late, {"label": "packaging / lovely", "terms": ["packaging", "lovely"], "count": 30, "sentiment": 0.7}]
    found = hear([("Deliveries arrive late", "map"), ("Confusing returns form", "walkthrough 2")], themes)
    assert [(h.annoyance, h.theme, h.comments) for h in found] == [
        ("Deliveries arrive late", "late / days", 40), ("Confusing returns form", None, 0)]  # fmt: skip
    assert found[1].source == "walkthrough 2"
    assert unlisted(found, themes) == []  # the only negative theme is named; a happy one is never a complaint
    assert [u["theme"] for u in unlisted([], themes)] == ["late / days"]


def comments(seed: int, planted: bool) -> list[tuple[str, str]]:
    """(comment, touchpoint): at delivery, late parcels (planted) or none, rude drivers, happy packaging."""
    rng = np.random.default_rng(seed)
    rows = [(str(rng.choice(GOOD)), "delivery") for _ in range(40)]
    rows += [(str(rng.choice(RUDE)), "delivery") for _ in range(40)]
    if planted:
        rows += [(str(rng.choice(LATE)).format(n=rng.integers(2, 9)), "delivery") for _ in range(40)]
    rows += [(str(rng.choice(GOOD)), "checkout") for _ in range(30)]
    return rows


def shop(tmp_path: Path, rows: list[tuple[str, str]]) -> touchlens.Workspace:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "map.json", json.dumps(MAP)))
    start = datetime(2026, 5, 1, tzinfo=UTC)
    lines = ["customer_id,ts,metric,score,touchpoint,comment"]
    lines += [
        f'c{i},{(start + timedelta(hours=i)).isoformat()},csat,3,{tp},"{text}"' for i, (text, tp) in enumerate(rows)
    ]
    ws.ingest_feedback([write(tmp_path / "f.csv", "\n".join(lines) + "\n")])
    return ws


@pytest.mark.parametrize("planted", [True, False], ids=["planted", "null"])
def test_the_map_s_annoyances_are_heard_only_where_customers_write_them(tmp_path: Path, planted: bool) -> None:
    for seed in range(4):
        ws = shop(tmp_path / str(seed), comments(seed, planted))
        compared = ws.audits.compare("order")
        delivery = next(t for t in compared["touchpoints"] if t["touchpoint"] == "delivery")
        heard = {h["annoyance"]: h["theme"] for h in delivery["heard"]}
        assert (heard["Late deliveries"] is not None) == planted, (seed, heard)
        assert heard["a confusing returns form"] is None  # nobody writes about returns
        complaints = [u["theme"] for u in delivery["unlisted"]]
        assert any("rude" in t or "driver" in t for t in complaints), (seed, complaints)  # no annoyance names it
        assert not any("packag" in t for t in complaints)  # a happy theme is not a complaint


def test_walkthroughs_side_by_side_oldest_first_with_each_stage_over_time(tmp_path: Path, cli: Any) -> None:
    ws = shop(tmp_path, comments(0, True))
    first, second = (token_of(ws.audits.start("order", who)[1]) for who in ("Ann", "Olga <outsider>"))
    ws.audits.record(first, 1, {"met": "yes", "emotion": "1"})
    ws.audits.record(first, 2, {"met": "no", "emotion": "-2", "annoyances": "Parcel was late; driver rude"})
    ws.audits.record(second, 1, {"met": "yes", "emotion": "2"})
    compared = ws.audits.compare("order")
    assert [a["auditor"] for a in compared["audits"]] == ["Ann", "Olga <outsider>"]
    assert [s["audited"] for s in compared["stages"]] == [[1.0, 2.0], [-2.0, None]]  # the second stopped early
    assert [s["designed"] for s in compared["stages"]] == [1, 2]
    delivery = compared["touchpoints"][1]
    assert [c["walked"] for c in delivery["cells"]] == [True, False]
    assert delivery["cells"][0]["met"] is False
    sources = {(h["annoyance"], h["source"]) for h in delivery["heard"]}
    assert ("Parcel was late", f"walkthrough {compared['audits'][0]['id']}") in sources
    assert [u for u in delivery["unlisted"] if "rude" in u["theme"]] == []  # the auditor saw it: listed now
    printed = cli("-w", ws.root, "walkthrough", "compare", "order").out
    assert "Olga <outsider>" in printed
    assert "NOT met" in printed
    assert "not heard in comments" in printed  # the returns form
    assert json.loads(cli("-w", ws.root, "walkthrough", "compare", "order", "--json").out) == compared
    assert cli("-w", ws.root, "walkthrough", "compare", "nope").code != 0


def test_the_comparison_page_shows_them_side_by_side(tmp_path: Path) -> None:
    ws = shop(tmp_path, comments(1, True))
    token = token_of(ws.audits.start("order", "<b>Olga</b>")[1])
    ws.audits.record(token, 1, {"met": "yes", "emotion": "1"})
    ws.audits.record(token, 2, {"met": "no", "emotion": "-1", "annoyances": "<i>late</i> parcel"})
    with TestClient(create_app(ws.root), follow_redirects=False) as client:
        session(client, ws, "vi", "viewer")
        page = client.get("/audits/compare?journey=order")
        assert page.status_code == 200
        assert "&lt;b&gt;Olga&lt;/b&gt;" in page.text
        assert "&lt;i&gt;late&lt;/i&gt; parcel" in page.text
        assert "not heard in comments" in page.text
        assert 'href="/audits/compare?journey=order"' in client.get("/audits").text
        assert client.get("/audits/compare?journey=nope").status_code == 404


def test_the_report_carries_the_walkthroughs(tmp_path: Path) -> None:
    from touchlens.report.html import html_report

    ws = shop(tmp_path, comments(2, True))
    assert 'id="walkthroughs"' not in html_report(ws)  # none walked: no empty section
    token = token_of(ws.audits.start("order", "Olga <script>")[1])
    ws.audits.record(token, 1, {"met": "yes", "emotion": "2"})
    ws.audits.record(token, 2, {"met": "no", "emotion": "-1", "annoyances": "Tracking page empty"})
    page = html_report(ws)
    section = page[page.index('id="walkthroughs"') :]
    assert "Olga &lt;script&gt;" in section
    assert "not met, emotion -1: Tracking page empty" in section
    assert "“Late deliveries” (map): customers say it too" in section
    assert "“Tracking page empty” (walkthrough 1): not heard in comments" in section
