"""Alert rules over the API (as `touchlens alerts …`): viewers read the rules and the alerts; admins add, remove
and test rules, since a rule makes the server send requests and e-mail out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from touchlens.errors import UnknownItem
from touchlens.web.api.base import NOT_FOUND, TranslatingRoute, _ws
from touchlens.web.security import Admin, Viewer

T = TypeVar("T")
router = APIRouter(route_class=TranslatingRoute)


class NewRule(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description="csat_drop, health, anomaly, at_stake, survey_volume or case_age.")
    scope: str = Field(default="all", max_length=200, description="all, stage:KEY or touchpoint:KEY.")
    threshold: float | None = None
    window_hours: float | None = Field(default=None, gt=0, le=24 * 90)
    webhook: str | None = Field(default=None, max_length=2000)
    emails: list[str] = Field(default_factory=list, max_length=20)
    quiet: str | None = Field(default=None, max_length=20, description="HH:MM-HH:MM")
    timezone: str = Field(default="UTC", max_length=60)


@router.get("/alerts/rules")
def list_rules(user: Viewer, request: Request) -> list[dict[str, Any]]:
    """Every rule (as `alerts list --json`); a webhook's path, which is often its secret, for admins only."""
    admin = user.can("admin", "write")
    return [{**r.to_dict(), "webhook": r.webhook if admin else masked(r.webhook)} for r in _ws(request).alerts.list()]


def masked(url: str | None) -> str | None:
    """`https://hooks.slack.com/…`: where a webhook goes, without the path that lets anyone post to it."""
    if not url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…"


@router.post("/alerts/rules", status_code=201)
def add_rule(user: Admin, request: Request, rule: NewRule) -> dict[str, Any]:
    """Add a rule (admin)."""
    fields = rule.model_dump()
    name, kind = fields.pop("name"), fields.pop("kind")
    return _ws(request).alerts.add(name, kind, actor=user.name, **fields).to_dict()


@router.delete("/alerts/rules/{rule_id}", responses=NOT_FOUND)
def remove_rule(user: Admin, request: Request, rule_id: int) -> dict[str, Any]:
    """Remove a rule and its alerts (admin)."""
    _found(lambda: _ws(request).alerts.remove(rule_id))
    return {"removed": rule_id}


@router.post("/alerts/rules/{rule_id}/test", responses=NOT_FOUND)
def test_rule(user: Admin, request: Request, rule_id: int) -> dict[str, str]:
    """Send a test message through the rule's channels; what each answered (admin)."""
    return _found(lambda: _ws(request).alerts.test(rule_id))


@router.get("/alerts")
def alert_history(user: Viewer, request: Request, limit: int = 100) -> list[dict[str, Any]]:
    """The latest alerts, newest first (as `alerts history --json`)."""
    return _ws(request).alerts.history(max(1, min(limit, 1000)))


def _found(work: Callable[[], T]) -> T:
    try:
        return work()
    except UnknownItem as exc:
        raise HTTPException(404, str(exc)) from exc
