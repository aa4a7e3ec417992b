"""Walkthrough audits (`ws.audits`): someone walks a persona's journey touchpoint by touchpoint, as a customer
would, and records for each whether it met the map's expectations, the annoyances seen, what they thought, did
and felt, an emotion on the map's −2..2 scale, and a photo or screenshot.

An audit is started for a journey by a person of the team; it comes with a link for the auditor (an outsider
too) that opens that audit's walk and nothing else: signed with the workspace's signing key, checked against the
audit's own random nonce. Audits compare with each other and with what was measured: per stage, the designed
emotion, the audited one (the mean over audits) and comment sentiment, as the canvas draws them.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import secrets
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from touchlens.errors import BadOption, UnknownItem
from touchlens.host import Host
from touchlens.model.map import Journey, Touchpoint, TouchpointMap

PHOTOS = "audits"  # the folder in the workspace that keeps the photos
MAX_PHOTO = 5 * 1024 * 1024
PHOTO_KINDS = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg"}
TEXT = 2000


class LinkRefused(UnknownItem):
    """A walkthrough link that is not one, or not any more."""


@dataclass(frozen=True)
class Step:
    audit: dict[str, Any]
    touchpoint: Touchpoint
    number: int  # from 1
    of: int
    recorded: dict[str, Any] | None


class Audits:
    def __init__(self, ws: Host) -> None:
        self.ws = ws

    def start(self, journey: str, auditor: str, *, actor: str = "library") -> tuple[int, str]:
        """A new audit of `journey` for `auditor`; its id and the link that walks it."""
        from touchlens.store import audits as store

        m = self.ws.map_or_empty()
        if not auditor.strip():
            raise BadOption("--auditor: say who walks it (a name; an outsider is fine)")
        if not self.route(_journey(m, journey)):
            raise BadOption(f"journey '{journey}' has no touchpoints on its stages to walk")
        values = {"journey": journey, "auditor": auditor.strip()[:200], "nonce": secrets.token_urlsafe(18),
                  "created_by": actor, "created_at": datetime.now(UTC)}  # fmt: skip
        audit_id = store.add(self.ws.meta_engine(), values)
        return audit_id, self.link(audit_id)

    def link(self, audit_id: int) -> str:
        audit = self._get(audit_id)
        return f"{self.ws.settings.surveys.base_url.rstrip('/')}/walk/{self._token(audit)}"

    def route(self, journey: Journey) -> list[Touchpoint]:
        """The journey's touchpoints in the order a customer meets them: by stage, then as the map lists them."""
        m = self.ws.map_or_empty()
        order = {s.key: i for i, s in enumerate(journey.stages)}
        on = [t for t in m.touchpoints if t.stage in order and (not t.personas or journey.persona in t.personas)]
        return sorted(on, key=lambda t: order[t.stage or ""])

    def opened(self, token: str) -> dict[str, Any]:
        """The audit a link walks; `LinkRefused` for anything else."""
        from touchlens.store import audits as store

        head = token.rpartition(".")[0]
        audit_id, _, nonce = head.partition(".")
        audit = store.one(self.ws.meta_engine(), int(audit_id)) if audit_id.isdigit() and len(audit_id) < 12 else None
        if audit is None or not hmac.compare_digest(self._token(audit), token) or audit["nonce"] != nonce:
            raise LinkRefused("this walkthrough link does not work")
        return audit

    def step(self, token: str, number: int) -> Step:
        from touchlens.store import audits as store

        audit = self.opened(token)
        route = self.route(_journey(self.ws.map_or_empty(), audit["journey"]))
        if not 1 <= number <= len(route):
            raise UnknownItem(f"this walkthrough has steps 1 to {len(route)}")
        tp = route[number - 1]
        return Step(audit, tp, number, len(route), store.steps(self.ws.meta_engine(), audit["id"]).get(tp.key))

    def record(self, token: str, number: int, answer: dict[str, Any], photo: bytes | None = None) -> int | None:
        """Save step `number` (again, if it was); the next step's number, or None after the last (the audit is
        finished then)."""
        from touchlens.store import audits as store

        step = self.step(token, number)
        values = _answer(answer) | {"audit_id": step.audit["id"], "touchpoint": step.touchpoint.key,
                                   "at": datetime.now(UTC), "photo": None}  # fmt: skip
        if photo:
            values["photo"] = self._keep_photo(step.audit["id"], step.touchpoint.key, photo)
        elif step.recorded is not None:
            values["photo"] = step.recorded["photo"]
        store.save_step(self.ws.meta_engine(), values)
        if number < step.of:
            return number + 1
        store.finish(self.ws.meta_engine(), step.audit["id"], datetime.now(UTC))
        return None

    def list(self) -> list[dict[str, Any]]:
        from touchlens.store import audits as store

        return [{k: v for k, v in a.items() if k != "nonce"} for a in store.every(self.ws.meta_engine())]

    def show(self, audit_id: int) -> dict[str, Any]:
        """An audit with its steps in walking order (a step not walked yet has `recorded` None)."""
        from touchlens.store import audits as store

        audit = self._get(audit_id)
        done = store.steps(self.ws.meta_engine(), audit_id)
        route = self.route(_journey(self.ws.map_or_empty(), audit["journey"]))
        steps = [{"touchpoint": t.key, "name": t.label, "stage": t.stage, "expectations": t.expectations,
                  "recorded": _public(done.get(t.key))} for t in route]  # fmt: skip
        return {**{k: v for k, v in audit.items() if k != "nonce"}, "steps": steps}

    def export(self) -> builtins.list[dict[str, Any]]:
        """Every audit with its steps, for the record (`touchlens walkthrough export`)."""
        return [self.show(a["id"]) for a in self.list()]

    def compare(self, journey: str, themes: dict[str, builtins.list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """The journey's walkthroughs side by side, oldest first: per touchpoint each one's answer, the annoyances
        (the map's and those seen) matched against the themes of its comments, and the complaint themes none
        names; per stage the designed emotion and each walkthrough's. `themes` per touchpoint, as
        `ws.feedback(themes=True)` finds them (found here when not given)."""
        from touchlens.insights.walkthroughs import hear, items, unlisted
        from touchlens.store import audits as store

        m = self.ws.map_or_empty()
        j = _journey(m, journey)
        engine = self.ws.meta_engine()
        walked = sorted(
            (a for a in store.every(engine) if a["journey"] == journey), key=lambda a: (a["created_at"], a["id"])
        )
        steps = [store.steps(engine, a["id"]) for a in walked]
        said = self._themes() if themes is None else themes
        touchpoints = []
        for t in self.route(j):
            cells = [_cell(s.get(t.key)) for s in steps]
            seen = [
                (i, f"walkthrough {a['id']}")
                for a, c in zip(walked, cells, strict=True)
                for i in items(c["annoyances"])
            ]
            heard = hear([(i, "map") for i in items(t.annoyances)] + seen, said.get(t.key, []))
            touchpoints.append({"touchpoint": t.key, "name": t.label, "stage": t.stage, "expectations": t.expectations,
                                "cells": cells, "heard": [h.to_dict() for h in heard],
                                "unlisted": unlisted(heard, said.get(t.key, []))})  # fmt: skip
        return {"journey": journey, "name": j.name or j.key, "audits": [_head(a) for a in walked],
                "touchpoints": touchpoints, "stages": _stages(m, j, steps)}  # fmt: skip

    def _themes(self) -> dict[str, builtins.list[dict[str, Any]]]:
        report = self.ws.feedback(themes=True)
        return {r.key: r.themes or [] for r in report.rows}

    def audited_emotion(self, journey: str | None) -> dict[str, tuple[float, int]]:
        """Per stage: the mean emotion recorded in walkthroughs (of `journey`, or of all) and how many steps."""
        from touchlens.store import audits as store

        m = self.ws.map_or_empty()
        stage_of = {t.key: t.stage for t in m.touchpoints}
        found: dict[str, list[int]] = {}
        for a in store.every(self.ws.meta_engine()):
            if journey is None or a["journey"] == journey:
                for tp, s in store.steps(self.ws.meta_engine(), a["id"]).items():
                    if s["emotion"] is not None and stage_of.get(tp):
                        found.setdefault(stage_of[tp] or "", []).append(int(s["emotion"]))
        return {stage: (statistics.fmean(v), len(v)) for stage, v in found.items()}

    def photo(self, audit_id: int, touchpoint: str) -> Path | None:
        from touchlens.store import audits as store

        step = store.steps(self.ws.meta_engine(), audit_id).get(touchpoint)
        if step is None or not step["photo"]:
            return None
        path = self.ws.root / PHOTOS / str(audit_id) / step["photo"]
        return path if path.is_file() else None

    def _keep_photo(self, audit_id: int, touchpoint: str, data: bytes) -> str:
        if len(data) > MAX_PHOTO:
            raise BadOption(f"photo: at most {MAX_PHOTO // 2**20} MB")
        kind = next((k for magic, k in PHOTO_KINDS.items() if data.startswith(magic)), None)
        if kind is None:
            raise BadOption("photo: a PNG or JPEG image")
        folder = self.ws.root / PHOTOS / str(audit_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{hashlib.sha256(touchpoint.encode()).hexdigest()[:16]}.{kind}"  # never a name from the request
        (folder / name).write_bytes(data)
        return name

    def _token(self, audit: dict[str, Any]) -> str:
        head = f"{audit['id']}.{audit['nonce']}"
        digest = hmac.new(self.ws.surveys.signing_key(), f"walk:{head}".encode(), hashlib.sha256).digest()
        return f"{head}.{base64.urlsafe_b64encode(digest[:16]).rstrip(b'=').decode()}"

    def _get(self, audit_id: int) -> dict[str, Any]:
        from touchlens.store import audits as store

        found = store.one(self.ws.meta_engine(), audit_id)
        if found is None:
            raise UnknownItem(f"no walkthrough {audit_id}; `touchlens walkthrough list` lists them")
        return found


def _journey(m: TouchpointMap, key: str) -> Journey:
    found = next((j for j in m.journeys if j.key == key), None)
    if found is None:
        raise UnknownItem(f"unknown journey '{key}'; journeys are: {', '.join(j.key for j in m.journeys) or 'none'}")
    return found


def _answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A step's fields, checked: met yes / no / (not sure), an emotion from −2 to 2, texts cut to length."""
    met = {"yes": True, "no": False}.get(str(answer.get("met") or "").lower())
    emotion = str(answer.get("emotion") or "").strip()
    if emotion and emotion.lstrip("+-") not in ("0", "1", "2"):
        raise BadOption("emotion: a whole number from -2 to 2")
    texts = {k: (str(answer.get(k) or "").strip()[:TEXT] or None) for k in ("annoyances", "think", "did", "feel")}
    return {"met": met, "emotion": int(emotion) if emotion else None, **texts}


def _public(step: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if step is None else {k: v for k, v in step.items() if k not in ("audit_id", "touchpoint")}


def _cell(step: dict[str, Any] | None) -> dict[str, Any]:
    """One walkthrough's answer at one touchpoint (walked False where it did not get there)."""
    if step is None:
        return {"walked": False, "met": None, "emotion": None, "annoyances": None}
    return {"walked": True, "met": step["met"], "emotion": step["emotion"], "annoyances": step["annoyances"]}


def _head(audit: dict[str, Any]) -> dict[str, Any]:
    return {"id": audit["id"], "auditor": audit["auditor"], "created_at": audit["created_at"].isoformat(),
            "finished_at": audit["finished_at"].isoformat() if audit["finished_at"] else None}  # fmt: skip


def _stages(
    m: TouchpointMap, journey: Journey, steps: builtins.list[dict[str, dict[str, Any]]]
) -> builtins.list[dict[str, Any]]:
    """Per stage of the journey: the designed emotion and each walkthrough's mean emotion there (None: none)."""
    stage_of = {t.key: t.stage for t in m.touchpoints}
    out = []
    for stage in journey.stages:
        audited = []
        for s in steps:
            found = [
                int(v["emotion"]) for k, v in s.items() if stage_of.get(k) == stage.key and v["emotion"] is not None
            ]
            audited.append(statistics.fmean(found) if found else None)
        out.append({"stage": stage.key, "name": stage.name or stage.key, "designed": stage.emotion, "audited": audited})
    return out
