"""`touchlens serve`, `touchlens users …`, `touchlens tokens …` and `touchlens audit`: the web app, who may use
it, and what they did. Changes made here are audited as `cli:` and the operating-system user."""

from __future__ import annotations

import json
import os
import secrets
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from touchlens import console as ui
from touchlens.cli_common import JsonOpt, show
from touchlens.cli_common import ws_of as _ws
from touchlens.cli_privacy import cli_actor
from touchlens.errors import TouchlensError, UsageError
from touchlens.vocabulary import ACTIONS, MAX_TOKEN_DAYS

if TYPE_CHECKING:
    from touchlens.admin import Token

users_app = typer.Typer(help="Local users of the web app and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for scripts (read, write).", no_args_is_help=True)


def serve_workspace(root: str | os.PathLike[str], host: str, port: int) -> None:
    """Run the web app for the workspace at `root` until interrupted."""
    import uvicorn

    import touchlens
    from touchlens.cli_host import CliHost
    from touchlens.web.app import create_app, settle_collector

    settings = touchlens.open(root).settings
    proxies = proxy_options(settings.web.trusted_proxies)
    app = create_app(str(root))
    ui.err.print(f"Serving {ui.text(root)} at http://{host}:{port}/  (Ctrl+C stops)")
    if settings.surveys.base_url == type(settings.surveys)().base_url and port != 8000:
        ui.err.print(f"Survey links start with [surveys] base_url = {settings.surveys.base_url}: set it to the "
                     "address customers reach this server at")  # fmt: skip
    # What the server creates while it runs (DuckDB's journal, staged uploads) is the owner's alone from the
    # start, not only once the next open tightens it.
    previous = os.umask(0o077)
    commands = CliHost(app.state.web, f"http://{host}:{port}/")
    commands.start()  # the command line beside the server runs through it (cli_remote)
    # uvicorn ends the process by the signal it caught once it has shut down, so `finally` may never run: the
    # app's shutdown stops the channel too.
    app.state.stop_with_app = [commands.stop]
    settle_collector()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", **proxies)
    finally:
        commands.stop()
        os.umask(previous)


def proxy_options(trusted: list[str]) -> dict[str, Any]:
    """uvicorn's proxy options from `[web] trusted_proxies`: with none, X-Forwarded-For and X-Forwarded-Proto are
    ignored (uvicorn would otherwise believe them from 127.0.0.1, letting any local process pick its address)."""
    from touchlens.web.security import trusted_networks

    trusted_networks(tuple(trusted))  # a wrong entry stops `serve` here, with a clear message
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": [entry.strip() for entry in trusted]}


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    admin: Annotated[
        str | None,
        typer.Option(help="(Re)create this admin with a fresh one-time password, printed once, before serving."),
    ] = None,
) -> None:
    """Serve the web app (pages, REST API at /api, OpenAPI at /api/docs); nothing is shown without sign-in."""
    ws = _ws(ctx)
    if admin is not None:
        name, password = demo_admin(ws.root, admin)
        shown = f"name [bold]{ui.text(name)}[/]  password [bold]{password}[/]"
        # soft_wrap: a password broken over two lines is easy to copy wrong.
        ui.err.print(f"Admin (one-time credentials, shown only now): {shown}", soft_wrap=True)
    if not ws.users.list():
        raise TouchlensError("no users yet: add one first with touchlens users add NAME --role admin")
    serve_workspace(ws.root, host, port)


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's sign-in name.")],
    role: Annotated[str, typer.Option(help="viewer (reads), editor (also edits), admin (also manages users).")],
    password: Annotated[
        str | None,
        typer.Option(help="The password (asked for when omitted): 8 to 1024 characters, not only spaces."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
    ] = False,
) -> None:
    """Add a user (or set an existing user's password and role)."""
    secret = _password(password, password_stdin)
    stored, existed = _ws(ctx).users.add(name, secret, role, actor=cli_actor())
    ended = "; their sessions and API tokens have ended" if existed else ""
    ui.err.print(f"{ui.text(stored)} can sign in as {ui.text(role)}{ended}")


