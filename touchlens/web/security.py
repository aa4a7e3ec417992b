"""Who is asking, and may they: session cookies for people, bearer tokens for scripts, CSRF on every change.

A session request that changes anything (POST, PUT, PATCH, DELETE) must carry the session's CSRF token, in the
`X-CSRF-Token` header or a `csrf` form field; a bearer-token request carries no ambient credential, so it needs
none. Viewers read, editors also change the map and the roadmap, admins also manage users. A write key for the
live endpoint (`tlw_…`) identifies nobody here: it gets 401 everywhere but /v1.

The client's address (for the audit log and the sign-in limiter) is the connecting peer's; `X-Forwarded-For` is
believed only from the proxies listed in `[web] trusted_proxies`, so anyone else cannot choose their address.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import ipaddress
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from touchlens.admin import User
from touchlens.errors import BadOption
from touchlens.web.state import WebState

SESSION_COOKIE = "touchlens_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SignInRequired(Exception):
    """Raised for a page without a session: the app answers with a redirect to the sign-in page."""


def state(request: Request) -> WebState:
    found: WebState = request.app.state.web
    return found


@functools.lru_cache(maxsize=16)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """`[web] trusted_proxies` read: each entry an address or a network in CIDR form; anything else is refused."""
    found: list[Network] = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise BadOption(f"[web] trusted_proxies: '{entry}' is neither an IP address nor a network (CIDR)") from None
    return tuple(found)


def _address_in(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 arriving on a dual-stack socket
    return any(ip in network for network in networks)


def client_address(request: Request) -> str:
    """Who is connecting: the peer, or, when the peer is a trusted proxy, the nearest address in X-Forwarded-For
    that is not one (entries further left were written by the client and may be anything)."""
    peer = request.client.host if request.client else "unknown"
    networks = trusted_networks(tuple(state(request).ws.settings.web.trusted_proxies))
    if not _address_in(peer, networks):
        return peer
    hops = [hop.strip() for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed(hops):
        if not _address_in(hop, networks):
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _identify(request: Request) -> tuple[User, str | None] | None:
    """(user, the session's CSRF token or None for a token request), or None when nobody is signed in."""
    users = state(request).ws.users
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        found = users.token_user(auth[7:].strip())
        return (found, None) if found else None
    cookie = request.cookies.get(SESSION_COOKIE)
    return users.session_user(cookie) if cookie else None


def _scripted(request: Request) -> bool:
    """Whether the request carries a script's credential (a bearer token, or a write key as Basic auth's user):
    such a request gets a plain 401, never the sign-in page. Basic auth alone may be a proxy's, in a browser."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return True
    try:
        return scheme.lower() == "basic" and base64.b64decode(value.strip(), validate=True).startswith(b"tlw_")
    except binascii.Error:
        return False


async def _csrf_ok(request: Request, expected: str) -> bool:
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get("csrf")
        sent = field if isinstance(field, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def require(role: str = "viewer", scope: str = "read", page: bool = False) -> Callable[..., object]:
    """A dependency giving the signed-in user with at least `role` (and `scope` for tokens); 401/403 otherwise,
    or for a page a redirect to sign in."""

    async def dependency(request: Request) -> User:
        who = _identify(request)
        if who is None:
            if page and not _scripted(request):
                raise SignInRequired()
            raise HTTPException(401, "sign in, or send an API token: Authorization: Bearer TOKEN")
        user, csrf = who
        if request.method in UNSAFE and csrf is not None and not await _csrf_ok(request, csrf):
            raise HTTPException(403, "missing or wrong CSRF token")
        if not user.can(role, scope):
            raise HTTPException(403, f"needs the {role} role" + (f" and the {scope} scope" if scope != "read" else ""))
        request.state.csrf = csrf or ""
        request.state.user = user
        return user

    return dependency


Viewer = Annotated[User, Depends(require("viewer"))]
Editor = Annotated[User, Depends(require("editor", "write"))]
# An editor's read that writes nothing (a read-scoped token will do): what only editors may see.
EditorReads = Annotated[User, Depends(require("editor"))]
Admin = Annotated[User, Depends(require("admin", "write"))]
PageViewer = Annotated[User, Depends(require("viewer", page=True))]
PageEditor = Annotated[User, Depends(require("editor", "write", page=True))]
PageAdmin = Annotated[User, Depends(require("admin", "write", page=True))]
