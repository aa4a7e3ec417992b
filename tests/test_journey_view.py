"""One journey view (model/views.journey_view) behind every picture of a journey: the canvas page, the SVG map
and the Mermaid diagram show the same touchpoints for each journey and for the whole map (issue 19)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import touchlens
from touchlens.model.views import journey_view
from touchlens.report import journey_svg
from touchlens.report.mermaid import mermaid
from touchlens.store import users as user_store
from touchlens.web.app import create_app
from touchlens.web.security import SESSION_COOKIE

from .conftest import write

MAP = {
    "name": "Two personas",
    "personas": [{"key": "buyer"}, {"key": "renter"}],
    "channels": [{"key": "web"}, {"key": "store"}, {"key": "phone"}],
    "journeys": [
        {"key": "buy", "persona": "buyer", "stages": [{"key": "find"}, {"key": "pay"}]},
        {"key": "rent", "persona": "renter", "stages": [{"key": "find"}, {"key": "return"}]},
    ],
    "touchpoints": [
        {"key": "search", "stage": "find", "channel": "web"},  # everyone's
        {"key": "showroom", "stage": "find", "channel": "store", "personas": ["buyer"]},
        {"key": "rental_desk", "stage": "find", "channel": "store", "personas": ["renter"]},
        {"key": "checkout", "stage": "pay", "channel": "web", "personas": ["buyer"]},
        {"key": "drop_off", "stage": "return", "personas": ["renter"]},  # no channel
        {"key": "newsletter", "channel": "web"},  # no stage
        {"key": "hotline", "stage": "pay", "channel": "phone", "personas": ["renter"]},  # not on the renter's path
    ],
}
EXPECTED = {
    None: {"search", "showroom", "rental_desk", "checkout", "drop_off", "newsletter", "hotline"},
    "buy": {"search", "showroom", "checkout"},
    "rent": {"search", "rental_desk", "drop_off"},
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    folder = tmp_path_factory.mktemp("views")
    ws = touchlens.init(folder / "ws")
    ws.import_map(write(folder / "map.json", json.dumps(MAP)))
    user_store.add_user(ws.meta_engine(), "viewer", "correct horse battery", "viewer")
    client = TestClient(create_app(ws.root), follow_redirects=False)
    session, _ = user_store.start_session(ws.meta_engine(), user_store.User("viewer", "viewer"))
    client.cookies.set(SESSION_COOKIE, session)
    return client


@pytest.mark.parametrize("journey", [None, "buy", "rent"])
def test_canvas_svg_and_mermaid_show_the_journeys_touchpoints(client: TestClient, journey: str | None) -> None:
    m = client.app.state.web.ws.map()  # type: ignore[attr-defined]
    view = {t.key for t in journey_view(m, journey).shown()}
    assert view == EXPECTED[journey]  # by hand: a persona's journey leaves out touchpoints only others meet
    page = client.get("/canvas", params={"journey": journey} if journey else {})
    assert page.status_code == 200
    canvas = set(re.findall(r'data-touchpoint="([^"]+)"', page.text))
    svg = set(re.findall(r'class="card" data-key="([^"]+)"', journey_svg.render(m, {}, {}, journey)))
    diagram = [line for line in mermaid(m, journey).splitlines() if re.match(r"\s{6}\S", line)]
    assert canvas == svg == view
    assert len(diagram) == len(view)


def test_a_map_without_journeys_keeps_every_staged_touchpoint(tmp_path: Path) -> None:
    data = {"name": "Inventory only", "touchpoints": [{"key": "a", "stage": "learn"}, {"key": "b", "stage": "buy"}]}
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "map.json", json.dumps(data)))
    view = journey_view(ws.map())
    assert [s.key for s in view.stages] == ["learn", "buy"]
    assert {t.key for t in view.shown()} == {"a", "b"}
    assert set(re.findall(r'data-key="([^"]+)"', journey_svg.render(ws.map(), {}, {}))) == {"a", "b"}
