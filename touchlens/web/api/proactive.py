"""Proactive rules over the API: the queue a messaging tool fetches its due contacts from and confirms them to
([proactive] queue = true), and a running rule's effect measured against its holdout, as `touchlens design
queue|confirm|measure` print them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from touchlens.errors import UnknownItem
from touchlens.web.api.base import NOT_FOUND, TranslatingRoute, _ws
from touchlens.web.collect import live_writer
from touchlens.web.security import Editor, EditorReads, Viewer, state

router = APIRouter(route_class=TranslatingRoute)


class Sent(BaseModel):
    contact_id: int = Field(description="The contact's number, from the queue.")
    sent_at: datetime | None = Field(default=None, description="When the tool sent it (ISO 8601; default now).")


class Confirmation(BaseModel):
    contacts: list[Sent] = Field(min_length=1, max_length=10_000, description="The contacts the tool sent.")


@router.get("/proactive/queue")
def proactive_queue(user: EditorReads, request: Request, rule: str | None = None) -> list[dict[str, Any]]:
    """The due contacts waiting for the messaging tool, oldest due first (as `design queue --json`)."""
    return _ws(request).contacts.queue(rule)


@router.post("/proactive/confirm")
def proactive_confirm(user: Editor, request: Request, body: Confirmation) -> dict[str, Any]:
    """The contacts the messaging tool sent: each recorded as sent and stored as its touchpoint's event through
    the server's one writer (as `design confirm --json`). Confirming one twice changes nothing; an unknown
    number stores nothing (422)."""
    web = state(request)
    sent = [(c.contact_id, c.sent_at) for c in body.contacts]
    result = web.ws.contacts.confirm(sent, writer=lambda work: live_writer(web).call(work).result())
    return result.to_dict()


@router.get("/proactive/{rule}/effect", responses=NOT_FOUND)
def proactive_effect(user: Viewer, request: Request, rule: str) -> dict[str, Any]:
    """A running rule's effect per outcome: customers contacted against its holdout, randomised (as `design
    measure --json`)."""
    try:
        return _ws(request).contacts.holdout(rule).to_dict()
    except UnknownItem as exc:
        raise HTTPException(404, str(exc)) from exc
