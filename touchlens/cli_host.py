"""The server's end of the command line beside it (see cli_remote): a loopback listener that runs a command sent
by the workspace's owner inside the server, on the server's open workspace, and answers with what it printed.

Commands run one at a time: each sees the caller's folder, environment, input and terminal width for its
duration, which are the process's own (the working folder, sys.stdout), so two cannot overlap. Writes go
through the server's one connection to the events store, as the web app's own do.
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import os
import secrets
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchlens import cli_remote

if TYPE_CHECKING:
    from touchlens.web.state import WebState

# Commands that only read: after any other, the web app's cached analyses are dropped (the store changed).
READS = frozenset(
    {"analyze", "report", "export", "touchpoints", "matrix", "audit", "backup"}
    | {"quarantine list", "map export", "map check", "roadmap list", "change list"}
    | {"users list", "tokens list", "keys list"}
)
_ONE_AT_A_TIME = threading.Lock()


class CliHost:
    """Listens on 127.0.0.1 (a port the system picks) while the server runs; the port and a fresh token are
    in the workspace's owner-only server file."""

    def __init__(self, web: WebState, url: str) -> None:
        self.web = web
        self.url = url
        self.token = secrets.token_urlsafe(32)
        self._http: ThreadingHTTPServer | None = None
        self._server: cli_remote.Server | None = None

    @property
    def root(self) -> Path:
        return self.web.ws.root

    def start(self) -> None:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="touchlens-cli", daemon=True).start()
        self._server = cli_remote.Server(os.getpid(), self._http.server_address[1], self.token, self.url)
        cli_remote.write_server(self.root, self._server)

    def stop(self) -> None:
        """Take the server file away and stop listening; again is harmless."""
        if self._server is not None:
            cli_remote.remove_server(self.root, self._server)
            self._server = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def allowed(self, authorization: str) -> bool:
        return hmac.compare_digest(authorization.encode(), f"Bearer {self.token}".encode())

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """One command, as the caller would have seen it run in their own shell."""
        from touchlens import cli
        from touchlens.web.collect import on_writer

        argv = [str(word) for word in request["argv"]]
        _, words = cli_remote.command_of(argv)
        reads = " ".join(words[:1]) in READS or " ".join(words[:2]) in READS
        with _ONE_AT_A_TIME, _as_caller(request) as (out, err):

            def command() -> int:
                return cli.invoke(argv, hosted=self.web.ws)

            # A write runs on the server's one writer thread, between live commits, as an upload does.
            code = command() if reads else on_writer(self.web, command)
        if not reads:
            self.web.changed()
        return {"code": code, "stdout": _b64(out.getvalue()), "stderr": _b64(err.getvalue())}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@contextmanager
def _as_caller(request: dict[str, Any]) -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    """The caller's folder, umask, environment, input and output streams (with their widths) for the block."""
    from rich.console import Console

    from touchlens import console as ui

    out, err = io.BytesIO(), io.BytesIO()
    wrappers = [io.TextIOWrapper(buffer, encoding="utf-8", write_through=True) for buffer in (out, err)]
    streams = sys.stdin, sys.stdout, sys.stderr, ui.out, ui.err
    folder, umask = os.getcwd(), os.umask(int(request["umask"]))
    env = {key: os.environ.get(key) for key in request["env"]}
    try:
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        os.chdir(request["cwd"])
        sys.stdin = io.TextIOWrapper(io.BytesIO(base64.b64decode(request["stdin"])), encoding="utf-8")
        sys.stdout, sys.stderr = wrappers

        ui.out = Console(width=int(request["width"]), highlight=False, force_terminal=bool(request["color"]) or None)
        ui.err = Console(stderr=True, width=int(request["err_width"]), highlight=False)
        yield out, err
    finally:
        for wrapper in wrappers:
            wrapper.flush()
            wrapper.detach()  # the bytes stay readable after the wrapper is gone
        sys.stdin, sys.stdout, sys.stderr, ui.out, ui.err = streams
        os.chdir(folder)
        os.umask(umask)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_or_report(host: CliHost, request: dict[str, Any]) -> dict[str, Any]:
    """The command's answer; a bug in it answers as it would without a server: its traceback, exit status 1."""
    try:
        return host.run(request)
    except Exception:
        return {"code": 1, "stdout": "", "stderr": _b64(traceback.format_exc().encode())}


def _handler(host: CliHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not host.allowed(self.headers.get("Authorization", "")):
                self._answer(403, {"error": "not this workspace's owner"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/ping":
                self._answer(200, {"pid": os.getpid()})
            elif self.path == "/run":
                self._answer(200, _run_or_report(host, request))
            else:
                self._answer(404, {"error": "no such path"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the web server's log is uvicorn's; this channel logs nothing of the commands it runs

    return Handler
