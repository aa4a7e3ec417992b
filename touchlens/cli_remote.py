"""The command line beside a running server: the server owns the events store (DuckDB lets one process open it),
so while `touchlens serve` runs, a command is sent to it and runs there, printing what it would print here.

The channel is local and the owner's alone: the server listens on the loopback address only, and a command
must show the token the server wrote into the workspace, in a file only the workspace's owner can read. A server
killed without cleaning up (kill -9) leaves its file behind: the command notices that nobody answers, removes
the stale file and runs by itself. Only the standard library is used here, and its network part only once a
server file is found, so `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from touchlens.errors import TouchlensError
from touchlens.locate import find_root

SERVER_FILE = ".touchlens-server.json"
# Commands that create, serve or rebuild a workspace rather than use a served one; each says so on its own.
LOCAL = frozenset({"serve", "demo", "init", "restore"})
ROOT_OPTIONS = frozenset({"-w", "--workspace"})
CONNECT_SECONDS = 3.0


@dataclass(frozen=True)
class Server:
    """What a running server tells the command line about itself (its file in the workspace)."""

    pid: int
    port: int
    token: str
    url: str


def server_file(root: Path) -> Path:
    return root / SERVER_FILE


def read_server(root: Path) -> Server | None:
    try:
        data = json.loads(server_file(root).read_text("utf-8"))
        return Server(int(data["pid"]), int(data["port"]), str(data["token"]), str(data["url"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, OSError):
        return None  # half-written or foreign: nobody to talk to


def write_server(root: Path, server: Server) -> None:
    """Written whole (a reader never sees half a file) and owner-only from the start."""
    partial = server_file(root).with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(server), handle)
    os.replace(partial, server_file(root))


def remove_server(root: Path, server: Server) -> None:
    """Remove the file if it is still this server's (a newer server may have replaced it)."""
    if read_server(root) == server:
        server_file(root).unlink(missing_ok=True)


def command_of(argv: list[str]) -> tuple[str | None, list[str]]:
    """The workspace option's value (if given) and the command's words: `-w ws analyze flows` → ("ws", [...])."""
    explicit: str | None = None
    words = list(argv)
    while words and words[0].startswith("-"):
        head = words.pop(0)
        if head in ROOT_OPTIONS and words:
            explicit = words.pop(0)
        elif head.startswith("--workspace="):
            explicit = head.split("=", 1)[1]
        elif head.startswith("-w") and len(head) > 2:
            explicit = head[2:]
        else:
            return explicit, []  # --help, --version: answered here
    return explicit, words


def served(argv: list[str]) -> tuple[Path, Server] | None:
    """The workspace and its live server when the command should go there; None to run here."""
    explicit, words = command_of(argv)
    if not words or words[0] in LOCAL or "--help" in words:
        return None
    try:
        root = find_root(explicit)
    except TouchlensError:
        return None  # the command itself says what is wrong
    server = read_server(root)
    return (root, server) if server is not None else None


def refusal(argv: list[str]) -> str | None:
    """Why a command that works on the store itself cannot run while a server holds it, or None."""
    explicit, words = command_of(argv)
    if not words or words[0] not in ("serve", "restore") or "--help" in words or "--into" in words:
        return None
    try:
        root = find_root(explicit)
    except TouchlensError:
        return None
    server = read_server(root)
    if server is None or not _answers(server):
        return None
    if words[0] == "serve":
        return f"a server already runs for {root} at {server.url} (pid {server.pid})"
    return (
        f"the server at {server.url} (pid {server.pid}) has {root}'s stores open: stop it, then restore "
        "(restore replaces the stores it reads and writes)"
    )


def _answers(server: Server) -> bool:
    import http.client

    try:
        _post(server, "/ping", {}, timeout=CONNECT_SECONDS)
    except (OSError, http.client.HTTPException):
        return False
    return True


def forward(argv: list[str]) -> int | None:
    """Run the command on the workspace's server and print its output; None when no live server holds it (a
    stale server file is removed)."""
    found = served(argv)
    if found is None:
        return None
    import base64
    import http.client

    root, server = found
    if not _running(server.pid):
        remove_server(root, server)  # killed without cleaning up
        return None
    try:
        answer = _post(server, "/run", request_for(argv), timeout=None)
    except ConnectionError:
        remove_server(root, server)  # killed without cleaning up: nobody listens on its port any more
        return None
    except (OSError, http.client.HTTPException) as exc:
        sys.stderr.write(f"error: the server at {server.url} did not answer the command: {exc}\n")
        return 1
    sys.stdout.buffer.write(base64.b64decode(answer["stdout"]))
    sys.stdout.flush()
    sys.stderr.buffer.write(base64.b64decode(answer["stderr"]))
    sys.stderr.flush()
    return int(answer["code"])


def request_for(argv: list[str]) -> dict[str, Any]:
    """The command as the server needs it to run it as if here: words, folder, input, environment, widths."""
    import base64

    argv, stdin = _with_input(argv)
    return {
        "argv": argv,
        "cwd": os.getcwd(),
        "umask": _umask(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("TOUCHLENS_", "LC_")) or k in PASSED_ENV},
        "stdin": base64.b64encode(stdin).decode("ascii"),
        "width": _width(sys.stdout, 200),
        "err_width": _width(sys.stderr, 80),
        "color": sys.stdout.isatty(),
    }


PASSED_ENV = frozenset({"USER", "LOGNAME", "USERNAME", "LANG", "NO_COLOR", "TERM", "COLORTERM", "TZ", "COLUMNS"})


def _with_input(argv: list[str]) -> tuple[list[str], bytes]:
    """What the command reads from standard input. A password asked at this terminal is asked here and passed
    on as --password-stdin would pass it; anything else reading input is given what was piped in."""
    _, words = command_of(argv)
    if words[:2] == ["users", "add"] and "--password-stdin" not in words and "--password" not in words:
        if sys.stdin.isatty():
            return [*argv, "--password-stdin"], (_ask_password() + "\n").encode()
        return argv, b""
    if "--password-stdin" in words or "-" in words:
        return argv, sys.stdin.buffer.read()
    return argv, b""


def _ask_password() -> str:
    import getpass

    while True:
        first = getpass.getpass("Password: ")
        if first == getpass.getpass("Repeat for confirmation: "):
            return first
        sys.stderr.write("Error: The two entered values do not match.\n")


def _width(stream: Any, piped: int) -> int:
    """The width the command would draw at here: the terminal's, else $COLUMNS, else `piped` (console.py)."""
    if stream.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else piped


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process now has the number; the connection will tell
    return True


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _post(server: Server, path: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    import http.client

    con = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CONNECT_SECONDS)
    try:
        con.connect()
        if con.sock is not None:
            con.sock.settimeout(timeout)  # a long command (a big ingest) takes as long as it takes
        payload = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
        con.request("POST", path, payload, headers)
        reply = con.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise http.client.HTTPException(f"HTTP {reply.status}: {data.decode('utf-8', 'replace')[:200]}")
        answer: dict[str, Any] = json.loads(data)
        return answer
    finally:
        con.close()
