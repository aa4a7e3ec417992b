"""Segment and RudderStack: one message a line, or ``{"batch": [...]}`` files; track, page, screen, identify.

`messageId` is the event id; `userId` the customer (else `anonymousId`); page and screen calls become
`page_viewed` and `screen_viewed` events; identify calls carry customer attributes (traits), not events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchlens.ingest.readers.base import ReadOptions, RowBatcher, json_lines

EVENT_NAMES = {"page": "page_viewed", "screen": "screen_viewed"}
TYPES = ("track", "page", "screen", "identify")


def messages(path: Path) -> Iterator[tuple[int, str, Any, str | None]]:
    """Every message with its row: its line, or for messages inside a batch or array, its place (1, 2, …)."""
    place = 0
    for number, line, value, error in json_lines(path):
        items = value["batch"] if isinstance(value, dict) and isinstance(value.get("batch"), list) else value
        if isinstance(items, list):
            for message in items:
                place += 1
                yield place, _dump(message), message, None
        else:
            yield number, line, value, error


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def read_segment(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Track/page/screen messages as events; identify messages as rows with event ``$identify``."""
    batcher = RowBatcher(size=opts.batch_rows)
    for number, raw, message, error in messages(path):
        if error or not isinstance(message, dict):
            batcher.add(number, raw, {}, (error or "not a JSON object", "message"))
        elif message.get("type", "track") not in TYPES:
            batcher.add(number, raw, {}, (f"unsupported message type '{message.get('type')}'", "type"))
        else:
            batcher.add(number, raw, message_values(message))
        if batcher.full():
            yield from batcher.flush()
    yield from batcher.flush()


def message_values(message: dict[str, Any]) -> dict[str, Any]:
    """Canonical values of one Segment message."""
    kind = message.get("type", "track")
    context: dict[str, Any] = _mapping(message.get("context"))
    props: dict[str, Any] = dict(_mapping(message.get("properties")))
    if kind == "identify":
        props = dict(_mapping(message.get("traits")) or _mapping(context.get("traits")))
    if kind in EVENT_NAMES and message.get("name") is not None:
        props.setdefault("name", message.get("name"))
    if isinstance(context.get("campaign"), dict):
        props.setdefault("campaign", context["campaign"])
    return {
        "event_id": message.get("messageId"),
        "customer_id": message.get("userId") or message.get("anonymousId"),
        "anonymous_id": message.get("anonymousId"),
        "session_id": context.get("sessionId") or props.get("session_id"),
        "ts": message.get("timestamp") or message.get("originalTimestamp") or message.get("sentAt"),
        "event": "$identify" if kind == "identify" else EVENT_NAMES.get(kind, message.get("event")),
        "channel": context.get("channel") if isinstance(context.get("channel"), str) else None,
        "properties": props or None,
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
