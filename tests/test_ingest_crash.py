"""kill -9 at random instants, then the same command again: every valid row is stored exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import touchlens

pytestmark = pytest.mark.slow


def _events_file(path: Path, n: int) -> int:
    """n valid events, duplicates and bad lines mixed in; returns the number of distinct valid events."""
    rng = random.Random(11)
    lines = []
    for i in range(n):
        message = {
            "type": "track",
            "messageId": f"m{i}",
            "userId": f"u{i % 500}",
            "event": rng.choice(["page_viewed", "email_sent", "order_placed"]),
            "timestamp": f"2026-0{1 + i % 9}-1{i % 10}T10:00:00Z",
            "properties": {"i": i},
        }
        lines.append(json.dumps(message))
    lines += rng.sample(lines, n // 10)  # duplicates
    lines += ['{"type": "track", "messageId": "bad'] * 3
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return n


def test_kill_at_twenty_random_instants_then_rerun_stores_each_row_once(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).parent / "touchlens")
    data = tmp_path / "events.jsonl"
    expected = _events_file(data, 20_000)
    ws = touchlens.init(tmp_path / "ws").root
    env = {**os.environ, "TOUCHLENS_INGEST__BATCH_ROWS": "700"}
    command = [exe, "--workspace", str(ws), "ingest", "events", str(data), "--json"]
    rng = random.Random(5)
    for _ in range(20):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr
    with touchlens.open(ws).events(read_only=True) as con:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() or (
            0,
            0,
        )
        bad = con.execute("SELECT count(*) FROM quarantine").fetchone()
    assert (total, distinct) == (expected, expected)
    assert bad == (3,)
    again = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    assert again["accepted"] == 0
