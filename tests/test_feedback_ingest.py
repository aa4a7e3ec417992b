"""Feedback ingestion: scales checked, responses tied to touchpoints (named or by the attach window), once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import touchlens
from tests.conftest import write

DATA = Path(__file__).parent / "data"
MAP = """\
name: Shop
touchpoints:
  - {key: refund_email, match: {event: email_sent, where: {template: refund}}}
  - {key: chat, match: {event: chat_started}}
"""
EVENTS = """\
customer_id,ts,event,template
c1,2026-03-01T10:00:00Z,email_sent,refund
c1,2026-03-05T10:00:00Z,chat_started,
c2,2026-03-01T10:00:00Z,chat_started,
"""


def _workspace(cli: Any, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", MAP))
    cli("-w", ws, "ingest", "events", write(tmp_path / "e.csv", EVENTS), "--json")
    return ws


def _feedback(cli: Any, ws: Path, *args: str | Path) -> dict[str, Any]:
    result = cli("-w", ws, "ingest", "feedback", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_responses_attach_to_the_latest_touchpoint_within_the_window(cli, tmp_path: Path) -> None:
    ws = _workspace(cli, tmp_path)
    path = write(
        tmp_path / "f.csv",
        "response_id,customer_id,ts,metric,score,touchpoint,comment\n"
        "a,c1,2026-03-01T12:00:00Z,csat,2,,Still waiting\n"  # 2 h after the refund email
        "b,c1,2026-03-05T11:00:00Z,csat,5,,Great chat\n"  # 1 h after the chat
        "c,c2,2026-03-04T10:00:00Z,csat,4,,\n"  # 3 days after c2's chat: outside 48 h
        "d,c2,2026-03-04T10:00:00Z,nps,10,chat,\n"  # named explicitly
        "e,c2,2026-03-04T10:00:00Z,nps,11,,\n"  # out of range
        "f,c2,2026-03-04T10:00:00Z,csat,4,nowhere,\n"  # unknown touchpoint
        "g,c3,2026-03-04T10:00:00Z,mood,4,,\n",  # unknown metric
    )
    report = _feedback(cli, ws, path)
    assert (report["read"], report["accepted"], report["quarantined"]) == (7, 4, 3)
    assert report["by_touchpoint"] == {"chat": 2, "refund_email": 1}
    assert report["unmapped"] == 1
    reasons = {r["reason"] for r in json.loads(cli("-w", ws, "quarantine", "list", "--json").out)["reasons"]}
    assert reasons == {"score out of range", "unknown touchpoint", "unknown metric"}
    assert _feedback(cli, ws, path)["accepted"] == 0
    wider = _feedback(cli, ws, path, "--attach-window", "4d", "--source", "again")
    assert wider["by_touchpoint"] == {"chat": 3, "refund_email": 1}


def test_a_qualtrics_export_ingests_with_its_three_header_rows(cli, tmp_path: Path) -> None:
    ws = _workspace(cli, tmp_path)
    report = _feedback(cli, ws, DATA / "qualtrics_survey.csv")
    assert report["quarantined"] == 1  # the NPS answer of 11
    assert report["accepted"] > 0
    with touchlens.open(ws).events(read_only=True) as con:
        metrics = dict(con.execute("SELECT metric, count(*) FROM feedback GROUP BY 1").fetchall())
        rows = con.execute("SELECT DISTINCT \"row\" FROM quarantine WHERE kind = 'feedback'").fetchall()
    assert set(metrics) == {"nps", "csat", "ces"}
    assert sum(metrics.values()) == report["accepted"]
    assert all(r[0] >= 4 for r in rows)  # data starts on spreadsheet row 4


def test_bad_attach_window_is_a_clear_error(cli, tmp_path: Path) -> None:
    ws = _workspace(cli, tmp_path)
    result = cli("-w", ws, "ingest", "feedback", DATA / "feedback_long.csv", "--attach-window", "soon")
    assert result.code == 1
    assert "--attach-window: 'soon' is not a duration" in result.err


def test_fixed_scales_ignore_a_file_scale_and_reasons_name_their_field(cli, tmp_path: Path) -> None:
    ws = _workspace(cli, tmp_path)
    path = write(
        tmp_path / "f.csv",
        "response_id,customer_id,ts,metric,score,scale_max,touchpoint\n"
        "a,c1,2026-03-01T12:00:00Z,nps,15,20,\n"  # NPS stays 0-10 whatever the file says
        "b,c1,2026-03-01T12:00:00Z,rating,8,10,\n"  # a rating may bring its own scale
        "c,c1,2026-03-01T12:00:00Z,csat,x,,nowhere\n",  # two problems: the first one is reported
    )
    report = _feedback(cli, ws, path)
    assert (report["accepted"], report["quarantined"]) == (1, 2)
    reasons = json.loads(cli("-w", ws, "quarantine", "list", "--json").out)["reasons"]
    found = {(r["reason"], e["field"]) for r in reasons for e in r["examples"]}
    assert found == {("score out of range", "score"), ("score not a number", "score")}
