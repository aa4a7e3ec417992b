"""The command line beside a running server (issue 19): every command works while `touchlens serve` holds the
workspace and prints what it prints without a server; a server killed with -9 is noticed; nothing shows DuckDB's
lock error.

Two copies of one demo workspace get the same commands in the same order, one with no server, one while a
server runs on it. The served twin's commands are whole processes, as a person runs them. The twin without a
server runs its commands one after another in one process of its own, each with its own output, input and exit
status (`ALONE`), as the server itself runs each command it is sent (`cli.invoke`): a process per command there
took 255 of CI's seconds, most of it starting Python and importing the same libraries 85 times. What that
gives up: a difference that only a long-lived process makes (a module-level cache kept from one command to the
next) is in both twins alike and would not show here; warnings, which Python shows once per process, are reset
before each command. The kill -9 test below still compares a served and an unserved command as whole processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer.main

import touchlens
from touchlens import cli_remote
from touchlens.cli import app
from touchlens.demo_workspace import build_demo
from touchlens.locate import ENV_VAR

pytestmark = pytest.mark.slow

ENTRY = "from touchlens.cli import main; main()"
# Runs the commands of the JSON file argv[1] (each [argv, stdin]) in this one process, as `ENTRY` would one by
# one in the folder it starts in: `main()` with that command line, its stdin piped in, its stdout and stderr the
# files behind descriptors 1 and 2 (where Rich and every print write); writes [code, stdout, stderr] for each
# to the JSON file argv[2].
ALONE = """
import io, json, os, sys, tempfile, traceback, warnings
from touchlens.cli import main
asked, answered = sys.argv[1:3]
results, filters = [], list(warnings.filters)
for argv, stdin in json.load(open(asked)):
    # As in a fresh process: the filters Python starts with, and a warning shown by an earlier command shown again.
    warnings.filters[:] = filters
    for module in list(sys.modules.values()):
        registry = getattr(module, "__warningregistry__", None)
        if isinstance(registry, dict):
            registry.clear()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdin = io.TextIOWrapper(io.BytesIO((stdin or "").encode()))
        sys.argv = ["touchlens", "-w", "ws", *argv]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # a crash is this command's answer (exit 1, the traceback), not the end of the run
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode())
        results.append([code, *texts])
