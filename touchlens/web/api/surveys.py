"""Survey links made over the API: a web shop's server asks for one per signed-in customer and embeds it with the
widget (`/static/survey-widget.js`), as `touchlens survey link` does on the command line."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from touchlens.web.api.base import TranslatingRoute, _ws
from touchlens.web.security import Editor

router = APIRouter(route_class=TranslatingRoute)


class LinkRequest(BaseModel):
    touchpoint: str = Field(description="The touchpoint's key.", min_length=1, max_length=120)
    customer_id: str | None = Field(
        default=None, max_length=1000, description="The customer's id as your systems know it; none: an open link."
    )
    metric: Literal["csat", "nps", "ces"] | None = Field(
        default=None, description="Default: the touchpoint's survey in the map, else csat."
    )
    days: int | None = Field(default=None, ge=1, le=3650, description="Days it can be answered.")


class LinkAnswer(BaseModel):
    link: str = Field(description="The signed link: its page is the survey; the widget takes it as is.")


@router.post("/survey-links")
def make_link(user: Editor, request: Request, asked: LinkRequest) -> LinkAnswer:
    """A new signed survey link (editor; a read-only token cannot make one: a link lets its holder add one answer)."""
    url = _ws(request).surveys.link(asked.touchpoint, asked.customer_id, metric=asked.metric, days=asked.days)
    return LinkAnswer(link=url)
