"""CX success statements measured: the map's measurable shape (validated, located errors, lossless round trip),
their judgment against hand-computed values, and `analyze success`, the overview page and the report showing it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import touchlens
from tests.conftest import Result, workspace_with, write
from touchlens.analytics.feedback import FeedbackReport, summarise
from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.errors import MapError
from touchlens.insights.success import SuccessStatus, measure_text, status
from touchlens.model.map import SuccessStatement, TouchpointMap
from touchlens.model.mapfile import dump_map, parse_map
from touchlens.report.html import html_report
from touchlens.store import users as user_store
from touchlens.web.app import create_app
from touchlens.web.security import SESSION_COOKIE

EVERY = "CSAT ≥ 85% on every post-purchase touchpoint"
MAP = f"""
name: Shop
channels: [{{key: web}}, {{key: email}}]
journeys:
  - key: main
    stages: [{{key: buy}}, {{key: get}}]
touchpoints:
  - {{key: checkout, name: Checkout, stage: buy, channel: web, phase: purchase}}
  - {{key: tracking, name: Tracking page, stage: get, channel: web, phase: post-purchase}}
  - {{key: refund, name: Refund email, stage: get, channel: email, phase: post-purchase}}
success:
  - Customers trust us.
  - text: {EVERY}
    metric: csat
    threshold: 85%
    scope: {{phase: post-purchase}}
    every: true
  - text: CSAT 85% after purchase, all answers together
    metric: csat
    threshold: 0.85
    scope: {{stage: get}}
