"""Untrusted text made safe for XML, SVG and HTML: escaped, and stripped of characters XML cannot hold."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

# Characters XML 1.0 forbids even escaped; an untrusted name holding one would make the whole file unreadable.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ATTR_ENTITIES = {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _plain(value: object) -> str:
    return NOT_XML.sub("\ufffd", "" if value is None else str(value))


def text(value: object) -> str:
    """A value as XML character data: &, < and > escaped."""
    return escape(_plain(value))


def attr(value: object) -> str:
    """A value as a quoted XML attribute, quotes, line breaks and tabs included."""
    return quoteattr(_plain(value), _ATTR_ENTITIES)


def fit(value: object, limit: int) -> str:
    """The text cut to `limit` characters with an ellipsis (before escaping, so no entity is cut in half)."""
    plain = " ".join(_plain(value).split())
    return plain if len(plain) <= limit else plain[: max(limit - 1, 0)].rstrip() + "…"
