"""Signed survey links: who is asked about which touchpoint, until when, in a token nobody can forge or alter.

A token is `v1.<payload>.<signature>`: the payload is compact JSON in URL-safe base64 (touchpoint, the customer
as the store holds them, the metric, when it was made, the expiry, a random nonce), the signature the first 16
bytes of HMAC-SHA256 over the payload with the workspace's survey secret. The nonce is the link's identity: an
answer is stored under it, so a link answers once and a replay finds it taken. A link without a customer is an
open link (a QR code on a poster): each answer gets an anonymous customer of its own.

Pure: no clock (callers pass `now`), no store; `surveys.py` at the edge does the I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from touchlens.errors import TouchlensError

VERSION = "v1"
SIGNATURE_BYTES = 16  # 128 bits: forging one takes 2^128 tries; the link stays short enough for an SMS
NONCE_BYTES = 12
METRICS: dict[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
Metric = Literal["csat", "nps", "ces"]


class LinkError(TouchlensError):
    """A survey link that cannot be answered; `reason` says why, for the page the customer sees."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # invalid | expired | answered | erased | closed


@dataclass(frozen=True)
class Link:
    """What a valid token says."""

    touchpoint: str
    customer_id: str | None  # as the store holds it (the pseudonym when pseudonymisation is on)
    metric: Metric
    issued: int  # Unix milliseconds: an erasure after this voids the link
    expires: int  # Unix seconds
    nonce: str

    @property
    def scale(self) -> tuple[int, int]:
        return METRICS[self.metric]

    def response_id(self) -> str:
        """The feedback row's id for this link's answer: one per link (an open link's answers add their own)."""
        return f"link:{self.nonce}"


def new_link(touchpoint: str, customer_id: str | None, metric: Metric, now: datetime, expires: datetime) -> Link:
    if metric not in METRICS:
        raise LinkError("invalid", f"unknown survey metric '{metric}'; metrics are: {', '.join(METRICS)}")
    nonce = _b64(secrets.token_bytes(NONCE_BYTES))
    return Link(touchpoint, customer_id, metric, int(now.timestamp() * 1000), int(expires.timestamp()), nonce)


def sign(link: Link, secret: bytes) -> str:
    payload: dict[str, str | int] = {
        "t": link.touchpoint, "m": link.metric, "i": link.issued, "e": link.expires, "n": link.nonce,
    }  # fmt: skip
    if link.customer_id is not None:
        payload["c"] = link.customer_id
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{VERSION}.{body}.{_signature(body, secret)}"


def verify(token: str, secret: bytes, now: datetime) -> Link:
    """The link a token carries, if its signature holds and it has not expired; else `LinkError`."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise LinkError("invalid", "this is not a survey link touchlens made")
    _, body, signature = parts
    if not hmac.compare_digest(signature, _signature(body, secret)):
        raise LinkError("invalid", "this survey link was altered or was not made here")
    link = _parse(body)
    if now.timestamp() >= link.expires:
        raise LinkError("expired", "this survey link has expired")
    return link


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _signature(body: str, secret: bytes) -> str:
    digest = hmac.new(secret, f"touchlens-survey:{body}".encode(), hashlib.sha256).digest()
    return _b64(digest[:SIGNATURE_BYTES])


def _parse(body: str) -> Link:
    # Signed by us, so well-formed unless the secret leaked; still checked, as every input is.
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        link = Link(str(data["t"]), data.get("c"), data["m"], int(data["i"]), int(data["e"]), str(data["n"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise LinkError("invalid", "this survey link is damaged") from exc
    if link.metric not in METRICS or not (link.customer_id is None or isinstance(link.customer_id, str)):
        raise LinkError("invalid", "this survey link is damaged")
    return link


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
