"""Signing in and out: a form, a session cookie (HttpOnly, SameSite=Lax, Secure behind TLS), a CSRF token, and a
limit on failed sign-ins per name and per client address. Each sign-in, failure and sign-out is audited.

Each attempt takes its place in the limit before the password is checked, so concurrent attempts cannot all slip
in before the first failure is counted; a success gives the place back."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, NamedTuple

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from touchlens.admin import SESSION_LIFETIME, name_key
from touchlens.web.security import SESSION_COOKIE, client_address, state
from touchlens.web.templating import templates

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "touchlens_login_csrf"
MAX_FAILURES = 5  # failed sign-ins per name, or per client address, within the window
FAILURE_WINDOW = 15 * 60.0  # seconds
LIMITED_PAGE = """{% extends "base.html" %}{% block title %}Too many sign-in attempts{% endblock %}
{% block main %}<section class="login"><h1>Too many sign-in attempts</h1>
<p class="error" role="alert">{{ message }}</p><p><a href="/login?next={{ next }}">Sign in</a></p></section>
{% endblock %}"""


class Attempt(NamedTuple):
    """A sign-in attempt as the limiter answered it: seconds to wait (0: go ahead), and when it was counted."""

    wait: float
    at: float


class SignInLimiter:
    """Recent failed sign-ins per key (a name, a client address), in a sliding window: after `limit` failures
    within `window` seconds the key must wait until the oldest of them leaves the window.

    It lives in the app's memory, so it is per process: behind several worker processes each counts on its own.
    At most `capacity` keys are kept, the least recently failing dropped first, so memory stays bounded."""

    def __init__(
        self,
        limit: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = 10_000,
    ) -> None:
        self.limit, self.window, self.clock, self.capacity = limit, window, clock, capacity
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds until every one of `keys` may try again: 0 when they all may now."""
        now = self.clock()
        with self._lock:
            return max((self._wait(key, now) for key in keys), default=0.0)

    def _wait(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
            return 0.0
        return times[0] + self.window - now if len(times) >= self.limit else 0.0

    def reserve(self, keys: Sequence[str]) -> Attempt:
        """Check and count in one step, under the lock: when every key may try, the attempt is counted as a
        failure at once (a success takes it back with `release`), so concurrent attempts see each other."""
        now = self.clock()
        with self._lock:
            wait = max((self._wait(key, now) for key in keys), default=0.0)
            if wait <= 0:
                self._count(keys, now)
        return Attempt(wait, now)

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            self._count(keys, now)

    def _count(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self.limit)).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def release(self, keys: Iterable[str], at: float) -> None:
        """Take back the attempt `reserve` counted at `at`: it succeeded."""
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                if times is not None and at in times:
                    times.remove(at)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


_CREATING = threading.Lock()


def limiter(request: Request) -> SignInLimiter:
    """The app's limiter, made on first use (a test may set `app.state.sign_in_limiter` to one with its clock)."""
    with _CREATING:
        found: SignInLimiter | None = getattr(request.app.state, "sign_in_limiter", None)
        if found is None:
            found = request.app.state.sign_in_limiter = SignInLimiter()
    return found


def _name_count(name: str) -> str:
    """The limiter's key for a name: every spelling that signs in as one user ("Ann", "  ann", full-width
    letters) shares it, whatever its length, since the lookup reads the whole name; hashed, to bound memory."""
    return "name:" + hashlib.sha256(name_key(name).encode()).hexdigest()


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _address(request: Request) -> str:
    return client_address(request)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", failed: bool = False) -> Response:
    token = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request, "login.html", {"csrf": token, "next": _safe_next(next), "failed": failed, "user": None}
    )
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def _limited(request: Request, wait: float, target: str) -> Response:
    """429 with Retry-After, and a page that says why and for how long."""
    seconds = max(1, math.ceil(wait))
    minutes = math.ceil(seconds / 60)
    message = (
        f"Too many failed sign-ins for this name or from this address. Try again in {minutes} minute"
        f"{'s' if minutes != 1 else ''}."
    )
    page = templates.env.from_string(LIMITED_PAGE).render(
        message=message, next=target, user=None, csrf="", map_name=state(request).ws.map_or_empty().name
    )
    return HTMLResponse(page, status_code=429, headers={"Retry-After": str(seconds)})


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
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return RedirectResponse(f"/login?failed=true&next={target}", status_code=303)
    limits, address = limiter(request), _address(request)
    keys = (_name_count(name), f"address:{address}")
    attempt = limits.reserve(keys)
    if attempt.wait > 0:  # checked before the password: while limited, even the right one is refused
        return _limited(request, attempt.wait, target)
    signed_in = state(request).ws.users.sign_in(name, password, address=address)  # audited, either way
    if signed_in is None:  # the attempt reserve counted stays, as this failure
        return RedirectResponse(f"/login?failed=true&next={target}", status_code=303)
    limits.release(keys[1:], attempt.at)
    limits.succeeded(keys[0])
    return _signed_in(request, target, signed_in[1])


def _signed_in(request: Request, target: str, session: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session in the store (the cookie alone would still work if copied), however logout is called.

    No CSRF token is needed: ending a session is no change a forger could profit from, and a sign-out that
    left the server session alive (the old behaviour without the token) would leave a copied cookie working.
    A `csrf` field or header is ignored, so the existing forms and scripts keep working."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:  # audited when the session was live
        state(request).ws.users.sign_out(cookie, address=_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
