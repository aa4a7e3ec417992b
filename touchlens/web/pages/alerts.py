"""The alerts page: the rules and the latest alerts for everyone; adding, testing and removing rules for admins
(plain forms with the session's CSRF token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from touchlens.alerts import KINDS
from touchlens.web.api.alerts import masked
from touchlens.web.security import PageAdmin, PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, user: PageViewer, tested: str = "") -> Response:
    alerts = state(request).ws.alerts
    return render(
        request, "alerts.html", active="alerts", rules=alerts.list(), history=alerts.history(50), kinds=KINDS,
        admin=user.can("admin", "write"), tested=tested, masked=masked,
    )  # fmt: skip


@router.post("/alerts")
def add_rule(
    request: Request,
    user: PageAdmin,
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "all",
    threshold: Annotated[str, Form()] = "",
    webhook: Annotated[str, Form()] = "",
    emails: Annotated[str, Form()] = "",
    quiet: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "UTC",
) -> Response:
    from touchlens.errors import BadOption

    try:
        limit = float(threshold) if threshold.strip() else None
    except ValueError as exc:
        raise BadOption(f"threshold: a number, not '{threshold}'") from exc
    addresses = [e.strip() for e in emails.replace(";", ",").split(",") if e.strip()]
    state(request).ws.alerts.add(
        name, kind, scope.strip() or "all", threshold=limit, webhook=webhook.strip() or None, emails=addresses,
        quiet=quiet.strip() or None, timezone=timezone.strip() or "UTC", actor=user.name,
    )  # fmt: skip
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/{rule_id}/test")
def test_rule(request: Request, user: PageAdmin, rule_id: int) -> Response:
    outcome = state(request).ws.alerts.test(rule_id)
    said = ", ".join(f"{k} {v}" for k, v in outcome.items())
    return RedirectResponse(f"/alerts?tested={rule_id}: {said}"[:300], status_code=303)


@router.post("/alerts/{rule_id}/remove")
def remove_rule(request: Request, user: PageAdmin, rule_id: int) -> Response:
    state(request).ws.alerts.remove(rule_id)
    return RedirectResponse("/alerts", status_code=303)
