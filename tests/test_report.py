"""Exports a person can send: XES checked against pm4py, CSV/Parquet in journey order, Mermaid, the journey SVG
and the self-contained HTML report, each with hostile names and comments that must come out escaped."""

from __future__ import annotations

import csv
import gzip
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import touchlens
from tests.conftest import Result, write
from touchlens.cli import app
from touchlens.cli_report import export_app, report_app
from touchlens.report import png
from touchlens.report.markup import attr
from touchlens.report.mermaid import clean, csat_score, emotion_score
from touchlens.report.xes import escape_column

HOSTILE = "<script>alert(1)</script>"
COMMENT = "<img src=x onerror=alert(1)>"
MAP = f"""
name: Acme & Sons
mission: Every customer feels looked after.
success: [90% rate every touchpoint 4+ of 5.]
channels: [{{key: web, name: Website}}, {{key: email, name: Email}}]
journeys:
  - key: buy
    name: Buy something
    stages:
      - {{key: discover, name: Discover, emotion: 1, tasks: [Find the shop, Compare prices, Read reviews, Ask a friend,
          Decide], questions: ["Is it legit?"], weaknesses: [Slow search]}}
      - {{key: purchase, name: "Purchase: pay", emotion: -1, opportunities: [One-click checkout]}}
touchpoints:
  - {{key: home, name: Homepage, stage: discover, channel: web, match: {{event: home}}}}
  - {{key: hostile, name: "{HOSTILE}", stage: discover, channel: email, match: {{event: promo}}}}
  - {{key: cart, name: "Cart: step 1", stage: purchase, channel: web, match: {{event: cart}}}}
  - {{key: receipt, name: Receipt email, stage: purchase, channel: email, match: {{event: receipt}},
      targets: {{csat: 0.8}}}}
outcomes: {{conversion: {{event: receipt}}}}
opportunities:
  - {{title: Say when the parcel lands, touchpoints: [receipt], horizon: now, impact: 3, effort: 1, confidence: 0.8}}
  - {{title: Rethink the promo email, touchpoints: [hostile], horizon: later, impact: 1, effort: 3}}
"""
JOURNEYS = {
    "ann": ["home", "cart", "receipt"],
    "bob": ["home", "promo", "home", "cart"],
    "cy": ["promo", "home", "cart", "receipt"],
    "di": ["home"],
    "ed": ["home", "cart", "home", "cart", "receipt"],
}
FEEDBACK = [
    ("ann", "receipt", 2, COMMENT),
    ("cy", "receipt", 1, "Never arrived: useless"),
    ("ed", "receipt", 2, ""),
    ("ann", "home", 5, "Lovely & quick"),
    ("bob", "home", 4, ""),
    # Enough answers for a judgment ([insights] min_responses): the receipt poor against its target, home good.
    *((f"r{i:02d}", "receipt", 1 + i % 2, "") for i in range(20)),
    *((f"h{i:02d}", "home", 4 + i % 2, "") for i in range(20)),
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace: the map above, the journeys one event a minute (plus an unmapped event), and feedback."""
    tmp = tmp_path_factory.mktemp("report")
    ws = touchlens.init(tmp / "ws")
    ws.import_map(write(tmp / "m.yaml", MAP))
    rows = [
        f"{c},2026-01-0{d + 1}T10:{i:02d}:00Z,{step}"
        for d, (c, steps) in enumerate(JOURNEYS.items())
        for i, step in enumerate([*steps, "unmapped"])
    ]
    ws.ingest_events([write(tmp / "e.csv", "customer_id,ts,event\n" + "\n".join(rows) + "\n")])
    lines = [f'{c},2026-01-09T10:00:00Z,csat,{s},{tp},"{text}"' for c, tp, s, text in FEEDBACK]
    ws.ingest_feedback([write(tmp / "f.csv", "customer_id,ts,metric,score,touchpoint,comment\n" + "\n".join(lines))])
    return ws.root


@pytest.fixture
def run(cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`touchlens ARGS…` with `report` and `export` registered, whether or not touchlens.cli registers them yet."""
    names = {group.name for group in app.registered_groups}
    monkeypatch.setattr(app, "registered_groups", list(app.registered_groups))
    for sub, name in ((report_app, "report"), (export_app, "export")):
        if name not in names:
            app.add_typer(sub, name=name)
    return cli


def _mapped_events(ws: Path) -> int:
    with touchlens.open(ws).events(read_only=True) as con:
        found = con.execute("SELECT count(*) FROM events WHERE touchpoint IS NOT NULL").fetchone()
    return int(found[0]) if found else 0


@pytest.mark.oracle
def test_xes_read_back_by_pm4py_gives_the_directly_follows_graph_of_flows(run, shop, tmp_path) -> None:
    import pm4py  # a dev-only oracle (AGPL), installed by `make install`; touchlens never imports it

    flows = touchlens.open(shop).flows()
    for name in ("log.xes", "log.xes.gz"):
        result = run("-w", shop, "export", "xes", "-o", tmp_path / name)
        assert result.code == 0, result.err
        log = pm4py.read_xes(str(tmp_path / name))
        dfg, start, end = pm4py.discover_dfg(log)
        assert dict(dfg) == {(e.source, e.target): e.count for e in flows.edges}
        assert (dict(start), dict(end)) == (flows.start, flows.end)
        assert sorted(set(log["case:concept:name"])) == sorted(JOURNEYS)
        assert set(log["org:resource"]) == {"web", "email"}
        assert set(log["lifecycle:transition"]) == {"complete"}
        assert str(log["time:timestamp"].dt.tz) == "UTC"
    assert gzip.decompress((tmp_path / "log.xes.gz").read_bytes()) == (tmp_path / "log.xes").read_bytes()
    streamed = run("-w", shop, "export", "xes").out
    assert streamed == (tmp_path / "log.xes").read_text(encoding="utf-8")
    assert streamed.count("<trace>") == len(JOURNEYS)
    assert ET.fromstring(streamed).tag == "{http://www.xes-standard.org/}log"


@pytest.mark.parametrize("value", ['a"b', "<x>&amp;", "line\nbreak\tand\rcr", "nul\x00ctl\x1f", "é 😀", "q'uote"])
def test_xes_escapes_hostile_values_per_column_as_saxutils_does_per_value(value: str) -> None:
    escaped = escape_column(pa.array([value])).to_pylist()[0]
    parsed = ET.fromstring(f'<e v="{escaped}"/>').get("v")
    assert parsed == ET.fromstring(f"<e v={attr(value)}/>").get("v")
    assert parsed == value.replace("\x00", "\ufffd").replace("\x1f", "\ufffd")


def test_csv_and_parquet_hold_every_mapped_event_in_journey_order(run, shop, tmp_path) -> None:
    result = run("-w", shop, "export", "csv")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert len(rows) == _mapped_events(shop) == sum(map(len, JOURNEYS.values()))
    assert list(rows[0]) == ["customer_id", "ts", "touchpoint", "stage", "channel", "event", "event_id"]
    keys = [(r["customer_id"], r["ts"], r["event_id"]) for r in rows]
    assert keys == sorted(keys)
    assert [r["touchpoint"] for r in rows if r["customer_id"] == "bob"] == ["home", "hostile", "home", "cart"]
    assert {r["stage"] for r in rows if r["touchpoint"] == "cart"} == {"purchase"}
    assert run("-w", shop, "export", "csv", "-o", tmp_path / "j.csv").code == 0
    assert (tmp_path / "j.csv").read_text(encoding="utf-8") == result.out
    assert run("-w", shop, "export", "parquet", "-o", tmp_path / "j.parquet").code == 0
    table = pq.read_table(tmp_path / "j.parquet")
    assert table.num_rows == len(rows)
    assert table.column("event_id").to_pylist() == [r["event_id"] for r in rows]
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"


def test_mermaid_has_every_stage_and_touchpoint_scored_by_emotion_or_csat(run, shop) -> None:
    result = run("-w", shop, "export", "mermaid")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[:2] == ["journey", "    title Acme & Sons"]
    assert "    section Discover" in lines
    assert "    section Purchase pay" in lines
    assert "      Homepage: 4: Website" in lines
    assert "      Cart step 1: 2: Website" in lines  # the ':' of the name would end the task name
    assert "      #lt;script#gt;alert(1)#lt;/script#gt;: 4: Email" in lines
    assert "      Receipt email: 2: Email" in lines
    measured = run("-w", shop, "export", "mermaid", "--journey", "buy", "--measured").out.splitlines()
    assert "      Receipt email: 1: Email" in measured  # CSAT 0 of 23 → 1
    assert "      Homepage: 5: Website" in measured  # CSAT 22 of 22 → 5
    assert "title Acme & Sons — Buy something" in measured[1]


def test_mermaid_scores_and_names_are_clean() -> None:
    assert [emotion_score(e) for e in (-2, -1, 0, 1, 2, None)] == [1, 2, 3, 4, 5, 3]
    assert [csat_score(c) for c in (0.0, 0.3, 0.5, 1.0)] == [1, 2, 3, 5]
    assert clean("a: b;\nc #d %% e") == "a b c d e"
    assert clean("Smith, Jones", actor=True) == "Smith Jones"


def _svg(run: Callable[..., Result], shop: Path, tmp_path: Path, *args: str) -> str:
    result = run("-w", shop, "report", "svg", "-o", tmp_path / "map.svg", *args)
    assert result.code == 0, result.err
    return (tmp_path / "map.svg").read_text(encoding="utf-8")


def test_svg_has_a_card_per_touchpoint_two_emotion_curves_and_escaped_names(run, shop, tmp_path) -> None:
    svg = _svg(run, shop, tmp_path)
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    cards = root.findall(".//s:g[@class='card']", ns)
    assert sorted(c.get("data-key") for c in cards) == ["cart", "home", "hostile", "receipt"]
    health = {c.get("data-key"): c.get("data-health") for c in cards}
    assert health["receipt"] == "poor"
    assert health["home"] == "good"
    assert health["cart"] == "unmeasured"
    curves = {p.get("class"): p.get("points") for p in root.iter("{http://www.w3.org/2000/svg}polyline")}
    assert set(curves) == {"designed", "measured"}
    assert len(curves["designed"].split()) == 2
    assert len(curves["measured"].split()) == 2
    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "Acme &amp; Sons" in svg
    assert {r.get("data-row") for r in root.findall(".//s:g[@class='stage-row']", ns)} == {
        "tasks", "questions", "weaknesses", "opportunities"
    }  # fmt: skip
    assert "+2 more" in svg  # five tasks: three shown
    assert run("-w", shop, "report", "svg").out == svg  # stdout, and the same bytes every time


def test_svg_for_one_journey_and_errors_say_what_to_do(run, shop, tmp_path) -> None:
    assert "Buy something" in _svg(run, shop, tmp_path, "--journey", "buy")
    unknown = run("-w", shop, "report", "svg", "--journey", "nope")
    assert unknown.code == 1
    assert "journeys are: buy" in unknown.err
    no_file = run("-w", shop, "report", "svg", "--png")
    assert no_file.code == 1
    assert "--output" in no_file.err


def test_png_needs_chromium_and_says_so(monkeypatch) -> None:
    monkeypatch.setattr(png, "CHROMIUM", "/nowhere/chromium")
    monkeypatch.setattr(png.shutil, "which", lambda name: None)
    with pytest.raises(touchlens.TouchlensError, match="apt-get install chromium"):
        png.svg_to_png("<svg/>", "x.png")


@pytest.mark.browser
@pytest.mark.skipif(not Path(png.CHROMIUM).exists(), reason="needs Debian's chromium")
def test_png_is_rendered_by_chromium(run, shop, tmp_path) -> None:
    pytest.importorskip("playwright")
    result = run("-w", shop, "report", "svg", "--png", "-o", tmp_path / "map.png")
    assert result.code == 0, result.err
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, Any]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.slow
def test_html_report_is_self_contained_and_escapes_untrusted_text(run, shop, tmp_path) -> None:
    result = run("-w", shop, "report", "html", "-o", tmp_path / "report.html")
    assert result.code == 0, result.err
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    links = [v for _, attrs in parser.tags for k, v in attrs.items() if k in ("src", "href") and v]
    assert [v for v in links if re.match(r"\s*(https?:)?//", v)] == []
    assert {t for t, _ in parser.tags}.isdisjoint({"script", "img", "link", "iframe", "object"})
    assert "<script" not in page.lower()
    assert "url(" not in page
    assert not re.search(r"https?:|//", page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert COMMENT not in page
    assert "Every customer feels looked after." in page
    assert "Acme &amp; Sons" in page
    assert page.count('class="card"') == 4
    assert 'class="measured"' in page
    roadmap = page[page.index('id="roadmap"') :]
    now, later = roadmap.index("Now ("), roadmap.index("Later (")
    assert now < roadmap.index("Say when the parcel lands") < later < roadmap.index("Rethink the promo email")
    # The poor touchpoint as a problem, said in words with its evidence, not JSON.
    assert "Customers rate Receipt email poorly: CSAT 0% against its target of 80%" in page
    assert '{"' not in page
