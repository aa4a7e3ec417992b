"""The REST API under /api: JSON for everything the pages show and edit (OpenAPI at /api/docs).

Viewers read; editors also change the map, the roadmap and the data; admins also manage users. A read-scoped
token never writes. Each analysis answers with the JSON its `touchlens analyze … --json` command prints, cached
until the data or the map changes. Library errors become JSON: an unknown key in the path 404, a bad parameter
or an invalid map 422 (with every problem), a missing map 409.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

import duckdb
import pyarrow as pa
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from touchlens import editing
from touchlens.admin import ACTIONS, User
from touchlens.analyses import compare_attribution
from touchlens.analytics.attribution import EVERY_MODEL, MAX_ORDER, MODELS
from touchlens.analytics.funnels import MAX_STEPS
from touchlens.api import Workspace
from touchlens.errors import BadOption, MapError, TouchlensError, UnknownItem, WorkspaceError
from touchlens.insights.items import SECTIONS
from touchlens.insights.prioritise import card
from touchlens.limits import Busy, TooSlow
from touchlens.model.views import TouchpointFilter
from touchlens.store.events import EventsStoreError
from touchlens.web.collect import on_writer
from touchlens.web.security import Admin, Editor, Viewer, require, state

UPLOAD_LIMIT = 200 * 1024 * 1024
# Multipart framing and form fields around a file at the limit; no other request body comes near this.
BODY_LIMIT = UPLOAD_LIMIT + 1024 * 1024
# The suffix of the client's file name (when it is one of these) tells ingest the format; the name never does.
UPLOAD_SUFFIXES = (".csv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq")
# Drivers' resamples through the web: each refits the model in Python, which no time limit interrupts.
WEB_SAMPLES = 100
AdminReader = Annotated[User, Depends(require("admin"))]
# The first kind an error is decides its status; any other touchlens error is a bad input: 422.
STATUS: tuple[tuple[type[TouchlensError], int], ...] = (
    (editing.NotFound, 404),
    (UnknownItem, 422),
    (BadOption, 422),
    (WorkspaceError, 409),
    (EventsStoreError, 503),
    (Busy, 429),
    (TooSlow, 503),
)


def error_response(exc: TouchlensError) -> JSONResponse:
    """The HTTP answer to a library error: the status that fits it and its message (and a map's problems)."""
    if isinstance(exc, MapError):
        problems = [{"path": p.path, "message": p.message, "file": p.file, "line": p.line} for p in exc.problems]
        return JSONResponse({"detail": str(exc), "problems": problems}, status_code=422)
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 422)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
    body = {"detail": str(exc), **({"field": exc.field} if exc.field else {})}
    return JSONResponse(body, status_code=status, headers=headers)


class TranslatingRoute(APIRoute):
    """A route that refuses oversized bodies up front and answers touchlens errors with JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > BODY_LIMIT:
                return JSONResponse({"detail": f"uploads are limited to {UPLOAD_LIMIT // 2**20} MB"}, 413)
            try:
                return await handler(request)
            except TouchlensError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                raise RequestValidationError(_without_body_inputs(exc.errors()), body=None) from None

        return translated


def _without_body_inputs(errors: Sequence[Any]) -> list[Any]:
    """Validation errors without the body's values: FastAPI would echo what was sent, a password included."""
    return [
        {k: v for k, v in e.items() if k != "input"} if isinstance(e, dict) and e.get("loc", ("",))[0] == "body" else e
        for e in errors
    ]


class MapProblem(BaseModel):
    path: str = Field(description="The field, as `touchpoints[3].stage`.")
    message: str
    file: str | None = None
    line: int | None = None


class ErrorAnswer(BaseModel):
    """Why a request failed."""

    detail: str | list[dict[str, Any]] = Field(
        description="A sentence; for a parameter or body of the wrong shape, FastAPI's list of what is wrong."
    )
    problems: list[MapProblem] | None = Field(None, description="For an invalid map edit: every problem.")


