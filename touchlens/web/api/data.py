"""The data: upload events or feedback to ingest, the ingest history, and the quarantine."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Annotated, Any

import duckdb
import pyarrow as pa
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile

from touchlens.api import Workspace
from touchlens.web.api.base import UPLOAD_LIMIT, TranslatingRoute, _ws
from touchlens.web.collect import on_writer
from touchlens.web.security import Editor, Viewer, state

router = APIRouter(route_class=TranslatingRoute)
# The suffix of the client's file name (when it is one of these) tells ingest the format; the name never does.
UPLOAD_SUFFIXES = (".csv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq")


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


@router.delete("/quarantine")
def clear_quarantine(user: Editor, request: Request) -> dict[str, int]:
    """Delete every quarantined row (before uploading fixed files, so only what is still wrong returns), as
    `touchlens quarantine clear`; audited. `cleared`: how many there were."""
    ws = _ws(request)
    cleared = on_writer(state(request), lambda: ws.clear_quarantine(actor=user.name))
    state(request).changed()
    return {"cleared": cleared}


@router.get("/unmapped")
def unmapped(
    user: Viewer,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many event names, most frequent first.")] = 20,
) -> dict[str, Any]:
    """The events no touchpoint claims, by event name: `{"events": [{"event", "events", "customers",
    "last_seen"}]}`, most frequent first (what to map next)."""
    return {"events": _ws(request).unmapped_events(limit)}
