"""The live ingestion endpoint: Segment's HTTP API (`/v1/batch`, `/v1/track`, `/v1/identify`, `/v1/page`,
`/v1/screen`), authenticated by write keys, answered only after the events are committed.

A write key comes as Basic auth (the key as user name, no password, as Segment's libraries send it) or as a
bearer token. A body may be gzip-compressed (`Content-Encoding: gzip`, as RudderStack's libraries send by default);
the size limit holds for the decompressed body, and decompression stops there. Errors answer in Segment's shape,
`{"code", "message"}`, which its libraries and RudderStack's read, beside our `success` and `detail`.

A write key sends events and reads nothing; a user's session or API token cannot send here. Write keys ship
inside apps, so each is limited (`[live] requests_per_second`, `rejected_per_minute`): beyond, 429.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import time
import zlib
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from touchlens.admin import WriteKey
from touchlens.ingest.live import Allowance, LiveWriter, Outcome, OverLimit, Submission, prepare
from touchlens.ingest.pseudonym import Pseudonymiser
from touchlens.store.settings import LiveSettings
from touchlens.web.keylimits import KeyLimits
from touchlens.web.state import WebState

T = TypeVar("T")
KEY_CACHE_SECONDS = 10.0  # a revoked key stops working within this long
MAX_QUEUED = 2000  # requests waiting for the writer; beyond it the answer is 503 and the client retries
OFF_LOOP_MESSAGES = 1000  # a request of this many messages or more is made canonical on a worker thread
CHALLENGE = {"WWW-Authenticate": 'Basic realm="touchlens ingest"'}


class Rejection(BaseModel):
    index: int = Field(description="The message's place in the request, from 1.")
    messageId: str | None = Field(description="The message's id, when it had one.")  # Segment's name
    reason: str
    field: str | None


class LiveAnswer(BaseModel):
    """What became of each message of a request: only sent once they are committed."""

    success: bool
    accepted: int = Field(description="Messages stored now (events, and identify calls applied to customers).")
    duplicates: int = Field(description="Messages whose messageId was already stored: a retry, stored once.")
    suppressed: int = Field(description="Events of erased customers, dropped.")
    rejected: list[Rejection] = Field(description="Messages quarantined, with the reason; the others were stored.")


class LiveError(BaseModel):
    success: bool = False
    detail: str
    code: str = Field(description="What went wrong, as a word (Segment's field): too_large, invalid_json, …")
    message: str = Field(description="The same as `detail` (Segment's field, which its libraries log).")


class LiveLimited(LiveError):
    """Over the key's limits. The request that crosses the invalid-message limit also says what became of its
    messages: the valid ones are stored, the invalid ones up to the limit quarantined, the rest refused."""

    accepted: int | None = None
    duplicates: int | None = None
    suppressed: int | None = None
    rejected: list[Rejection] | None = None
    refused: int | None = Field(None, description="Invalid messages over the limit: neither stored nor quarantined.")


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before sending again.", "schema": {"type": "integer"}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": LiveError, "description": "The body is too large, not JSON, or not a batch; nothing stored."},
    401: {"model": LiveError, "description": "No valid write key."},
    415: {"model": LiveError, "description": "A Content-Encoding other than gzip (or none); nothing stored."},
    429: {
        "model": LiveLimited,
        "description": "The key sent too many requests, or too many invalid messages this minute.",
        "headers": RETRY_AFTER,
    },
    503: {"model": LiveError, "description": "The store could not commit; nothing stored, send it again."},
}
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "messageId": {"type": "string"},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "event": {"type": "string"},
        "timestamp": {"type": "string"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


router = APIRouter(prefix="/v1", tags=["live ingestion"])


class KeyCache:
    """Write keys looked up by their secret, remembered briefly so a busy sender costs no query per request."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], tuple[float, WriteKey | None]] = {}
        self._lock = threading.Lock()

    def find(self, state: WebState, secret: str) -> WriteKey | None:
        now, at = time.monotonic(), (str(state.ws.root), secret)
        with self._lock:
            hit = self._found.get(at)
        if hit and now - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        found = state.ws.keys.find(secret)
        with self._lock:
            if len(self._found) > 1000:
                self._found.clear()
            self._found[at] = (now, found)
        return found


