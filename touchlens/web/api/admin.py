"""What admins see and do: the users (list, add, remove) and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from touchlens.admin import ACTIONS, User
from touchlens.web.api.base import NOT_FOUND, TranslatingRoute, _ws
from touchlens.web.security import Admin, require

router = APIRouter(route_class=TranslatingRoute)
AdminReader = Annotated[User, Depends(require("admin"))]


# -- users ------------------------------------------------------------------------------------------------


class NewUser(BaseModel):
    """A user to add, or an existing user's new password and role."""

    name: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=8, max_length=1024, description="8 to 1024 characters, not only spaces.")
    role: Literal["viewer", "editor", "admin"] = Field(description="viewer, editor or admin.")


@router.get("/users")
def list_users(user: AdminReader, request: Request) -> list[dict[str, Any]]:
    """Every user and their role (as `touchlens users list --json`)."""
    return [{"name": u.name, "role": u.role} for u in _ws(request).users.list()]


@router.post("/users", status_code=201)
def add_user(user: Admin, request: Request, new: NewUser) -> dict[str, Any]:
    """Add a user (or set an existing user's password and role)."""
    try:
        stored, _ = _ws(request).users.add(new.name, new.password, new.role, actor=user.name)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"name": stored, "role": new.role}


@router.delete("/users/{name}", responses=NOT_FOUND)
def remove_user(user: Admin, request: Request, name: str) -> dict[str, Any]:
    """Remove a user, their sessions and their API tokens (not yourself: another admin must)."""
    if name == user.name:
        raise HTTPException(409, "you cannot remove yourself; ask another admin")
    if not _ws(request).users.remove(name, actor=user.name):
        raise HTTPException(404, f"unknown user '{name}'")
    return {"removed": name}


# -- audit ------------------------------------------------------------------------------------------------


class AuditEntry(BaseModel):
    """One recorded action: who did what to what, when; `detail` holds counts and names, never a secret."""

    id: int
    at: str = Field(description="When, ISO 8601 in UTC.")
    actor: str = Field(description="A user's name, `cli:` and the operating-system user, or anonymous.")
    action: str = Field(description=", ".join(ACTIONS))
    target: str = Field(description="What it touched: `touchpoint KEY`, `user NAME`, `roadmap`, …")
    detail: dict[str, Any]


@router.get("/audit", response_model=list[AuditEntry])
def audit_log(
    user: AdminReader,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000, description="How many of the newest entries.")] = 100,
    action: Annotated[str | None, Query(pattern=f"^({'|'.join(ACTIONS)})$", description="Only this action.")] = None,
) -> list[dict[str, Any]]:
    """The audit log, newest first (as `touchlens audit --json`): sign-ins, map, roadmap and user changes."""
    return _ws(request).audit_entries(limit, action)
