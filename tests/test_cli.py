"""The command line, as a user runs it: init, import, export, check, touchpoints, matrix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, write
from tests.test_mapfile import BROKEN

RETAIL = EXAMPLES / "outdoor_retail.yaml"


def test_import_then_export_json_round_trips_a_map_nobody_tuned_for(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    source = write(
        tmp_path / "bakery.yaml",
        """\
name: Corner Bakery
mission: Warm bread, warm welcome.
channels:
  - {key: counter, name: Shop counter, kind: offline, stages: [visit]}
  - {key: whatsapp, kind: digital, strategy: Orders and pick-up times}
personas:
  - {key: regular, name: Regular, segment: [{property: visits, in: [weekly, daily]}]}
journeys:
  - key: morning
    persona: regular
    stages:
      - {key: order, goal: Reserve a loaf, tasks: [Message the shop], emotion: 0}
      - {key: visit, questions: ["Is it ready?"], emotion: 2, weaknesses: [Queue at 8am]}
touchpoints:
  - key: order_chat
    name: WhatsApp order
    stage: order
    channel: whatsapp
    phase: purchase
    initiative: reactive
    directness: direct
    owner: Front of house
    expectations: A quick yes.
    desired: {feel: Looked after}
    match: {event: message_received, where: {thread: {prefix: order-}}}
    targets: {csat: 0.9, ces: 2}
outcomes: {conversion: {event: loaf_collected}, churn: {inactive_days: 60}}
opportunities:
  - {title: Text when the loaf is ready, touchpoints: [order_chat], horizon: next, impact: 2, effort: 1}
