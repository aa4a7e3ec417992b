"""The CSV inventory: 200 rows import, bad rows are reported by their spreadsheet row and left out."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from tests.conftest import write
from touchlens.model.inventory import COLUMNS, format_cell, parse_cell, parse_inventory
from touchlens.model.map import Condition

STAGES = ["discover", "consider", "buy", "deliver", "support"]
CHANNELS = ["web", "email", "sms", "phone", "store"]
MAP = """\
name: Inventory Co
channels: [{key: web}, {key: email}, {key: sms}, {key: phone}, {key: store}]
journeys:
  - key: main
    stages: [{key: discover}, {key: consider}, {key: buy}, {key: deliver}, {key: support}]
"""


def inventory_rows(n: int, seed: int = 7) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {
            "Key": f"tp_{i:03d}",
            "Name": f"Touchpoint {i}",
            "Stage": rng.choice(STAGES),
            "Channel": rng.choice(CHANNELS),
            "Phase": rng.choice(["pre-purchase", "purchase", "post-purchase"]),
            "Owner": rng.choice(["Care", "Marketing", "Logistics"]),
            "Desired feel": "Calm",
            "Match event": f"event_{i}",
            "Match where": f"template=t{i}; plan=a|b",
            "Target CSAT": "0.8",
        }
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_200_row_inventory_imports_and_bad_rows_are_reported_by_row(cli, tmp_path: Path) -> None:
    rows = inventory_rows(200)
    rows[4]["Phase"] = "whenever"  # spreadsheet row 6 (header is row 1)
    rows[49]["Channel"] = "fax"  # row 51
    rows[99]["Key"] = ""  # row 101
    rows[149]["Target CSAT"] = "85%"  # row 151
    rows[199]["Match event"] = "event_0"  # row 201: same rule as row 2
    rows[199]["Match where"] = "template=t0; plan=a|b"
    path = write_csv(tmp_path / "inventory.csv", rows)
    ws = tmp_path / "ws"
    assert cli("init", ws).code == 0
    assert cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", MAP)).code == 0

    result = cli("-w", ws, "map", "import", path, "--json")

    assert result.code == 1
    reported = sorted({int(line.split(":")[1]) for line in result.err.splitlines() if line.startswith(str(path))})
    assert reported == [6, 51, 101, 151, 201]
    assert f"{path}:6: phase: 'whenever' is not allowed" in result.err
    assert f"{path}:51: channel: unknown channel 'fax'" in result.err
    assert f"{path}:151: target_csat:" in result.err
    assert f"{path}:201: match: match rule overlaps the rule of touchpoint 'tp_000'" in result.err
    listed = cli("-w", ws, "touchpoints", "--json")
    keys = [tp["key"] for tp in __import__("json").loads(listed.out)["touchpoints"]]
    assert len(keys) == 195
    assert "tp_004" not in keys
    assert "tp_199" not in keys
    assert cli("-w", ws, "matrix", "--json").code == 0


def test_headers_are_forgiving_and_unknown_columns_are_reported(tmp_path: Path) -> None:
    text = "KEY,Name,Stage,Desired-Think,Colour\nrefund,Refund email,returns,They kept their word,blue\n"
    inv = parse_inventory(text, "inv.csv")
    assert inv.unknown_columns == ["colour"]
    [row] = inv.rows
    assert row.touchpoint.desired is not None
    assert row.touchpoint.desired.think == "They kept their word"


def test_a_file_without_a_key_column_is_refused(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    result = cli("-w", ws, "map", "import", write(tmp_path / "inv.csv", "name,stage\nA,buy\n"))
    assert result.code == 1
    assert "inv.csv:1: no 'key' column; columns are: name, stage" in result.err


def test_quoted_cells_may_hold_line_breaks_and_rows_keep_their_spreadsheet_number(tmp_path: Path) -> None:
    text = 'key,description,phase\na,"two\nlines",purchase\nb,,nope\n'
    inv = parse_inventory(text, "inv.csv")
    assert inv.rows[0].touchpoint.description == "two\nlines"
    assert [p.line for p in inv.problems] == [3]


def test_a_new_row_clashing_with_a_stored_rule_is_the_row_reported(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    stored = "name: S\ntouchpoints:\n  - {key: a, match: {event: x}}\n  - {key: b, match: {event: y}}\n"
    cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", stored))
    csv_path = write(tmp_path / "inv.csv", "key,match_event\na,y\nc,z\n")
    result = cli("-w", ws, "map", "import", "--merge", csv_path)
    assert result.code == 1
    assert f"{csv_path}:2: match: match rule overlaps the rule of touchpoint 'b'" in result.err
    listed = cli("-w", ws, "touchpoints", "--csv").out.splitlines()[1:]
    assert [line.split(",")[0] for line in listed] == ["a", "b", "c"]


def test_an_inventory_with_no_valid_row_changes_nothing(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", "name: S\ntouchpoints: [{key: a}]\n"))
    result = cli("-w", ws, "map", "import", write(tmp_path / "inv.csv", "key,phase\nb,soon\n"))
    assert result.code == 1
    assert "inv.csv:2: phase: 'soon' is not allowed" in result.err
    assert cli("-w", ws, "touchpoints", "--csv").out.splitlines()[1:] == ["a,,,,,,,"]


def test_cell_syntax_reads_each_operator() -> None:
    assert parse_cell("email_sent") == {"equals": "email_sent"}
    assert parse_cell("a | b") == {"in": ["a", "b"]}
    assert parse_cell("sms_*") == {"prefix": "sms_"}
    assert parse_cell("*") == {"exists": True}
    assert parse_cell("!*") == {"exists": False}


def test_cells_the_syntax_cannot_say_fall_back_to_json() -> None:
    assert format_cell(Condition.model_validate({"equals": "a|b"})) is None
    assert format_cell(Condition.model_validate({"equals": 3})) is None
    assert format_cell(Condition.model_validate({"in": ["x", "y"]})) == "x | y"


def test_every_documented_column_round_trips_through_export(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", Path(__file__).parent.parent / "examples" / "outdoor_retail.yaml")
    exported = cli("-w", ws, "map", "export", "--format", "csv")
    header = next(csv.reader(io.StringIO(exported.out)))
    assert header == list(COLUMNS)
    before = cli("-w", ws, "map", "export", "--format", "json").out
    path = tmp_path / "out.csv"
    path.write_bytes(exported.out.encode())
    assert cli("-w", ws, "map", "import", path).code == 0
    assert cli("-w", ws, "map", "export", "--format", "json").out == before
