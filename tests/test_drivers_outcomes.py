"""Drivers for every outcome the map defines, said in outcome rates: inactivity churn counts only what the
customer did (a win-back e-mail is no sign of life), each row's difference and odds ratio carry intervals on their
own scale (checked against scipy's Wilson intervals and Newcombe's formula), a missing outcome or too little data
is a message in words, and attribution by channel falls back on the map's channel."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps

import touchlens
from tests.conftest import workspace_with, write
from touchlens.analytics.drivers import MissingOutcome, query_for
from touchlens.store import users as user_store
from touchlens.web.app import create_app
from touchlens.web.security import SESSION_COOKIE

T0 = datetime(2025, 1, 6, 9, 0)
END = 400  # days: the data's last day

SUBSCRIPTION = """
name: Subscriptions
channels: [{key: web, kind: digital}, {key: email, kind: digital}]
touchpoints:
  - {key: home, name: Home page, channel: web, match: {event: home}}
  - {key: order, name: Checkout, channel: web, phase: purchase, match: {event: order}}
  - {key: winback, name: Win-back e-mail, channel: email, initiative: proactive, match: {event: winback_sent}}
outcomes:
  conversion: {event: order}
  churn: {inactive_days: 90}
"""

SHOP = """
name: Shop
channels: [{key: web, kind: digital}, {key: chat, kind: human}]
touchpoints:
  - {key: home, name: Home page, channel: web, match: {event: home}}
  - {key: chat, name: Live chat, channel: chat, match: {event: chat}}
  - {key: order, name: Checkout, channel: web, phase: purchase, match: {event: order}}
outcomes:
  conversion: {event: order}