def live_writer(state: WebState) -> LiveWriter:
    """The app's one writer, started on the first live request."""
    with state.lock:
        writer = state.live
        if writer is None:
            ws = state.ws
            privacy = ws.settings.privacy
            pseudo = Pseudonymiser(privacy.salt) if privacy.pseudonymise else None
            writer = LiveWriter(
                ws.writer_cursor(),
                ws.map_version,
                ws.map_or_empty,
                ws.settings.live.group_rows,
                pseudo,
            )
            writer.start()
            state.live = writer
        return writer


def on_writer(state: WebState, work: Callable[[], T]) -> T:
    """Run `work` (an upload's ingest) on the writer's thread, between live commits: one writer at a time, so
    two never conflict over the same customers. Live requests wait meanwhile."""
    return live_writer(state).call(lambda _con: work()).result()


def _secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            user, _, _ = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


class LiveRefused(HTTPException):
    """A request refused before it is read (no write key): answered in the endpoint's error shape."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail, headers)
        self.code = code


def refused(request: Request, exc: Exception) -> Response:
    """The app's handler for `LiveRefused`."""
    assert isinstance(exc, LiveRefused)
    return _fail(exc.status_code, exc.code, str(exc.detail), dict(exc.headers or {}))


async def write_key(request: Request) -> WriteKey:
    """The write key the request carries; 401 otherwise."""
    state: WebState = request.app.state.web
    secret = _secret(request)
    found = _keys.find(state, secret) if secret else None
    if found is None or found.scope != "ingest":
        message = "send a write key: Basic auth with the key as user name, or Bearer KEY"
        raise LiveRefused(401, "unauthorized", message, CHALLENGE)
    return found


_keys = KeyCache()
_limits = KeyLimits()
Key = Annotated[WriteKey, Depends(write_key)]


def _fail(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"success": False, "detail": detail, "code": code, "message": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def _decoded(body: bytes, encoding: str, limit: int) -> bytes | Response:
    """The body as sent before compression, or the answer refusing it. A gzip body inflates to at most `limit`
    bytes (one more tells it is too large), so a small bomb costs no more memory than a large plain body."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        return _fail(
            415, "unsupported_encoding", f"Content-Encoding '{encoding[:20]}' is not read here; send gzip or none"
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        return _fail(400, "invalid_gzip", f"the body is not valid gzip: {exc}")
    if len(plain) > limit:
        return _too_large(limit)
    if not inflater.eof or inflater.unused_data:
        return _fail(400, "invalid_gzip", "the body is not one whole gzip stream")
    return plain


def _too_large(limit: int) -> Response:
    return _fail(400, "too_large", f"request body larger than {limit // 1024} KB; send smaller batches")


async def _read(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (read no further than that)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _receive(request: Request, key: WriteKey, kind: str | None) -> Response:
    """Read, check and hand one request to the writer; answer when its messages are committed."""
    state: WebState = request.app.state.web
    live = state.ws.settings.live
    ident = f"{state.ws.root}:{key.id}"
    wait = _limits.admit(ident, live.requests_per_second, live.rejected_per_minute)
    if wait is not None:
        return _limited(wait)
    limit = live.max_batch_kb * 1024
    raw = await _read(request, limit)
    if raw is None:
        return _too_large(limit)
    body = _decoded(raw, request.headers.get("content-encoding", ""), limit)
    if isinstance(body, Response):
        return body
    if (wait := _limits.rejected_wait(ident, live.rejected_per_minute)) is not None:
        return _limited(wait)  # the key crossed its limit while this body came in: parse nothing
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _fail(400, "invalid_json", f"the body is not valid JSON: {exc}")
    except RecursionError:
        return _fail(400, "invalid_json", "the body is not valid JSON: nested too deeply")
    except ValueError:  # an integer past Python's digit limit
        return _fail(400, "invalid_json", "the body is not valid JSON here: a number has more than 4,300 digits")
    messages = _messages(doc, kind)
    if isinstance(messages, str):
        return _fail(400, "invalid_batch", messages)
    # Valid messages cost the one writer too: a key may not fill it with them and make the others wait.
    if (wait := _limits.take_messages(ident, len(messages), live.events_per_second)) is not None:
        return _limited(wait)
    writer = live_writer(state)
    if writer.queued() > MAX_QUEUED:
        return _fail(503, "busy", "the writer is busy; send again shortly", {"Retry-After": "1"})
    submission = await _prepared(key.source, body, messages, live.max_message_kb * 1024, _allowance(ident, live))
    try:
        outcome: Outcome = await asyncio.wrap_future(writer.submit(submission))
    except OverLimit:
        return _limited(_limits.rejected_wait(ident, live.rejected_per_minute) or 1)
    except Exception as exc:  # the store refused the commit (disk full, read-only): nothing of it was stored
        message = f"the events store could not commit this batch ({exc}); nothing was stored, send it again"
        return _fail(503, "not_stored", message)
    return _answer(outcome, _limits.rejected_wait(ident, live.rejected_per_minute))


def _allowance(ident: str, live: LiveSettings) -> Allowance:
    """The key's limit on invalid messages, as the writer asks it."""
    per_minute = live.rejected_per_minute
    return Allowance(
        take=lambda count: _limits.allow_rejected(ident, count, per_minute),
        blocked=lambda: _limits.rejected_wait(ident, per_minute) is not None,
    )


async def _prepared(source: str, body: bytes, messages: list[Any], max_bytes: int, allowance: Allowance) -> Submission:
    """The canonical rows; a large request's on a worker thread, so the event loop goes on answering other keys
    meanwhile (a small one stays on the loop: the hop would cost more than it saves)."""
    if len(messages) < OFF_LOOP_MESSAGES:
        return prepare(source, body, messages, max_bytes, allowance)
    return await asyncio.to_thread(prepare, source, body, messages, max_bytes, allowance)


def _limited(wait: int) -> JSONResponse:
    return _fail(429, "rate_limited", "this write key is over its limits; send again later", {"Retry-After": str(wait)})


def _answer(outcome: Outcome, wait: int | None) -> Response:
    """200 with the outcome; 429 with it when some invalid messages were refused over the key's limit."""
    if not outcome.refused:
        return JSONResponse(outcome.to_dict())
    detail = (
        f"{outcome.refused} invalid messages over this write key's limit were refused (neither stored nor "
        "quarantined); the other messages are as counted here"
    )
    body = {**outcome.to_dict(), "success": False, "detail": detail, "code": "rate_limited", "message": detail}
    body["refused"] = outcome.refused
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(wait or 1)})