""",
    )
    assert cli("--workspace", ws, "init").code == 0
    assert cli("--workspace", ws, "map", "import", source).code == 0
    exported = cli("--workspace", ws, "map", "export", "--format", "json")
    data = json.loads(exported.out)
    assert set(data) >= {"channels", "personas", "journeys", "touchpoints", "outcomes", "opportunities"}
    assert [c["key"] for c in data["channels"]] == ["counter", "whatsapp"]
    assert data["channels"][0] == {
        "key": "counter",
        "name": "Shop counter",
        "kind": "offline",
        "stages": ["visit"],
    }
    assert [s["key"] for s in data["journeys"][0]["stages"]] == ["order", "visit"]
    tp = data["touchpoints"][0]
    assert tp["match"] == {"event": "message_received", "where": {"thread": {"prefix": "order-"}}}
    assert tp["targets"] == {"csat": 0.9, "ces": 2.0}
    assert tp["desired"] == {"feel": "Looked after"}
    assert data["opportunities"][0]["key"] == "text_when_the_loaf_is_ready"
    # The exported JSON imports again to the same map.
    again = write(tmp_path / "again.json", exported.out)
    assert cli("-w", ws, "map", "import", again).code == 0
    assert cli("-w", ws, "map", "export", "--format", "json").out == exported.out


def test_a_broken_map_exits_1_with_all_four_errors(cli, tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", BROKEN)
    ws = tmp_path / "ws"
    cli("init", ws)
    for args in (("map", "check", path), ("-w", ws, "map", "import", path)):
        result = cli(*args)
        assert result.code == 1
        errors = [line for line in result.err.splitlines() if line.startswith(f"{path}:")]
        assert len(errors) == 4
        assert "unknown channel 'sms'" in errors[0]
        assert "unknown stage 'nowhere'" in errors[1]
        assert "'afterwards' is not allowed" in errors[2]
        assert "duplicate key 'receipt'" in errors[3]
        assert "Traceback" not in result.err
    assert cli("-w", ws, "touchpoints").code == 1  # nothing was imported


def test_merge_replaces_items_by_key_and_keeps_the_rest(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", RETAIL)
    patch = write(
        tmp_path / "patch.yaml", "name: Trailhead Outfitters\ntouchpoints:\n  - {key: homepage, owner: Web}\n"
    )
    assert cli("-w", ws, "map", "import", patch, "--merge").code == 0
    data = json.loads(cli("-w", ws, "map", "export", "--format", "json").out)
    homepage = next(t for t in data["touchpoints"] if t["key"] == "homepage")
    assert homepage == {"key": "homepage", "owner": "Web"}
    assert len(data["touchpoints"]) == 38
    assert len(data["channels"]) == 8


def test_merge_keeps_what_the_merged_file_does_not_say(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", write(tmp_path / "a.yaml", "name: A\nsuccess: [One, Two]\nmission: M\n"))
    cli("-w", ws, "map", "import", "--merge", write(tmp_path / "b.yaml", "name: B\n"))
    data = json.loads(cli("-w", ws, "map", "export", "--format", "json").out)
    assert data == {"name": "B", "mission": "M", "success": ["One", "Two"]}


def test_version_and_export_format_from_the_file_name(cli, tmp_path: Path) -> None:
    import touchlens

    assert cli("--version").out.strip() == touchlens.__version__
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", RETAIL)
    assert cli("-w", ws, "map", "export", "-o", tmp_path / "m.json").code == 0
    assert json.loads((tmp_path / "m.json").read_text())["name"] == "Trailhead Outfitters"


@pytest.mark.slow
def test_touchpoint_filters(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", RETAIL)
    every = json.loads(cli("-w", ws, "touchpoints", "--json").out)["touchpoints"]

    def keys(*args: str) -> list[str]:
        return [t["key"] for t in json.loads(cli("-w", ws, "touchpoints", "--json", *args).out)["touchpoints"]]

    assert keys("--stage", "returns") == [t["key"] for t in every if t.get("stage") == "returns"]
    assert keys("--channel", "sms", "--phase", "post-purchase") == [
        t["key"] for t in every if t.get("channel") == "sms" and t.get("phase") == "post-purchase"
    ]
    assert keys("--owner", "customer care") == [t["key"] for t in every if t.get("owner") == "Customer Care"]
    persona = keys("--persona", "gift_buyer")
    assert 0 < len(persona) < len(every)
    unknown = cli("-w", ws, "touchpoints", "--stage", "moon")
    assert unknown.code == 1
    assert "unknown stage 'moon'; stages are:" in unknown.err
    assert cli("-w", ws, "touchpoints", "--phase", "sometime").code == 2
    as_csv = cli("-w", ws, "touchpoints", "--csv").out.splitlines()
    assert as_csv[0] == "key,name,stage,channel,phase,initiative,directness,owner"
    assert len(as_csv) == 1 + len(every)


def test_the_matrix_shows_every_cell_and_the_planned_gaps(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", RETAIL)
    mx = json.loads(cli("-w", ws, "matrix", "--json").out)
    assert len(mx["cells"]) == len(mx["stages"]) * len(mx["channels"])
    placed = sorted(k for c in mx["cells"] for k in c["touchpoints"])
    every = json.loads(cli("-w", ws, "touchpoints", "--json").out)["touchpoints"]
    assert placed == sorted(t["key"] for t in every)
    gaps = [(c["stage"], c["channel"]) for c in mx["cells"] if c["status"] == "gap"]
    checks = json.loads(cli("-w", ws, "map", "check", "--json").out)["findings"]
    assert gaps == [tuple(f["subject"].split("/")) for f in checks if f["check"] == "planned_cell_empty"]
    table = cli("-w", ws, "matrix")
    assert "planned, none" in table.out


def test_design_checks_name_what_a_thin_map_lacks(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "thin.yaml",
        "name: Thin\nchannels: [{key: email}, {key: fax}]\npersonas: [{key: p}]\n"
        "journeys: [{key: j, stages: [{key: buy}, {key: after, emotion: 1}]}]\n"
        "touchpoints: [{key: receipt, stage: buy, channel: email}]\n",
    )
    result = cli("map", "check", path, "--json")
    assert result.code == 0
    found = {(f["check"], f["subject"]) for f in json.loads(result.out)["findings"]}
    assert found == {
        ("stage_without_touchpoint", "after"),
        ("stage_without_emotion", "j/buy"),
        ("unused_channel", "fax"),
        ("persona_without_journey", "p"),
        ("touchpoint_without_owner", "receipt"),
        ("touchpoint_without_expectations", "receipt"),
        ("touchpoint_without_match", "receipt"),
    }
    assert cli("map", "check", path, "--strict").code == 1


def test_commands_without_a_workspace_or_map_say_what_to_do(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("touchpoints")
    assert result.code == 1
    assert "touchlens init" in result.err
    cli("init")
    result = cli("matrix")
    assert result.code == 1
    assert "touchlens map import FILE" in result.err


def test_hostile_names_print_as_text_not_markup(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.yaml",
        'name: "[bold red]Evil[/]"\ntouchpoints: [{key: a, name: "[link=x]click[/link]"}]\n',
    )
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", path)
    out = cli("-w", ws, "touchpoints").out
    assert "[bold red]Evil[/]" in out
    assert "[link=x]click[/link]" in out


@pytest.mark.slow
def test_the_installed_command_runs_end_to_end(tmp_path: Path) -> None:
    exe = shutil.which("touchlens", path=str(Path(sys.executable).parent))
    assert exe is not None, "touchlens is not installed next to this Python"
    ws = tmp_path / "ws"
    run = lambda *a: subprocess.run([exe, *map(str, a)], capture_output=True, text=True, check=False)  # noqa: E731
    assert run("--workspace", ws, "init").returncode == 0
    assert run("--workspace", ws, "map", "import", RETAIL).returncode == 0
    out = run("--workspace", ws, "map", "export", "--format", "json")
    assert out.returncode == 0
    assert len(json.loads(out.stdout)["touchpoints"]) == 38
    bad = run("--workspace", ws, "map", "import", tmp_path / "missing.yaml")
    assert bad.returncode == 1
    assert "missing.yaml: file not found" in bad.stderr


def test_a_merge_that_breaks_references_names_the_merged_file(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    assert cli("-w", ws, "map", "import", EXAMPLES / "outdoor_retail.yaml").code == 0
    extra = write(tmp_path / "extra.yaml", "name: X\ntouchpoints:\n  - {key: t1, name: T, stage: nowhere}\n")
    result = cli("-w", ws, "map", "import", extra, "--merge")
    assert result.code == 1
    assert f"{extra} (merged): touchpoints[" in result.err
    assert "unknown stage 'nowhere'" in result.err
