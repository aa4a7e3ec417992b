"""Templates and the filters they format numbers with: one place every page and the sign-in page render
through, imported by the routes (never importing them), so there is no cycle between the app and its pages."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from touchlens.analytics.stats import Estimate
from touchlens.web.security import state


def pct(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def estimate(e: Estimate | dict[str, Any] | None, metric: str) -> str:
    """`81% (65–91%)` for CSAT, `+12 (−3 to +27)` for NPS, `2.2 (1.6–2.8)` for CES; `—` when unmeasured."""
    d = e.to_dict() if isinstance(e, Estimate) else (e or {})
    value, low, high = d.get("value"), d.get("low"), d.get("high")
    if value is None:
        return "—"
    show: Callable[[float], str] = {
        "csat": lambda x: f"{x * 100:.0f}%",
        "nps": lambda x: f"{x:+.0f}",
    }.get(metric, lambda x: f"{x:.1f}")
    interval = f" ({show(low)} to {show(high)})" if low is not None and high is not None else ""
    return f"{show(value)}{interval}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def as_json(data: Any) -> Markup:
    """JSON for a `<script type="application/json">` element: `<`, `>`, `&` and `'` written as \\u escapes, so
    no text inside (a comment's `</script>`, say) can end the element; the page reads it with `JSON.parse`."""
    return htmlsafe_json_dumps(data, dumps=lambda obj, **kw: json.dumps(obj, default=str, **kw))


def pretty(data: Any) -> str:
    """Indented JSON as text (autoescaped where shown)."""
    return json.dumps(data, indent=1, default=str)


FILTERS: dict[str, Callable[..., str | Markup]] = {
    "pct": pct,
    "num": num,
    "est": estimate,
    "dur": duration,
    "json": as_json,
    "pretty": pretty,
}


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters.update(FILTERS)


def _stale_for(request: Request) -> str | None:
    """How old the page's oldest answer is, in words, when newer data is still being analysed (WebState)."""
    since = getattr(request.state, "stale_since", None)
    if since is None:
        return None
    seconds = max(0, int(time.time() - since))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def render(
    request: Request, template: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    """A page: the template with what every page shows (who is signed in, the CSRF token, the map's name)."""
    user = getattr(request.state, "user", None)
    base = {
        "user": user,
        "editor": user is not None and user.can("editor", "write"),
        "csrf": getattr(request.state, "csrf", ""),
        "map_name": state(request).ws.map_or_empty().name,
        "stale_for": _stale_for(request),
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code, headers=headers)
