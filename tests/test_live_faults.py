"""Faults under live load: kill -9 mid-stream, a full disk, a read-only store. Acknowledged events survive once,
retried ones land once, and the store stays whole."""

from __future__ import annotations

import asyncio
import resource
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import uvicorn
from fastapi.testclient import TestClient

import touchlens
from benchmarks.liveclient import Connection, Server, batch_body
from tests.conftest import EXAMPLES
from touchlens import cli_web
from touchlens.ingest.live import LiveWriter
from touchlens.store import keys as key_store
from touchlens.store.events import TABLES, connect
from touchlens.store.users import add_user
from touchlens.web import app as web_app
from touchlens.web.app import create_app

pytestmark = pytest.mark.slow

SIZE = 50  # messages a batch
DROPPED = (ConnectionError, OSError, asyncio.IncompleteReadError, TimeoutError)


def _workspace(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "ws"
    ws = touchlens.init(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    _, key = key_store.add_key(ws.meta_engine(), "ingest", "faults", "load", "test")
    add_user(ws.meta_engine(), "admin", secrets.token_urlsafe(16), "admin")
    return root, key


class Ledger:
    """Which batches the server acknowledged, and which were sent without an answer."""

    def __init__(self) -> None:
        self.acked: dict[tuple[int, int], list[str]] = {}
        self.unanswered: dict[tuple[int, int], bytes] = {}
        self.ids: dict[tuple[int, int], list[str]] = {}


async def _send_until_killed(server: Server, key: str, ledger: Ledger, first_seq: int, kill_after: int) -> None:
    """Four clients send until `kill_after` more batches are acknowledged; then the server gets kill -9."""
    start = len(ledger.acked)
    killed = asyncio.Event()

    async def client(number: int) -> None:
        conn, seq = Connection(server.port, key), first_seq
        while not killed.is_set():
            body, ids = batch_body(number, seq, SIZE)
            ledger.ids[(number, seq)] = ids
            try:
                status, answer = await conn.post("/v1/batch", body, timeout=10)
            except DROPPED:
                ledger.unanswered[(number, seq)] = body
                return
            assert status == 200, answer
            ledger.acked[(number, seq)] = ids
            seq += 1
            if len(ledger.acked) - start >= kill_after and not killed.is_set():
                killed.set()
                server.kill()

    await asyncio.gather(*(client(n) for n in range(4)))


async def _resend(port: int, key: str, ledger: Ledger) -> None:
    conn = Connection(port, key)
    for batch_key, body in list(ledger.unanswered.items()):
        status, answer = await conn.post("/v1/batch", body)
        assert status == 200, answer
        assert answer["accepted"] + answer["duplicates"] == SIZE
        ledger.acked[batch_key] = ledger.ids[batch_key]
        del ledger.unanswered[batch_key]
    conn.close()


def _check_store(events: Path) -> tuple[int, list[str]]:
    """(rows in every table, event ids of the load), after the store has checkpointed cleanly."""
    con = connect(events)  # creates the schema when the store is new
    try:
        total = sum(int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES)
        ids = [r[0] for r in con.execute("SELECT event_id FROM events WHERE source = 'load'").fetchall()]
        con.execute("FORCE CHECKPOINT")
    finally:
        con.close()
    return total, ids


def test_kill_9_at_several_points_then_retry_loses_and_doubles_nothing(tmp_path: Path) -> None:
    root, key = _workspace(tmp_path)
    ledger = Ledger()
    for round_number, kill_after in enumerate((3, 25, 60)):
        server = Server(root)
        server.start()
        asyncio.run(_resend(server.port, key, ledger))  # what the last kill left unanswered
        asyncio.run(_send_until_killed(server, key, ledger, 10_000 * round_number, kill_after))
        assert server.proc is not None
        assert server.proc.returncode == -signal.SIGKILL
    server = Server(root)
    server.start()
    asyncio.run(_resend(server.port, key, ledger))
    server.stop()
    _, ids = _check_store(root / "events.duckdb")
    expected = [i for batch in ledger.acked.values() for i in batch]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert sorted(ids) == sorted(expected), "an acknowledged or retried event is missing"
    assert len(ledger.acked) >= 88


def _limited(size: int) -> None:
    """In the server process: files may not grow past `size` bytes (as on a full disk: writes fail)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_full_disk_answers_503_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    root, key = _workspace(tmp_path)
    events = root / "events.duckdb"
    # The store as it is before any event, so the limit leaves room for a few batches only.
    _check_store(events)
    limit = events.stat().st_size + 400_000
    server = Server(root)
    code = "from touchlens.cli import main; main()"
    args = [sys.executable, "-c", code, "-w", str(root), "serve", "--port", str(server.port)]
    server.proc = subprocess.Popen(args, stderr=subprocess.PIPE, preexec_fn=lambda: _limited(limit))
    server.wait_ready()
    acked: list[str] = []
    refused = 0

    async def fill() -> None:
        nonlocal refused
        conn = Connection(server.port, key)
        for seq in range(200):
            body, ids = batch_body(0, seq, SIZE)
            status, answer = await conn.post("/v1/batch", body)
            if status == 200:
                acked.extend(ids)
            else:
                assert status == 503, answer
                assert "could not commit" in answer["detail"]
                refused += 1
                if refused >= 3:
                    return

    asyncio.run(fill())
    server.kill()
    assert refused >= 3, "the size limit never bit"
    _, ids = _check_store(events)  # opens, replays its log and checkpoints without the limit
    assert len(ids) == len(set(ids))
    assert set(acked) <= set(ids)


def test_a_read_only_store_answers_503_with_the_reason(tmp_path: Path) -> None:
    root, key = _workspace(tmp_path)
    _check_store(root / "events.duckdb")
    copy = tmp_path / "read-only.duckdb"
    shutil.copy(root / "events.duckdb", copy)
    with TestClient(create_app(root)) as client:
        ws = client.app.state.web.ws  # type: ignore[attr-defined]
        read_only = duckdb.connect(str(copy), read_only=True)
        writer = LiveWriter(read_only, ws.map_version, ws.map_or_empty)
        writer.start()
        client.app.state.web.live = writer  # type: ignore[attr-defined]
        body, _ = batch_body(0, 0, SIZE)
        answer = client.post("/v1/batch", content=body, headers={"Authorization": f"Bearer {key}"})
        writer.stop()
    assert answer.status_code == 503
    assert "read-only" in answer.json()["detail"]
    assert _check_store(root / "events.duckdb")[1] == []


SETTLED = """
import gc
from touchlens.web.app import COLLECTOR_THRESHOLDS, settle_collector
frozen = gc.get_freeze_count()
settle_collector()
print(frozen, gc.get_freeze_count() > 10_000, gc.get_threshold() == COLLECTOR_THRESHOLDS)
"""


def test_serve_freezes_its_startup_heap_out_of_the_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Full collections walked the whole heap, 100-270 ms with every thread stopped: the slowest live commits.
    # In a process of its own: a frozen heap would stay frozen for the tests after this one.
    out = subprocess.run([sys.executable, "-c", SETTLED], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["0", "True", "True"]
    # and `touchlens serve` settles it before serving
    calls: list[str] = []
    monkeypatch.setattr(web_app, "settle_collector", lambda: calls.append("settled"))
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append("served"))
    touchlens.init(tmp_path / "ws")
    cli_web.serve_workspace(tmp_path / "ws", "127.0.0.1", 8123)
    assert calls == ["settled", "served"]
