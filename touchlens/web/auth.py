"""Signing in and out: a form, a session cookie (HttpOnly, SameSite=Lax, Secure behind TLS), a CSRF token."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from touchlens.store import users as user_store
from touchlens.web.security import SESSION_COOKIE, state

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "touchlens_login_csrf"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", failed: bool = False) -> Response:
    from touchlens.web.app import templates

    token = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request, "login.html", {"csrf": token, "next": _safe_next(next), "failed": failed, "user": None}
    )
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF, "")
    target = _safe_next(next)
    if not expected or not hmac.compare_digest(csrf, expected):
        return RedirectResponse(f"/login?failed=true&next={target}", status_code=303)
    engine = state(request).ws.meta_engine()
    user = user_store.authenticate(engine, name, password)
    if user is None:
        return RedirectResponse(f"/login?failed=true&next={target}", status_code=303)
    session, _ = user_store.start_session(engine, user)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(user_store.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF)
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    engine = state(request).ws.meta_engine()
    cookie = request.cookies.get(SESSION_COOKIE)
    found = user_store.session_user(engine, cookie) if cookie else None
    if cookie and found and hmac.compare_digest(csrf, found[1]):
        user_store.end_session(engine, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
