"""Support-desk exports: Zendesk tickets as events, and Zendesk and Intercom ratings as CSAT feedback.

A file may be an API page (``{"tickets": [...]}``, ``{"conversations": [...]}``), a JSON array, or one
record a line (Zendesk's full export); Zendesk ratings also come from the Satisfaction Ratings API
(``{"satisfaction_ratings": [...]}``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchlens.ingest.readers.base import FEEDBACK_COLUMNS, ReadOptions
from touchlens.ingest.readers.product import read_json_records

WRAPPERS = ("tickets", "satisfaction_ratings", "results")
CHANNELS = {"voice": "phone"}  # Zendesk's name for phone calls; other via channels keep their names
SOLVED = ("solved", "closed")
TICKET_PROPERTIES = ("subject", "status", "priority", "tags", "via")
# A good rating is a satisfied customer: the top of the CSAT scale; a bad one the bottom.
RATING_SCORES = {"good": 5, "bad": 1}
NOT_RATED = ("offered", "unoffered")
PEOPLE = ("user", "lead", "contact")  # Intercom authors who are customers, not teammates
Row = dict[str, Any]


def read_zendesk(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Each ticket as a ``ticket_created`` event, plus ``ticket_solved`` once solved or closed."""
    return read_json_records(path, opts, ticket_events, WRAPPERS)


def ticket_events(ticket: Row) -> list[Row]:
    """The events of one ticket; both share the ticket's customer, channel and properties."""
    common = {
        "customer_id": requester(ticket),
        "channel": via_channel(ticket),
        "properties": ticket_properties(ticket),
    }
    created = {
        "event_id": _ticket_id(ticket, "created"),
        "ts": ticket.get("created_at"),
        "event": "ticket_created",
    }
    events = [{**common, **created}]
    solved_at = ticket.get("solved_at") or ticket.get("updated_at")
    if ticket.get("status") in SOLVED and solved_at:
        solved = {"event_id": _ticket_id(ticket, "solved"), "ts": solved_at, "event": "ticket_solved"}
        events.append({**common, **solved})
    return events


def _ticket_id(ticket: Row, what: str) -> str | None:
    # Without a ticket id the pipeline's fingerprint stands in.
    return None if ticket.get("id") is None else f"zendesk:ticket:{ticket['id']}:{what}"


def requester(ticket: Row) -> Any:
    who = ticket.get("requester")
    return ticket.get("requester_id") or (who.get("id") if isinstance(who, dict) else None)


def via_channel(ticket: Row) -> str | None:
    via = ticket.get("via")
    channel = via.get("channel") if isinstance(via, dict) else None
    return CHANNELS.get(channel, channel) if isinstance(channel, str) and channel else None


def ticket_properties(ticket: Row) -> Row:
    props = {"ticket_id": ticket.get("id"), **{k: ticket.get(k) for k in TICKET_PROPERTIES}}
    return {k: v for k, v in props.items() if v is not None}


def read_zendesk_ratings(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Satisfaction ratings as CSAT feedback: good → 5, bad → 1; offered but unanswered → no row."""
    return read_json_records(path, opts, rating_rows, WRAPPERS, columns=FEEDBACK_COLUMNS)


def rating_rows(record: Row) -> list[Row]:
    """The feedback row of a ticket's rating, or of a record of the Satisfaction Ratings API."""
    if "satisfaction_rating" in record or "via" in record:
        rating = record.get("satisfaction_rating")
        return _rating(rating, record) if isinstance(rating, dict) else []
    ticket = {"id": record.get("ticket_id"), "requester_id": record.get("requester_id")}
    return _rating(record, ticket)


def _rating(rating: Row, ticket: Row) -> list[Row]:
    score = rating.get("score")
    if score is None or score in NOT_RATED:
        return []
    key = rating.get("id") if rating.get("id") is not None else ticket.get("id")
    row = {
        "response_id": None if key is None else f"zendesk:rating:{key}",
        "customer_id": requester(ticket) or rating.get("requester_id"),
        "ts": rating.get("created_at") or ticket.get("updated_at"),
        "metric": "csat",
        # "good_with_comment" and the like are the same rating.
        "score": RATING_SCORES.get(str(score).split("_")[0]),
        "channel": via_channel(ticket),
        "comment": rating.get("comment") or None,
    }
    if row["score"] is None:
        row["_error"] = (f"unknown satisfaction score: {score!r}", "score")
    return [row]


def read_intercom(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Intercom conversations: each rated one (1–5) as CSAT; unrated conversations give no row."""
    return read_json_records(path, opts, intercom_rows, ("conversations",), FEEDBACK_COLUMNS)


def intercom_rows(conversation: Row) -> list[Row]:
    rating = conversation.get("conversation_rating")
    if not isinstance(rating, dict) or rating.get("rating") is None:
        return []
    cid = conversation.get("id")
    return [
        {
            "response_id": None if cid is None else f"intercom:{cid}",
            "customer_id": intercom_customer(conversation, rating),
            "ts": rating.get("created_at") or conversation.get("updated_at"),
            "metric": "csat",
            "score": rating["rating"],
            "channel": "chat",
            "comment": rating.get("remark") or None,
        }
    ]


def intercom_customer(conversation: Row, rating: Row) -> Any:
    """The rating's contact, else the conversation's first contact, user or (when a person) author."""
    contacts = conversation.get("contacts")
    listed = contacts.get("contacts") if isinstance(contacts, dict) else contacts
    author = _get(conversation.get("source"), "author")
    candidates = [rating.get("contact"), rating.get("customer"), _first(listed), conversation.get("user")]
    candidates += [author if _get(author, "type") in PEOPLE else None, _first(conversation.get("customers"))]
    return next((c["id"] for c in candidates if isinstance(c, dict) and c.get("id") is not None), None)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None