"""
T0 = datetime(2026, 3, 2, 9, 0)


def satisfied(k: int, n: int) -> list[float]:
    """n CSAT answers of which k are satisfied (5) and the rest not (2)."""
    return [5.0] * k + [2.0] * (n - k)


def feedback(scores: dict[str, list[float]], metric: str = "csat") -> FeedbackReport:
    """A per-touchpoint feedback report holding exactly these answers."""
    return FeedbackReport("touchpoint", [], summarise("(all)", []), {(k, metric): v for k, v in scores.items()})


def judged(scores: dict[str, list[float]], m: TouchpointMap | None = None) -> list[SuccessStatus]:
    return status(m or parse_map(MAP), feedback(scores), None)


# -- judgment ----------------------------------------------------------------------------------------------


def test_one_touchpoint_at_60_percent_fails_an_every_touchpoint_statement() -> None:
    plain, every, pooled = judged({"tracking": satisfied(18, 20), "refund": satisfied(12, 20)})
    assert plain.status == "not_measurable"
    assert plain.reason.startswith("not measurable")
    assert every.status == "not_met"
    assert [(f.touchpoint, f.name, f.value, f.n) for f in every.failing] == [("refund", "Refund email", 0.6, 20)]
    assert every.value == pytest.approx(12 / 20)
    assert every.n == 20
    assert {x.touchpoint: x.value for x in every.measured} == {"tracking": 0.9, "refund": 0.6}
    # Pooled: (18 + 12) satisfied of 40 answers.
    assert pooled.status == "not_met"
    assert pooled.value == pytest.approx(30 / 40)
    assert pooled.n == 40
    assert measure_text(every) == "CSAT 60% at the worst touchpoint vs ≥ 85%"


def test_every_touchpoint_above_the_threshold_meets_it() -> None:
    _, every, pooled = judged({"tracking": satisfied(18, 20), "refund": satisfied(19, 20), "checkout": [1.0] * 30})
    assert every.status == "met"
    assert every.failing == []
    assert every.value == pytest.approx(0.9)  # the worst in scope; checkout (purchase) is out of scope
    assert pooled.status == "met"
    assert pooled.value == pytest.approx(37 / 40)


def test_a_value_exactly_at_the_threshold_meets_it() -> None:
    _, every, _ = judged({"tracking": satisfied(17, 20), "refund": satisfied(17, 20)})
    assert every.value == pytest.approx(0.85)
    assert every.status == "met"


def test_too_few_answers_leave_it_unknown_but_a_clear_miss_still_fails() -> None:
    _, every, pooled = judged({"tracking": satisfied(19, 19), "refund": satisfied(19, 19)})
    assert (every.status, pooled.status) == ("unknown", "met")  # 19 per touchpoint is short; 38 pooled is not
    assert "Tracking page" in every.reason
    assert every.failing == []
    _, every, pooled = judged({"tracking": satisfied(5, 5)})
    assert (every.status, pooled.status) == ("unknown", "unknown")
    assert pooled.reason == "too few answers: 5 of the 20 needed"
    _, every, _ = judged({"tracking": satisfied(2, 5), "refund": satisfied(10, 20)})
    assert every.status == "not_met"
    assert [f.touchpoint for f in every.failing] == ["refund"]


def test_nps_and_effort_are_judged_on_their_own_scales() -> None:
    m = TouchpointMap.model_validate(
        {
            "name": "S",
            "touchpoints": [{"key": "a"}, {"key": "b"}],
            "success": [
                {"text": "NPS 20+", "metric": "nps", "threshold": 20, "scope": {"all": True}},
                {"text": "Easy", "metric": "ces", "threshold": 3, "scope": {"touchpoints": ["b"]}},
            ],
        }
    )
    nps_scores = [10.0] * 10 + [8.0] * 6 + [3.0] * 4  # 10 promoters, 4 detractors of 20: NPS = 100·(10 − 4)/20
    effort = [2.0] * 10 + [5.0] * 10  # mean 3.5
    answers = {("a", "nps"): nps_scores[:12], ("b", "nps"): nps_scores[12:], ("b", "ces"): effort}
    report = FeedbackReport("touchpoint", [], summarise("(all)", []), answers)
    nps, ces = status(m, report, None)
    assert nps.value == pytest.approx(30.0)
    assert nps.status == "met"
    assert ces.statement is not None
    assert ces.statement.comparison == "<="
    assert ces.value == pytest.approx(3.5)
    assert ces.status == "not_met"
    assert measure_text(ces) == "CES 3.5 vs ≤ 3"


def test_conversion_pools_the_scorecard_by_customers() -> None:
    m = TouchpointMap.model_validate(
        {
            "name": "S",
            "touchpoints": [{"key": "a"}, {"key": "b"}],
            "success": [{"text": "Half convert", "metric": "conversion", "threshold": "50%", "scope": {"all": True}}],
        }
    )

    def score(key: str, customers: int, rate: float) -> Score:
        return Score(key, customers, customers, 1.0, rate, None, None, None, None, 0.0, None, None)

    card = Scorecard(0.4, 100, [score("a", 30, 0.7), score("b", 70, 0.4)])
    (result,) = status(m, feedback({}), card)
    assert result.value == pytest.approx((0.7 * 30 + 0.4 * 70) / 100)
    assert result.n == 100
    assert result.status == "not_met"
    assert [f.touchpoint for f in result.failing] == ["b"]
    assert status(m, feedback({}), None)[0].status == "unknown"  # no scorecard: nothing to judge


# -- the map ---------------------------------------------------------------------------------------------


def test_both_shapes_round_trip_and_one_plain_statement_stays_a_string() -> None:
    m = parse_map(MAP, "touchlens.yaml")
    assert isinstance(m.success[0], str)
    assert isinstance(m.success[1], SuccessStatement)
    assert m.success[1].threshold == 0.85
    assert m.success[1].comparison == ">="
    for fmt in ("yaml", "json"):
        assert parse_map(dump_map(m, fmt), f"m.{fmt}") == m
    assert dump_map(parse_map("name: X\nsuccess: Everyone happy\n")).endswith("success: Everyone happy\n")
    one = parse_map("name: X\nsuccess: {text: T, metric: nps, threshold: 10, scope: {all: true}}\n")
    assert parse_map(dump_map(one)) == one
    assert "op:" not in dump_map(one)


def test_statements_read_as_their_text_where_code_expects_text() -> None:
    m = parse_map(MAP)
    assert [str(s) for s in m.success] == [
        "Customers trust us.",
        EVERY,
        "CSAT 85% after purchase, all answers together",
    ]


RANGES = {"csat": (0.0, 1.0), "conversion": (0.0, 1.0), "nps": (-100.0, 100.0), "ces": (1.0, 7.0)}
SCOPES = st.sampled_from([
    {"phase": "post-purchase"}, {"stage": "get"}, {"channel": "email"}, {"all": True},
    {"touchpoints": ["refund", "checkout"]},
])  # fmt: skip


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    """A measurable statement as a person might write it: any metric, threshold in range, op and every or not."""
    metric = draw(st.sampled_from(sorted(RANGES)))
    low, high = RANGES[metric]
    data = {"text": draw(st.text(min_size=1, max_size=30)), "metric": metric, "scope": draw(SCOPES),
            "threshold": draw(st.floats(low, high, allow_nan=False))}  # fmt: skip
    if draw(st.booleans()):
        data["op"] = draw(st.sampled_from([">=", "<="]))
    if draw(st.booleans()):
        data["every"] = draw(st.booleans())
    return data


@settings(max_examples=60, deadline=None)
@given(st.lists(statements() | st.text(min_size=1, max_size=30), min_size=1, max_size=3))
def test_any_mix_of_statements_round_trips(success: list[Any]) -> None:
    m = parse_map(MAP).model_copy(update={"success": []})
    m = TouchpointMap.model_validate({**m.model_dump(by_alias=True), "success": success})
    for fmt in ("yaml", "json"):
        assert parse_map(dump_map(m, fmt), f"m.{fmt}") == m
    assert [str(s) for s in m.success] == [s if isinstance(s, str) else s["text"] for s in success]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("metric: csat\n    threshold: 0.8\n    scope: {stage: nowhere}",
         "touchlens.yaml:8: success[0].scope.stage: unknown stage 'nowhere'; stages are: buy, get"),
        ("metric: csat\n    threshold: 0.8\n    scope: {touchpoints: [checkout, lost]}",
         "touchlens.yaml:8: success[0].scope.touchpoints[1]: unknown touchpoint 'lost'; touchpoints are: checkout"),
        ("metric: joy\n    threshold: 0.8\n    scope: {all: true}",
         "touchlens.yaml:6: success[0].metric: 'joy' is not allowed; allowed values are: 'csat', 'nps', 'ces' or "
         "'conversion'"),
        ("metric: csat\n    threshold: 85\n    scope: {all: true}",
         "touchlens.yaml:7: success[0].threshold: a csat threshold is a number from 0 to 1: write 0.85 or '85%'"),
        ("metric: nps\n    threshold: 30%\n    scope: {all: true}",
         "touchlens.yaml:7: success[0].threshold: a percentage fits only shares (conversion, csat); write a number"),
        ("metric: csat\n    threshold: 0.8\n    scope: {stage: get, channel: web}",
         "touchlens.yaml:8: success[0].scope: a scope needs exactly one of touchpoints, stage, channel, phase, all; "
         "got stage, channel"),
        ("metric: csat\n    threshold: 0.8",
         "touchlens.yaml:5: success[0].scope: required field is missing"),
    ],
)  # fmt: skip
def test_a_bad_statement_is_a_located_error(fields: str, expected: str) -> None:
    text = (
        "name: X\njourneys: [{key: j, stages: [{key: buy}, {key: get}]}]\ntouchpoints: [{key: checkout}]\n"
        f"success:\n  - text: T\n    {fields}\n"
    )
    with pytest.raises(MapError) as caught:
        parse_map(text, "touchlens.yaml")
    assert expected in str(caught.value).splitlines()


# -- the command, the overview and the report -------------------------------------------------------------


def _feedback_csv(scores: dict[str, list[float]]) -> str:
    lines = ["customer_id,ts,metric,score,touchpoint"]
    for tp, values in scores.items():
        for i, v in enumerate(values):
            lines.append(f"{tp}{i},{(T0 + timedelta(minutes=i)).isoformat()}Z,csat,{v:g},{tp}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def shop(cli: Callable[..., Result], tmp_path: Path) -> Path:
    """A workspace holding MAP and answers where the refund email scores 60% and tracking 90%."""
    ws = workspace_with(cli, tmp_path, MAP)
    answers = {"tracking": satisfied(18, 20), "refund": satisfied(12, 20)}
    result = cli("-w", ws, "ingest", "feedback", write(tmp_path / "f.csv", _feedback_csv(answers)))
    assert result.code == 0, result.err
    return ws


def test_analyze_success_prints_each_status_with_names(cli: Callable[..., Result], shop: Path) -> None:
    result = cli("-w", shop, "analyze", "success")
    assert result.code == 0, result.err
    out = " ".join(result.out.split())
    assert "not measurable" in out
    assert "not met" in out
    assert "CSAT 60% at the worst touchpoint vs ≥ 85%" in out
    assert "CSAT 75% vs ≥ 85%" in out
    assert "Refund email" in out


def test_analyze_success_json_has_the_documented_shape(cli: Callable[..., Result], shop: Path) -> None:
    result = cli("-w", shop, "analyze", "success", "--json")
    data = json.loads(result.out)
    assert list(data) == ["statements"]
    plain, every, pooled = data["statements"]
    keys = {"text", "metric", "threshold", "op", "scope", "every", "status", "value", "n", "summary", "reason",
            "failing", "measured"}  # fmt: skip
    assert all(set(s) == keys for s in data["statements"])
    assert (plain["status"], plain["metric"], plain["failing"]) == ("not_measurable", None, [])
    assert every | {"measured": None} == {
        "text": EVERY, "metric": "csat", "threshold": 0.85, "op": ">=", "scope": {"phase": "post-purchase"},
        "every": True, "status": "not_met", "value": 0.6, "n": 20,
        "summary": "CSAT 60% at the worst touchpoint vs ≥ 85%", "reason": "missed at 1 of 2 touchpoints in scope",
        "failing": [{"touchpoint": "refund", "name": "Refund email", "value": 0.6, "n": 20}], "measured": None,
    }  # fmt: skip
    assert pooled["scope"] == {"stage": "get"}
    assert pooled["value"] == pytest.approx(0.75)
    assert pooled["n"] == 40
    csv = cli("-w", shop, "analyze", "success", "--csv").out
    assert "phase: post-purchase" in csv
    assert "refund" in csv


@pytest.fixture
def viewer_client(shop: Path) -> Iterator[TestClient]:
    ws = touchlens.open(shop)
    user_store.add_user(ws.meta_engine(), "vera", "correct horse battery", "viewer")
    app = create_app(shop)
    session, _ = user_store.start_session(app.state.web.ws.meta_engine(), user_store.User("vera", "viewer"))
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, session)
    return client


def test_the_overview_shows_each_statement_with_its_status(viewer_client: TestClient) -> None:
    page = viewer_client.get("/")
    assert page.status_code == 200, page.text
    block = page.text[page.text.index("Success looks like") : page.text.index('aria-label="Headline numbers"')]
    assert "not measurable: add metric, threshold and scope" in block
    assert 'class="tag poor">not met</span>' in block
    assert "CSAT 60% at the worst touchpoint vs ≥ 85%" in block
    assert '<a href="/touchpoints/refund">Refund email</a>' in block


@pytest.mark.slow
def test_the_report_shows_each_statement_with_its_status(shop: Path) -> None:
    html = html_report(touchlens.open(shop))
    part = html[html.index("Success looks like") : html.index("</header>")]
    assert 'class="status not_met">not met</span>' in part
    assert "CSAT 75% vs ≥ 85%" in part
    assert "missed at Refund email" in part