def _messages(doc: Any, kind: str | None) -> list[Any] | str:
    """The request's messages, or why the request as a whole is unusable."""
    if kind is not None:
        if not isinstance(doc, dict):
            return "the body must be one JSON object (a message)"
        return [{"type": kind, **doc} if "type" not in doc else doc]
    if not isinstance(doc, dict) or not isinstance(doc.get("batch"), list):
        return 'the body must be a JSON object with a "batch" list of messages'
    shared = doc.get("context")
    if not isinstance(shared, dict):
        return list(doc["batch"])
    # Segment lets a batch carry a context for all its messages; a message's own context wins.
    return [
        {**m, "context": {**shared, **(m["context"] if isinstance(m.get("context"), dict) else {})}}
        if isinstance(m, dict)
        else m
        for m in doc["batch"]
    ]


@router.post(
    "/batch",
    response_model=LiveAnswer,
    responses=ERRORS,
    openapi_extra=_body(
        {"type": "object", "required": ["batch"], "properties": {"batch": {"type": "array", "items": MESSAGE_SCHEMA}}}
    ),
)
async def batch(request: Request, key: Key) -> Response:
    """Many messages of any type; each is stored, or quarantined with the reason given back."""
    return await _receive(request, key, None)


@router.post("/track", response_model=LiveAnswer, responses=ERRORS, openapi_extra=_body(MESSAGE_SCHEMA))
async def track(request: Request, key: Key) -> Response:
    """One event."""
    return await _receive(request, key, "track")


@router.post("/identify", response_model=LiveAnswer, responses=ERRORS, openapi_extra=_body(MESSAGE_SCHEMA))
async def identify(request: Request, key: Key) -> Response:
    """Traits of a customer, merged into their attributes."""
    return await _receive(request, key, "identify")


@router.post("/page", response_model=LiveAnswer, responses=ERRORS, openapi_extra=_body(MESSAGE_SCHEMA))
async def page(request: Request, key: Key) -> Response:
    """A page view (stored as the event `page_viewed`)."""
    return await _receive(request, key, "page")


@router.post("/screen", response_model=LiveAnswer, responses=ERRORS, openapi_extra=_body(MESSAGE_SCHEMA))
async def screen(request: Request, key: Key) -> Response:
    """A screen view in an app (stored as the event `screen_viewed`)."""
    return await _receive(request, key, "screen")
