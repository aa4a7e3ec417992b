"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, listen on a free local port.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user (or `nobody`). It trusts
every local connection and writes nothing durably (fsync off): it lives for one test session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The server could not be started; the message says why and how to install it."""


def _bindir() -> Path:
    """Where initdb lives: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
            "run `make postgres` or apt-get install postgresql"
        )
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_as() -> str | None:
    """The unprivileged user to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One server for the session; `database()` hands out a fresh, empty database per test."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.user = _run_as()
        # Not under pytest's tmp folder: that is private to root, and the server may run as another user.
        self.base = Path(tempfile.mkdtemp(prefix="touchlens-pg-"))
        self.data, self.log = self.base / "data", self.base / "server.log"
        self.port = _free_port()
        self._admin: psycopg.Connection[tuple[object, ...]] | None = None

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def start(self) -> None:
        if self.user:
            shutil.chown(self.base, self.user)
        subprocess.run(
            self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync"),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        # Speed over durability; room for the many short-lived engines the tests open.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.base} -F -c full_page_writes=off -c max_connections=300"
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                      "-w", "-t", "60", "start"),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        import psycopg  # here, so that the other tests run where the driver is missing

        self._admin = psycopg.connect(self.url("postgres", driver=""), autocommit=True)

    def url(self, database: str, driver: str = "+psycopg") -> str:
        if driver:
            return f"postgresql{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def database(self, template: str | None = None) -> str:
        """The name of a new database: empty, or a copy of `template`."""
        assert self._admin is not None, "the server is not started"
        name = "t_" + uuid.uuid4().hex[:16]
        copy = f" TEMPLATE {template}" if template else ""
        self._admin.execute(f"CREATE DATABASE {name}{copy}")  # type: ignore[arg-type]
        return name

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
                check=False, capture_output=True,
            )  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)


def start_server() -> PostgresServer:
    """A started server, or PostgresUnavailable saying what went wrong (with the server's own words)."""
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:  # whatever stops it (no driver, initdb or pg_ctl failing), said plainly
        detail = getattr(exc, "stderr", "") or ""
        tail = server.log_tail()
        server.stop()
        raise PostgresUnavailable(f"could not start PostgreSQL from {server.bindir}: {exc}\n{detail}\n{tail}") from exc
    return server