def _password(given: str | None, from_stdin: bool) -> str:
    """The password from --password, from standard input, or asked at the terminal (twice, hidden)."""
    if given is not None and from_stdin:
        raise UsageError("give the password one way: --password or --password-stdin", field="password_stdin")
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if given is not None:
        return given
    if not sys.stdin.isatty():
        raise UsageError(
            "no terminal to ask for the password on: pipe it in with --password-stdin "
            "(printf '%s\\n' \"$PASSWORD\" | touchlens users add NAME --role ROLE --password-stdin)"
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every user and their role."""
    rows = [{"name": u.name, "role": u.role} for u in _ws(ctx).users.list()]
    show(rows, as_json, False, lambda r: r, lambda r: ui.records_table("Users", r, ["name", "role"]))


@users_app.command("remove")
def users_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user to remove.")]) -> None:
    """Remove a user, their sessions and their API tokens."""
    if not _ws(ctx).users.remove(name, actor=cli_actor()):
        raise TouchlensError(f"unknown user '{name}'")
    ui.err.print(f"removed {ui.text(name)}")


@tokens_app.command("add")
def tokens_add(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user the token acts as (it never exceeds their role).")],
    scope: Annotated[list[str] | None, typer.Option(help="read or write (repeat for both; default read).")] = None,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    days: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_TOKEN_DAYS, help="Days the token lasts (default: [web] token_days)."),
    ] = None,
) -> None:
    """Create an API token (shown once): send it as `Authorization: Bearer TOKEN`."""
    ws = _ws(ctx)
    lasting = days if days is not None else ws.settings.web.token_days
    token, kept = ws.users.issue_token(user, tuple(scope or ["read"]), label, lasting, actor=cli_actor())
    ui.err.print(f"token {kept.id} for {ui.text(user)}, expires {kept.expires_at:%Y-%m-%d %H:%M} UTC")
    ui.out.print(token)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every API token: id, user, scopes, label, created, expires; never the token itself."""
    rows = [_token_row(t) for t in _ws(ctx).users.tokens(user)]
    columns = ["id", "user", "scopes", "label", "created", "expires", "expired"]
    show(rows, as_json, False, lambda r: r, lambda r: ui.records_table("API tokens", r, columns))


def _token_row(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "user": token.user,
        "scopes": ",".join(token.scopes),
        "label": token.label,
        "created": token.created_at.isoformat(timespec="seconds"),
        "expires": token.expires_at.isoformat(timespec="seconds"),
        "expired": token.expired(),
    }


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context, token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (tokens list).")]
) -> None:
    """End one API token at once; its requests get 401 from then on."""
    found = _ws(ctx).users.revoke_token(token_id, actor=cli_actor())
    if found is None:
        raise TouchlensError(f"no API token has the id '{token_id}'; see touchlens tokens list")
    ui.err.print(f"revoked token {found.id} of {ui.text(found.user)}")


def audit_log(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many of the newest entries.")] = 100,
    action: Annotated[str | None, typer.Option(help=f"Only this action: {', '.join(ACTIONS)}.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first: sign-ins, map, roadmap, user, token and key changes, erasures."""
    rows = _ws(ctx).audit_entries(limit, action)  # an unknown action: an error naming those there are
    shown = [{**r, "detail": json.dumps(r["detail"], default=str)} for r in rows]
    columns = ["at", "actor", "action", "target", "detail"]
    show(rows, as_json, False, lambda _: shown, lambda _: ui.records_table("Audit log", shown, columns))


def demo_admin(root: str | os.PathLike[str], name: str = "demo") -> tuple[str, str]:
    """An admin with a fresh random password, for the one-time credentials `touchlens demo` prints."""
    import touchlens

    password = secrets.token_urlsafe(12)
    stored, _ = touchlens.open(root).users.add(name, password, "admin", actor=cli_actor())
    return stored, password
