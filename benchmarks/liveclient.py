"""A lean client for the live endpoint, and a server run as its own process: what the load benchmark and the
fault tests (kill -9) share.

The client speaks HTTP/1.1 with keep-alive over asyncio streams, so on a small machine the load generator
leaves the cores to the server it measures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`touchlens serve` on a workspace, in a child process."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root, self.port = root, port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        code = "from touchlens.cli import main; main()"
        args = [sys.executable, "-c", code, "-w", str(self.root), "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the server answers; raises with its error output when it exits instead."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/login", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start in time")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def batch_body(client: int, seq: int, size: int) -> tuple[bytes, list[str]]:
    """A Segment batch whose message ids depend only on (client, seq, i): a resend repeats them."""
    ids = [f"c{client}-b{seq}-m{i}" for i in range(size)]
    messages = [
        {
            "type": "track",
            "messageId": mid,
            "userId": f"u{(client * 7919 + seq * 31 + i) % 5000}",
            "event": ("product_viewed", "added_to_cart", "checkout_started", "page_viewed")[i % 4],
            "timestamp": f"2026-11-0{1 + seq % 9}T1{i % 10}:00:00Z",
            "properties": {"sku": f"sku-{i % 50}", "price": 10 + i % 90, "path": "/products"},
            "context": {"channel": "web", "sessionId": f"s{client}-{seq // 10}"},
        }
        for i, mid in enumerate(ids)
    ]
    return json.dumps({"batch": messages}).encode(), ids


def invalid_batch_body(size: int) -> bytes:
    """A batch of `size` messages that are all invalid (no customer id), about 33 bytes each: 10,000 of them are
    the 329 KB request that once held the single writer for 43 s."""
    messages = [{"type": "track", "event": f"e{i}"} for i in range(size)]
    return json.dumps({"batch": messages}, separators=(",", ":")).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        """(status, JSON answer); raises OSError or TimeoutError when the server is gone."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            self.writer.write(head.encode() + body)
            return await asyncio.wait_for(self._answer(self.reader), timeout)
        except BaseException:
            self.close()
            raise

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status, length = int(status_line.split()[1]), 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        payload = await reader.readexactly(length)
        return status, json.loads(payload) if payload else {}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
