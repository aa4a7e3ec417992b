"""`DELETE /api/customers/{id}`: erasure on request, run by the live writer so it never races live events."""

from __future__ import annotations

import asyncio
from typing import Annotated

import duckdb
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from touchlens.web.api import ERRORS
from touchlens.web.collect import live_writer
from touchlens.web.security import Admin
from touchlens.web.state import WebState

router = APIRouter(prefix="/api", tags=["api"])


class Erasure(BaseModel):
    """Rows deleted per table; the id itself is recorded nowhere."""

    rows: dict[str, int] = Field(description="Rows deleted from events, feedback, customers and quarantine.")
    suppressed: bool = Field(description="Whether later events for this customer are dropped at ingest.")


@router.delete("/customers/{customer_id}", response_model=Erasure, responses=ERRORS)
async def forget_customer(
    request: Request,
    customer_id: str,
    user: Admin,
    suppress: Annotated[bool, Query(description="Drop this customer's later events at ingest.")] = True,
) -> Erasure:
    """Erase one customer from every table of the events store and record the erasure (admin)."""
    state: WebState = request.app.state.web
    ws = state.ws

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, int]:  # erased, compacted and audited by the facade
        return ws.forget_on(con, [customer_id], actor=user.name, suppress=suppress)[0]

    counts = await asyncio.wrap_future(live_writer(state).call(work))
    return Erasure(rows=counts, suppressed=suppress)