"""


def _csv(rows: list[tuple[str, float, str]]) -> str:
    lines = ["customer_id,ts,event"] + [f"{c},{(T0 + timedelta(days=d)).isoformat()}Z,{e}" for c, d, e in rows]
    return "\n".join(lines) + "\n"


def _subscribers() -> list[tuple[str, float, str]]:
    """100 customers active to the end; 200 who go quiet 95–145 days before it, half of them (those who take
    e-mail) sent a win-back e-mail 60 days after their own last visit — so the e-mail arrives after it, within
    90 days of the end."""
    rows: list[tuple[str, float, str]] = []
    for i in range(300):
        c = f"s{i:03d}"
        rows += [(c, 0.1 * (i % 7), "home"), (c, 1, "order")]
        last = END if i < 100 else END - 95 - (i % 51)
        rows += [(c, d, "home") for d in range(20, int(last), 20)] + [(c, last, "home")]
        if i >= 100 and i % 2 == 0:
            rows.append((c, last + 60, "winback_sent"))
    return rows


@pytest.fixture(scope="module")
def subscriptions(tmp_path_factory: pytest.TempPathFactory) -> touchlens.Workspace:
    root = tmp_path_factory.mktemp("subscriptions")
    ws = touchlens.init(root / "ws")
    ws.import_map(write(root / "m.yaml", SUBSCRIPTION))
    ws.ingest_events([write(root / "e.csv", _csv(_subscribers()))])
    return ws


def test_a_win_back_email_sent_after_the_customers_last_action_does_not_cut_churn(subscriptions) -> None:
    ws = subscriptions
    new = ws.drivers("churn", samples=0)
    winback = new.find("seen", "winback")
    assert winback is not None
    assert winback.direction != "lowers"
    # Every customer who went quiet 95+ days before the end churned, e-mail or not: 200 of 300 periods.
    assert new.base_rate == pytest.approx(200 / 300)
    assert winback.rate_with == 1.0
    # The old rule (every event is activity) restarts the clock with each e-mail: the e-mail then "cuts churn".
    old = replace(query_for(ws.map(), "churn", 0), company_sent=()).run(ws._backend())
    old_winback = old.find("seen", "winback")
    assert old_winback is not None
    assert old_winback.direction == "lowers"
    assert (old_winback.rate_with, old.base_rate) == (0.0, pytest.approx(100 / 300))


def test_the_workspace_counts_proactive_touchpoints_as_company_sent(subscriptions) -> None:
    assert query_for(subscriptions.map(), "churn").company_sent == ("winback",)


def _shoppers() -> list[tuple[str, float, str]]:
    """200 customers: 100 chat, 40 of whom order; 100 do not, 20 of whom order. A random-looking order of
    who orders, so the model has something to fit beside the chat."""
    rows: list[tuple[str, float, str]] = []
    for i in range(200):
        c, chat = f"c{i:03d}", i < 100
        rows.append((c, i * 0.01, "home"))
        if chat:
            rows.append((c, i * 0.01 + 0.001, "chat"))
        if (i % 100) < (40 if chat else 20):
            rows.append((c, i * 0.01 + 0.002, "order"))
    return rows


@pytest.fixture
def shop(cli, tmp_path: Path) -> Path:
    return workspace_with(cli, tmp_path, SHOP, _csv(_shoppers()))


def _newcombe(a: int, n_a: int, b: int, n_b: int) -> tuple[float, float, float]:
    """Newcombe's hybrid score interval (his method 10) from scipy's Wilson intervals, written out here."""
    la, ua = sps.binomtest(a, n_a).proportion_ci(method="wilson")
    lb, ub = sps.binomtest(b, n_b).proportion_ci(method="wilson")
    pa, pb = a / n_a, b / n_b
    d = pa - pb
    return d, d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2), d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)


@pytest.mark.oracle
def test_difference_and_its_interval_match_a_hand_computation(shop: Path) -> None:
    d = touchlens.open(shop).drivers("conversion", samples=30).to_dict()
    chat = next(r for r in d["drivers"] if r["feature"] == "seen:chat")
    assert (chat["periods_with"], chat["periods_without"]) == (100, 100)
    assert (chat["rate_with"], chat["rate_without"]) == (0.4, 0.2)
    difference, low, high = _newcombe(40, 100, 20, 100)
    assert chat["difference"] == pytest.approx(difference)
    # scipy's Wilson interval uses z = 1.95996…, touchlens z = 1.96: they agree to a few millionths.
    assert (chat["difference_low"], chat["difference_high"]) == (pytest.approx(low, abs=1e-5),
                                                                 pytest.approx(high, abs=1e-5))  # fmt: skip
    assert chat["difference_low"] > 0
    assert chat["direction"] == "raises"


def test_the_odds_ratio_interval_is_the_coefficient_interval_on_the_odds_scale(shop: Path) -> None:
    d = touchlens.open(shop).drivers("conversion", samples=30).to_dict()
    modelled = [r for r in d["drivers"] if r["coefficient"] is not None and r["low"] is not None]
    assert modelled
    for r in modelled:
        assert r["odds_ratio"] == pytest.approx(math.exp(r["coefficient"]))
        assert (r["odds_ratio_low"], r["odds_ratio_high"]) == (pytest.approx(math.exp(r["low"])),
                                                               pytest.approx(math.exp(r["high"])))  # fmt: skip
        assert r["odds_ratio_low"] <= r["odds_ratio"] <= r["odds_ratio_high"]
    for r in d["drivers"]:
        expected = None if not r["significant"] else ("raises" if r["difference"] > 0 else "lowers")
        assert r["direction"] == expected


def test_without_a_churn_outcome_every_defined_outcome_is_shown_and_churn_is_said_missing(cli, shop: Path) -> None:
    shown = cli("-w", shop, "analyze", "drivers", "--bootstrap", "0")
    assert shown.code == 0, shown.err
    flat = " ".join(shown.out.split())
    assert "The map defines no churn outcome. Add under outcomes: `churn: {inactive_days: 90}`" in flat
    assert "Drivers of conversion — 200 periods, base rate 30.0%" in flat
    assert "Live chat" in flat
    assert "saw it" in flat
    assert "raises" in flat
    assert "40.0% → 20.0%" in flat
    assert "e-" not in flat.replace("e-mail", "")  # no scientific notation
    one = cli("-w", shop, "analyze", "drivers", "--outcome", "churn")
    assert one.code == 1
    assert "The map defines no churn outcome" in " ".join(one.err.split())


@pytest.mark.slow
def test_the_json_of_every_outcome_lists_tables_and_missing_outcomes(cli, shop: Path) -> None:
    data = json.loads(cli("-w", shop, "analyze", "drivers", "--bootstrap", "0", "--json").out)
    assert [d["outcome"] for d in data["outcomes"]] == ["conversion"]
    assert data["outcomes"][0]["message"] is None
    assert {m["outcome"] for m in data["missing"]} == {"repeat", "churn"}
    one = json.loads(cli("-w", shop, "analyze", "drivers", "--outcome", "conversion", "--json").out)
    assert set(one) == {"outcome", "periods", "base_rate", "message", "drivers"}
    assert {"direction", "difference", "difference_low", "difference_high", "periods_without", "odds_ratio_low",
            "odds_ratio_high"} <= set(one["drivers"][0])  # fmt: skip


def test_too_little_data_is_said_in_words_not_shown_as_a_table(cli, tmp_path: Path) -> None:
    ws = workspace_with(cli, tmp_path, SHOP, _csv(_shoppers()[:20]))
    result = touchlens.open(ws).drivers("conversion", samples=0)
    assert result.drivers == []
    assert result.message == f"Too little data: {result.periods} periods; drivers of conversion need 30 or more."
    assert result.periods < 30
    shown = cli("-w", ws, "analyze", "drivers", "--outcome", "conversion")
    assert shown.code == 0
    assert "Too little data" in shown.out
    assert "┃" not in shown.out


def test_no_outcome_in_the_data_is_said_in_words(cli, tmp_path: Path) -> None:
    rows = [r for r in _shoppers() if r[2] != "order"]
    ws = workspace_with(cli, tmp_path, SHOP, _csv(rows))
    result = touchlens.open(ws).drivers("conversion", samples=0)
    assert result.drivers == []
    assert result.base_rate == 0.0
    assert result.message is not None
    assert result.message.startswith("No conversion in the data: none of the 200")


def test_a_map_without_conversion_says_every_outcome_needs_it(tmp_path: Path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", "name: S\noutcomes: {churn: {inactive_days: 30}}\n"))
    report = ws.drivers(None, samples=0)
    assert report.outcomes == []
    messages = dict(report.missing)
    assert "Add under outcomes: `conversion: {event: order_placed}`" in messages["conversion"]
    assert messages["churn"].startswith("Drivers of churn need the map's conversion outcome too")
    with pytest.raises(MissingOutcome, match="need the map's conversion outcome"):
        ws.drivers("churn", samples=0)


def _nps_rows(customers: int) -> str:
    lines = ["customer_id,ts,metric,score,touchpoint"]
    for i in range(customers):
        track, call = 1 + i % 5, 1 + (i // 5) % 5
        when = (T0 + timedelta(hours=i)).isoformat()
        lines += [f"c{i},{when}Z,csat,{track},home", f"c{i},{when}Z,csat,{call},chat",
                  f"c{i},{when}Z,nps,{min(10, 2 * track + i % 2)},order"]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_nps_drivers_on_53_customers_say_there_is_too_little_data(cli, tmp_path: Path) -> None:
    ws = workspace_with(cli, tmp_path, SHOP)
    assert cli("-w", ws, "ingest", "feedback", write(tmp_path / "f.csv", _nps_rows(53))).code == 0
    expected = (
        "Too little data: 53 customers answered both the NPS survey and a touchpoint survey; key drivers need 100 "
        "or more."
    )
    data = json.loads(cli("-w", ws, "analyze", "drivers", "--outcome", "nps", "--json").out)
    assert data["message"] == expected
    shown = cli("-w", ws, "analyze", "drivers", "--outcome", "nps")
    assert expected in " ".join(shown.out.split())
    assert "R²" not in shown.out


def test_nps_drivers_on_enough_customers_show_the_weights(cli, tmp_path: Path) -> None:
    ws = workspace_with(cli, tmp_path, SHOP)
    assert cli("-w", ws, "ingest", "feedback", write(tmp_path / "f.csv", _nps_rows(150))).code == 0
    data = json.loads(cli("-w", ws, "analyze", "drivers", "--outcome", "nps", "--json").out)
    assert data["message"] is None
    assert data["customers"] == 150
    shown = cli("-w", ws, "analyze", "drivers", "--outcome", "nps")
    assert "Home page" in shown.out
    assert "Too little data" not in shown.out


def test_attribution_by_channel_takes_the_map_channel_when_the_event_has_none(cli, tmp_path: Path) -> None:
    rows = ["customer_id,ts,event,channel"]
    for i in range(6):
        own = "partner" if i == 0 else ""  # one chat comes through a partner's widget, which says so
        rows += [f"c{i},2026-01-01T00:00:00Z,home,", f"c{i},2026-01-02T00:00:00Z,chat,{own}",
                 f"c{i},2026-01-03T00:00:00Z,order,"]  # fmt: skip
    ws = workspace_with(cli, tmp_path, SHOP, "\n".join(rows) + "\n")
    last = json.loads(cli("-w", ws, "analyze", "attribution", "--by", "channel", "--model", "last", "--json").out)
    assert {r["key"]: r["conversions"] for r in last["results"] if r["conversions"]} == {"chat": 5, "partner": 1}
    first = json.loads(cli("-w", ws, "analyze", "attribution", "--by", "channel", "--model", "first", "--json").out)
    assert {r["key"]: r["conversions"] for r in first["results"] if r["conversions"]} == {"web": 6}
    markov = json.loads(cli("-w", ws, "analyze", "attribution", "--by", "channel", "--json").out)
    assert "(none)" not in {r["key"] for r in markov["results"]}


def _page(root: Path, path: str) -> str:
    app = create_app(root)
    engine = app.state.web.ws.meta_engine()
    user_store.add_user(engine, "vera", "correct horse battery", "viewer")
    session, _ = user_store.start_session(engine, user_store.User("vera", "viewer"))
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, session)
    response = client.get(path)
    assert response.status_code == 200, response.text
    return " ".join(response.text.split())


@pytest.mark.slow
def test_the_touchpoint_page_shows_every_outcome_and_says_which_are_missing(shop: Path) -> None:
    page = _page(shop, "/touchpoints/chat")
    assert "Drivers of conversion" in page
    assert "saw it" in page
    assert "raises" in page
    assert "+20.0 points" in page
    assert "The map defines no churn outcome" in page
    assert "No driver names this touchpoint" not in page