def _answer(description: str) -> dict[str, Any]:
    return {"model": ErrorAnswer, "description": description}


# Every route may answer these; the document says so, and the fuzz test checks nothing else comes back.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _answer("The body could not be parsed (not JSON, or a broken form)."),
    401: _answer("Not signed in, and no valid API token."),
    403: _answer("Without the role or scope this needs, or a session's change without its CSRF token."),
    409: _answer("The workspace has no map yet (or an admin tried to remove themselves)."),
    413: _answer(f"The request body is over {UPLOAD_LIMIT // 2**20} MB."),
    422: _answer("A parameter or body that is malformed or names something unknown; nothing was changed."),
    429: _answer(
        "You already run `[web] heavy_per_user` expensive analyses at once; send again after Retry-After seconds."
    ),
    503: _answer(
        "The events store could not be read or written, or the analysis ran past `[web] analysis_seconds` and "
        "was stopped; try again (narrower)."
    ),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _answer("The key in the path names nothing.")}
router = APIRouter(prefix="/api", tags=["api"], route_class=TranslatingRoute, responses=ERRORS)


def _ws(request: Request) -> Workspace:
    return state(request).ws


def _keys(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


# -- who, and the map -------------------------------------------------------------------------------------


@router.get("/me")
def me(user: Viewer, request: Request) -> dict[str, Any]:
    """Who is signed in, their role, and the CSRF token scripts send with changes."""
    return {"name": user.name, "role": user.role, "scopes": list(user.scopes), "csrf": request.state.csrf}


@router.get("/map")
def get_map(user: Viewer, request: Request) -> dict[str, Any]:
    """The whole touchpoint map, as `touchlens map export --format json` writes it."""
    ws = state(request).ws
    data: dict[str, Any] = ws.map_or_empty().model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


@router.get("/touchpoints")
def list_touchpoints(
    user: Viewer,
    request: Request,
    stage: Annotated[str | None, Query(description="Only this stage (key).")] = None,
    channel: Annotated[str | None, Query(description="Only this channel (key).")] = None,
    persona: Annotated[str | None, Query(description="Only touchpoints on this persona's journeys.")] = None,
    owner: Annotated[str | None, Query(description="Only this owner (case-insensitive).")] = None,
    phase: Annotated[str | None, Query(description="pre-purchase, purchase or post-purchase.")] = None,
) -> dict[str, Any]:
    """The touchpoint inventory, optionally filtered: `{"touchpoints": [...]}` as `touchlens touchpoints --json`."""
    ws = _ws(request)
    found = ws.touchpoints(TouchpointFilter(stage, channel, persona, owner, phase)) if ws.has_map() else []
    return {"touchpoints": [t.model_dump(mode="json", by_alias=True, exclude_defaults=True) for t in found]}


@router.get("/touchpoints/{key}", responses=NOT_FOUND)
def get_touchpoint(user: Viewer, request: Request, key: str) -> dict[str, Any]:
    """One touchpoint with its scorecard row and its feedback row (each null when there is no data)."""
    found = _ws(request).map_or_empty().touchpoint(key)
    if found is None:
        raise HTTPException(404, f"unknown touchpoint '{key}'")
    card = _scorecard(request, "30d", "touchpoint")
    report = _feedback(request, "touchpoint", "week", False)
    return {
        "touchpoint": found.model_dump(mode="json", by_alias=True, exclude_none=True),
        "score": next((r for r in card["touchpoints"] if r["touchpoint"] == key), None),
        "feedback": next((r for r in report["groups"] if r["key"] == key), None),
    }


@router.patch("/touchpoints/{key}", responses=NOT_FOUND)
def patch_touchpoint(user: Editor, request: Request, key: str, changes: editing.TouchpointChanges) -> dict[str, Any]:
    """Change any of a touchpoint's fields; 422 with every problem (an unknown stage, say) and nothing stored."""
    updated = editing.update_touchpoint(_ws(request), key, changes, actor=user.name)
    data: dict[str, Any] = updated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


@router.patch("/journeys/{journey}/stages/{stage}", responses=NOT_FOUND)
def patch_stage(
    user: Editor, request: Request, journey: str, stage: str, changes: editing.StageChanges
) -> dict[str, Any]:
    """Change a stage as one journey describes it: goal, tasks, questions, emotion (-2..2), weaknesses …"""
    updated = editing.update_stage(_ws(request), journey, stage, changes, actor=user.name)
    data: dict[str, Any] = updated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


# -- journeys ---------------------------------------------------------------------------------------------


def _scorecard(request: Request, window: str, by: str) -> dict[str, Any]:
    return state(request).cached("scorecard", (window, by), lambda: _ws(request).scorecard(window, by).to_dict())


@router.get("/scorecard")
def scorecard(
    user: Viewer,
    request: Request,
    window: Annotated[
        str, Query(description="Count a conversion this soon after the touchpoint (30d, 7d, 48h).")
    ] = "30d",
    by: Annotated[Literal["touchpoint", "stage"], Query(description="touchpoint, or stage: one row per stage.")] = (
        "touchpoint"
    ),
) -> dict[str, Any]:
    """Per touchpoint (or stage): customers, events, conversion after it and lift, drop-off, repeats."""
    return _scorecard(request, window, by)


@router.get("/flows")
def flows(user: Viewer, request: Request) -> dict[str, Any]:
    """The directly-follows graph over touchpoints: edges with counts and times, starts and ends."""
    return state(request).cached("flows", (), lambda: _ws(request).flows().to_dict())


@router.get("/variants")
def variants(
    user: Viewer,
    request: Request,
    top: Annotated[int, Query(ge=1, le=1000, description="How many of the most frequent variants.")] = 10,
) -> dict[str, Any]:
    """The most frequent full touchpoint sequences, with share and cumulative coverage."""
    return state(request).cached("variants", top, lambda: _ws(request).variants(top).to_dict())


@router.get("/sankey")
def sankey(
    user: Viewer,
    request: Request,
    depth: Annotated[int, Query(ge=2, le=20, description="How many first steps of each journey.")] = 5,
    top: Annotated[int, Query(ge=1, le=100, description="Touchpoints kept per step; the rest become 'other'.")] = 8,
) -> dict[str, Any]:
    """Sankey nodes and links of the journeys' first steps."""
    return state(request).cached("sankey", (depth, top), lambda: _ws(request).sankey(depth, top))


@router.get("/paths")
def paths(
    user: Viewer,
    request: Request,
    from_: Annotated[str | None, Query(description="Show what follows this touchpoint.")] = None,
    from_alias: Annotated[str | None, Query(alias="from", include_in_schema=False)] = None,
    to: Annotated[str | None, Query(description="Show what leads to this touchpoint.")] = None,
    steps: Annotated[int, Query(ge=1, le=20, description="How many steps after (or before).")] = 3,
    top: Annotated[int, Query(ge=1, le=1000, description="How many of the most frequent paths.")] = 20,
) -> dict[str, Any]:
    """The touchpoints right after (`from_`) or before (`to`) a touchpoint, with counts and shares."""
    anchor_from = from_ or from_alias
    if (anchor_from is None) == (to is None):
        raise HTTPException(422, "give exactly one of from_ or to")
    anchor, before = (to, True) if to is not None else (anchor_from or "", False)
    return state(request).cached(
        "paths", (anchor, before, steps, top), lambda: _ws(request).paths_around(anchor, steps, before, top).to_dict()
    )


@router.get("/funnel")
def funnel(
    user: Viewer,
    request: Request,
    steps: Annotated[
        str, Query(description=f"Touchpoint keys in order, comma-separated: a,b,c (at most {MAX_STEPS}).")
    ],
    window: Annotated[str, Query(description="Time allowed from the first step to the last (30m, 48h, 7d).")] = "7d",
    order: Annotated[
        Literal["any", "strict"], Query(description="any: other events may come between steps; strict: none may.")
    ] = "any",
    exclude: Annotated[str | None, Query(description="Touchpoints (comma-separated) that spoil a journey.")] = None,
    breakdown: Annotated[str | None, Query(description="persona, channel or property:NAME.")] = None,
) -> dict[str, Any]:
    """How many customers reach each step of a touchpoint sequence within the window, and how fast."""
    ws = _ws(request)
    if not _keys(steps):
        raise HTTPException(422, "steps: give at least one touchpoint key, as steps=a,b,c")
    query = ws.funnel(_keys(steps), window, order, _keys(exclude))
    return state(request).cached("funnel", (query, breakdown), lambda: ws.run_funnel(query, breakdown).to_dict())


@router.get("/attribution")
def get_attribution(
    user: Viewer,
    request: Request,
    model: Annotated[
        str, Query(pattern=f"^({'|'.join(EVERY_MODEL)})$", description=f"{', '.join(MODELS)}, time-decay.")
    ] = "markov",
    by: Annotated[
        Literal["touchpoint", "channel", "stage"], Query(description="Credit touchpoint, channel or stage.")
    ] = "touchpoint",
    order: Annotated[int, Query(ge=1, le=MAX_ORDER, description=f"Markov order: 1 to {MAX_ORDER}.")] = 1,
    half_life: Annotated[str, Query(description="time-decay: credit halves this long before the conversion.")] = "7d",
    lookback: Annotated[str | None, Query(description="Only touches this close before their conversion.")] = None,
    compare: Annotated[bool, Query(description="Every model side by side (a list, one result per model).")] = False,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Credit for conversions by touchpoint, channel or stage, with one model or every model."""
    every = EVERY_MODEL  # `model` is one of them: its pattern says so
    ws, chosen = _ws(request), every if compare else (model,)

    def compute() -> list[dict[str, Any]]:
        return [r.to_dict() for r in compare_attribution(ws, chosen, by, order, half_life, 0, lookback)]

    results = state(request).cached("attribution", (chosen, by, order, half_life, lookback), compute)
    return results if compare else results[0]


# -- experience -------------------------------------------------------------------------------------------


def _feedback(request: Request, by: str, period: str, themes: bool) -> dict[str, Any]:
    ws = _ws(request)
    return state(request).cached("feedback", (by, period, themes), lambda: ws.feedback(by, period, themes).to_dict())


@router.get("/feedback")
def feedback(
    user: Viewer,
    request: Request,
    by: Annotated[
        Literal["touchpoint", "stage", "persona", "channel", "period"],
        Query(description="touchpoint, stage, persona, channel or period."),
    ] = "touchpoint",
    period: Annotated[Literal["day", "week", "month"], Query(description="With by=period: day, week or month.")] = (
        "week"
    ),
    themes: Annotated[bool, Query(description="Recurring topics of each touchpoint's comments.")] = False,
) -> dict[str, Any]:
    """NPS, CSAT and CES with 95% intervals and comment sentiment, per group."""
    return _feedback(request, by, period, themes)


@router.get("/feedback/comments")
def comments(
    user: Viewer,
    request: Request,
    touchpoint: Annotated[str | None, Query(description="Only this touchpoint's comments.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Only comments containing this text.")] = None,
    metric: Annotated[str | None, Query(description="Only this metric: nps, csat, ces or rating.")] = None,
    min_score: Annotated[float | None, Query(description="Only scores at least this (on the metric's scale).")] = None,
    max_score: Annotated[float | None, Query(description="Only scores at most this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many of the newest comments.")] = 50,
) -> dict[str, Any]:
    """The feedback explorer: the newest comments with their score, metric, sentiment, touchpoint and time."""
    rows = _ws(request).comments(touchpoint, q, metric, min_score, max_score, limit)
    return {"comments": rows}


@router.get("/drivers")
def drivers(
    user: Viewer,
    request: Request,
    outcome: Annotated[
        Literal["conversion", "repeat", "churn", "nps"] | None,
        Query(
            description="conversion, repeat or churn; or nps (key drivers of NPS). Omitted: every outcome "
            "the map defines, as `analyze drivers --json` without --outcome."
        ),
    ] = None,
    samples: Annotated[
        int, Query(ge=0, le=WEB_SAMPLES, description=f"Resamples for the 95% intervals (at most {WEB_SAMPLES}).")
    ] = WEB_SAMPLES,
) -> dict[str, Any]:
    """What raises or lowers the rate of an outcome (or, for nps, which touchpoint scores explain NPS)."""
    ws = _ws(request)
    if outcome == "nps":
        return state(request).cached("nps_drivers", (), ws.nps_drivers)
    if outcome is None:
        return state(request).cached("all_drivers", (samples,), lambda: ws.all_drivers(samples).to_dict())
    return state(request).cached("drivers", (outcome, samples), lambda: ws.drivers(outcome, samples).to_dict())


@router.get("/insights")
def insights(
    user: Viewer,
    request: Request,
    sections: Annotated[
        str | None,
        Query(description="Comma-separated: problems, strengths, gaps, friction, personalisation (default all)."),
    ] = None,
) -> dict[str, Any]:
    """Findings by section (as `touchlens analyze insights --json`), each with its reach in customers, effects on
    the map's outcomes, what is at stake a year, a summary in words and its evidence."""
    chosen = _keys(sections) or SECTIONS
    return state(request).cached("insights", chosen, lambda: _ws(request).insights(chosen).to_dict())


@router.get("/health")
def touchpoint_health(user: Viewer, request: Request) -> dict[str, Any]:
    """Each touchpoint's health — good, watch, poor or null — and why (as `touchlens analyze health --json`)."""
    return state(request).cached("health", (), lambda: {"touchpoints": _ws(request).health_report()})


@router.get("/conformance")
def conformance(
    user: Viewer,
    request: Request,
    journey: Annotated[str | None, Query(description="The designed journey (default: the map's first).")] = None,
    top: Annotated[int, Query(ge=1, le=1000, description="How many of the most frequent deviations.")] = 10,
) -> dict[str, Any]:
    """The designed stage order against actual journeys: who follows it, skipped stages, backward moves."""
    return state(request).cached(
        "conformance", (journey, top), lambda: _ws(request).conformance(journey, top).to_dict()
    )


@router.get("/trends")
def trends(
    user: Viewer,
    request: Request,
    period: Annotated[Literal["day", "week", "month"], Query(description="day, week or month.")] = "week",
    touchpoint: Annotated[list[str] | None, Query(description="Only these touchpoints (repeat the parameter).")] = None,
) -> dict[str, Any]:
    """Each touchpoint's events, customers, CSAT and sentiment per period, with anomalies flagged."""
    keys = tuple(touchpoint or ())
    return state(request).cached("trends", (period, keys), lambda: _ws(request).trends(period, keys))


# -- roadmap ----------------------------------------------------------------------------------------------


@router.get("/roadmap")
def roadmap(user: Viewer, request: Request) -> list[dict[str, Any]]:
    """Every card, Now first, then Next and Later, best score first, done last (as `touchlens roadmap list --json`)."""
    return [card(o) for o in _ws(request).roadmap()]


@router.patch("/roadmap/{key}", responses=NOT_FOUND)
def patch_roadmap(user: Editor, request: Request, key: str, changes: editing.OpportunityChanges) -> dict[str, Any]:
    """Move an opportunity to now / next / later or set its status; it becomes a person's."""
    updated = editing.update_opportunity(_ws(request), key, changes, actor=user.name)
    data: dict[str, Any] = updated.model_dump(mode="json")
    return data


@router.post("/roadmap/suggest")
def suggest_roadmap(user: Editor, request: Request) -> dict[str, Any]:
    """Turn the findings into scored cards (as `touchlens roadmap suggest --json`); `kept` lists people's cards a
    suggestion was linked to instead of added beside."""
    suggested, kept = editing.suggest_opportunities(_ws(request), actor=user.name)
    return {"suggested": [card(o) for o in suggested], "kept": kept}


# -- data -------------------------------------------------------------------------------------------------

UploadField = Annotated[UploadFile, File(description="The file to ingest (at most 200 MB).")]
FormatField = Annotated[str, Form(alias="format", description="The file's format (auto: from its name and content).")]


def _ingest(ws: Workspace, upload: UploadFile, ingest: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Copy the upload into a private staging folder of the workspace (where erasure and a restart reach it),
    under the client's file name reduced to safe characters (so the ingest history shows it), ingest it, and
    delete it whatever happens."""
    name = _safe_name(upload.filename)
    with ws.staged_upload(name) as path:
        with path.open("wb") as out:
            size = 0
            while chunk := upload.file.read(1 << 20):
                size += len(chunk)
                if size > UPLOAD_LIMIT:
                    raise HTTPException(413, f"uploads are limited to {UPLOAD_LIMIT // 2**20} MB")
                out.write(chunk)
        try:
            report = ingest(path)
        except (duckdb.Error, pa.ArrowException) as exc:
            # The server's folder is no business of the client's: name the file as they sent it.
            raise HTTPException(422, f"{type(exc).__name__}: {str(exc).replace(str(path), name)}") from None
    return {**report, "file": name}


def _safe_name(filename: str | None) -> str:
    """The last part of a client's file name with only letters, digits, '.', '-' and '_': never a path."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath((filename or "").replace("\\", "/")).name).strip("._")
    suffix = PurePath(base).suffix.lower()
    if not base or suffix not in UPLOAD_SUFFIXES:
        base = (base or "upload") + ".dat"
    return base[-120:]


@router.post("/ingest/events")
def ingest_events(user: Editor, request: Request, file: UploadField, fmt: FormatField = "auto") -> dict[str, Any]:
    """Ingest an uploaded event file; the answer is `touchlens ingest events --json`'s report."""
    ws = _ws(request)
    report = _ingest(
        ws,
        file,
        lambda path: on_writer(state(request), lambda: ws.ingest_events([path], fmt=fmt, actor=user.name).to_dict()),
    )
    return {k: v for k, v in report.items() if k != "files"}


@router.post("/ingest/feedback")
def ingest_feedback(user: Editor, request: Request, file: UploadField, fmt: FormatField = "auto") -> dict[str, Any]:
    """Ingest an uploaded survey or ticket export; the answer is `touchlens ingest feedback --json`'s report."""
    ws = _ws(request)
    report = _ingest(
        ws,
        file,
        lambda path: on_writer(state(request), lambda: ws.ingest_feedback([path], fmt=fmt, actor=user.name).to_dict()),
    )
    return {k: v for k, v in report.items() if k not in ("files", "identified")}


@router.get("/ingest/history")
def ingest_history(
    user: Viewer,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000, description="How many of the latest runs.")] = 200,
) -> dict[str, Any]:
    """Every ingest run, newest first: source, kind, file name, rows read, accepted, duplicates, quarantined."""
    rows = _ws(request).ingest_history(limit)
    # The file's name only: where the server keeps files is no business of the reader's.
    return {"ingests": [{**r, "file": Path(r["file"]).name} for r in rows]}


@router.get("/quarantine")
def quarantine(
    user: Viewer,
    request: Request,
    examples: Annotated[int, Query(ge=0, le=100, description="Example rows per reason.")] = 3,
) -> dict[str, Any]:
    """Rows ingest could not use, grouped by reason, with examples (as `touchlens quarantine list --json`)."""
    return {"reasons": _ws(request).quarantine(examples)}


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