json.dump(results, open(answered, "w"))
"""
# Output that differs between two runs of one command anyway: times, and secrets made fresh.
VOLATILE = (
    (re.compile(r"/(s|walk)/[A-Za-z0-9_\-.]+"), r"/\1/<signed link>"),  # a fresh random nonce in each link
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00|Z| UTC)?"), "<time>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<id>"),  # a token's id
    (re.compile(r"(tl[a-z]*_)[A-Za-z0-9_\-]{20,}"), r"\1<secret>"),
    (re.compile(r"[A-Za-z0-9_\-]{32,}"), "<secret>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<seconds> s"),
)


def _leaves() -> set[str]:
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    found: set[str] = set()

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "list_commands"):  # Typer's groups (Typer brings its own Click)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            found.add(" ".join(path))

    walk(group, [])
    return found


def _commands(root: Path) -> list[tuple[list[str], str | None]]:
    """Every command but those that make, serve or replace a workspace (cli_remote.LOCAL), reads first."""
    ws = touchlens.open(root)
    keys = [tp.key for tp in ws.map().touchpoints]
    customer = (root / "demo-data" / "customers.csv").read_text().splitlines()[1].split(",")[0]
    first, second, third = keys[0], keys[1], keys[2]
    opportunity = ws.map().opportunities[0].key
    reads: list[list[str]] = [
        ["touchpoints"],
        ["touchpoints", "--csv"],
        ["matrix"],
        ["map", "check"],
        ["map", "export"],
        ["analyze", "flows"],
        ["analyze", "variants", "--json"],
        ["analyze", "sankey"],
        ["analyze", "paths", "--from", first],
        ["analyze", "neighbours", "--touchpoint", second],
        ["analyze", "scorecard"],
        ["analyze", "weekdays"],
        ["analyze", "funnel", "--steps", f"{first},{second},{third}"],
        ["analyze", "attribution"],
        ["analyze", "feedback"],
        ["analyze", "drivers"],
        ["analyze", "insights", "--json"],
        ["analyze", "gaps"],
        ["analyze", "friction"],
        ["analyze", "health"],
        ["analyze", "conformance"],
        ["analyze", "success"],
        ["analyze", "trends"],
        ["quarantine", "list"],
        ["export", "csv", "-o", "events.csv"],
        ["export", "xes", "-o", "events.xes"],
        ["export", "parquet", "-o", "events.parquet"],
        ["export", "mermaid"],
        ["report", "svg", "-o", "map.svg"],
        ["report", "html", "-o", "report.html"],
        ["backup", "backup.tar.gz"],
        ["users", "list"],
        ["audit"],
    ]
    writes: list[tuple[list[str], str | None]] = [
        (["map", "export", "-o", "map.yaml"], None),
        (["map", "import", "map.yaml"], None),
        (["ingest", "events", "ws/demo-data/events.jsonl"], None),
        (["ingest", "feedback", "ws/demo-data/feedback.csv"], None),
        (["ingest", "customers", "ws/demo-data/customers.csv"], None),
        (["remap"], None),
        (["quarantine", "clear"], None),
        (["roadmap", "suggest"], None),
        (["roadmap", "list", "--json"], None),
        (["roadmap", "move", opportunity, "later"], None),
        (["roadmap", "done", opportunity], None),
        (["change", "add", first, "--date", "2025-06-01", "--note", "new copy"], None),
        (["change", "list"], None),
        (["analyze", "impact", "1"], None),
        (["users", "add", "bob", "--role", "viewer", "--password-stdin"], "a long password\n"),
        (["users", "add", "carl", "--role", "viewer"], None),  # no terminal: the same clear refusal
        (["tokens", "add", "bob", "--label", "t"], None),
        (["tokens", "list"], None),
        (["tokens", "revoke", "1"], None),
        (["keys", "add", "--label", "k"], None),
        (["keys", "list"], None),
        (["keys", "revoke", "1"], None),
        (["users", "remove", "bob"], None),
        (["survey", "link", first, "--customer", customer], None),
        (["survey", "links", first, "--since", "3650d", "--csv"], None),
        (["survey", "qr", first, "-o", "code.svg"], None),
        (["cases", "list", "--status", "all"], None),
        (["cases", "stats"], None),
        (["cases", "show", "1"], None),
        (["cases", "assign", "1", "dana"], None),
        (["cases", "close", "1", "--note", "called"], None),
        # A rule nothing trips (no case is open): the server checks rules on its own too, so one that fired would
        # print "fired" in whichever process checked first.
        (["alerts", "add", "--name", "old cases", "--kind", "case_age", "--webhook", "http://127.0.0.1:9/x"], None),
        (["alerts", "list"], None),
        (["alerts", "test", "1"], None),
        (["alerts", "check"], None),
        (["alerts", "history"], None),
        (["alerts", "remove", "1"], None),
        (["design", "rules"], None),
        (["design", "simulate", "shipping_update"], None),
        (["design", "run"], None),
        (["design", "measure", "shipping_update"], None),
        (["design", "queue", "--csv"], None),
        (["design", "confirm", "1"], None),
        (["walkthrough", "start", "first_kit", "--auditor", "Olga"], None),
        (["walkthrough", "list"], None),
        (["walkthrough", "export"], None),
        (["walkthrough", "compare", "first_kit"], None),
        (["forget", customer], None),
        (["analyze", "nosuch"], None),  # a usage error reads the same too
    ]
    return [(argv, None) for argv in reads] + writes


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", ENV_VAR)}


def _run(folder: Path, argv: list[str], stdin: str | None) -> tuple[int, str, str]:
    command = [sys.executable, "-c", ENTRY, "-w", "ws", *argv]
    done = subprocess.run(
        command, cwd=folder, input=stdin or "", capture_output=True, text=True, timeout=300, env=_env()
    )
    return done.returncode, _plain(done.stdout, folder), _plain(done.stderr, folder)


def _run_all(folder: Path, commands: list[tuple[list[str], str | None]]) -> list[tuple[int, str, str]]:
    """`_run` of each command in turn, all in one process (`ALONE`)."""
    asked, answered = folder / "commands.json", folder / "answers.json"
    asked.write_text(json.dumps(commands))
    done = subprocess.run(
        [sys.executable, "-c", ALONE, str(asked), str(answered)],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    return [(code, _plain(out, folder), _plain(err, folder)) for code, out, err in json.loads(answered.read_text())]


def _plain(text: str, folder: Path) -> str:
    text = text.replace(str(folder), "<folder>")
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(folder: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "-w", "ws", "serve", "--port", str(_free_port())],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "serve.log").open("ab"),
    )
    deadline = time.monotonic() + 60
    while cli_remote.read_server(folder / "ws") is None:
        assert server.poll() is None, (folder / "serve.log").read_text()
        assert time.monotonic() < deadline, "no server file within a minute"
        time.sleep(0.2)
    return server


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("beside")
    alone, served = base / "alone", base / "served"
    build_demo(alone / "ws", customers=150, seed=3)
    touchlens.open(alone / "ws").users.add("admin", "a long password", "admin")  # serve needs a user
    shutil.copytree(alone, served)
    return alone, served


def test_every_command_prints_the_same_with_a_server_holding_the_workspace(twins: tuple[Path, Path]) -> None:
    alone, served = twins
    commands = _commands(alone / "ws")
    covered = {" ".join(argv[:2]) if " ".join(argv[:2]) in _leaves() else argv[0] for argv, _ in commands}
    assert _leaves() - covered == {name for name in _leaves() if name.split()[0] in cli_remote.LOCAL}
    server = _serve(served)
    try:
        # The twin without a server runs its commands meanwhile, on its own thread: each twin's own order is kept,
        # and part of a command's time is a process starting or a request waiting (206 s -> 169 s, idle 2 cores).
        with ThreadPoolExecutor(1) as pool:
            expected = pool.submit(_run_all, alone, commands)
            got = [_run(served, argv, stdin) for argv, stdin in commands]
            for (argv, _), mine, theirs in zip(commands, got, expected.result(), strict=True):
                assert mine == theirs, argv
        for written in ("events.csv", "map.yaml"):
            assert (served / written).read_bytes() == (alone / written).read_bytes()
        assert server.poll() is None  # it served them all and still runs
    finally:
        server.terminate()
        server.wait(30)
    assert cli_remote.read_server(served / "ws") is None  # a clean stop takes its file away


def test_a_server_killed_with_kill_9_is_noticed_and_the_command_runs_by_itself(twins: tuple[Path, Path]) -> None:
    alone, served = twins
    server = _serve(served)
    server.send_signal(signal.SIGKILL)
    server.wait(30)
    assert cli_remote.read_server(served / "ws") is not None  # left behind
    assert _run(served, ["analyze", "flows", "--json"], None) == _run(alone, ["analyze", "flows", "--json"], None)
    assert cli_remote.read_server(served / "ws") is None  # found stale and removed


def test_serve_and_restore_say_a_server_holds_the_workspace(twins: tuple[Path, Path]) -> None:
    _, served = twins
    server = _serve(served)
    try:
        code, _, err = _run(served, ["serve", "--port", str(_free_port())], None)
        assert code == 1
        assert "a server already runs for <folder>/ws" in err
        code, _, err = _run(served, ["restore", "backup.tar.gz", "--force"], None)
        assert code == 1
        assert "stop it, then restore" in err
    finally:
        server.terminate()
        server.wait(30)


def test_a_second_process_holding_the_store_is_named_not_shown_as_a_lock_error(twins: tuple[Path, Path]) -> None:
    _, served = twins
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect('ws/events.duckdb'); sys.stdin.read()"],
        cwd=served,
        stdin=subprocess.PIPE,
    )
    try:
        time.sleep(2)
        code, _, err = _run(served, ["remap"], None)
        assert code == 1
        assert f"process {holder.pid} has it open" in err
        assert "Could not set lock" not in err
        assert "Traceback" not in err
    finally:
        holder.communicate(b"", timeout=30)


def test_the_channel_answers_only_the_token_in_the_owner_only_file(twins: tuple[Path, Path]) -> None:
    _, served = twins
    server = _serve(served)
    try:
        path = cli_remote.server_file(served / "ws")
        assert path.stat().st_mode & 0o077 == 0
        found = cli_remote.read_server(served / "ws")
        assert found is not None
        wrong = cli_remote.Server(found.pid, found.port, "not-the-token", found.url)
        with pytest.raises(Exception, match="HTTP 403"):
            cli_remote._post(wrong, "/run", cli_remote.request_for(["touchpoints"]), timeout=10)
        answer = cli_remote._post(found, "/ping", {}, timeout=10)
        assert answer == {"pid": server.pid}
        assert json.loads(path.read_text())["port"] == found.port
    finally:
        server.terminate()
        server.wait(30)
