"""Small horizontal bar charts as inline SVG (a few kilobytes, no library, no script), with optional intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from touchlens.report.markup import attr, fit, text

LABEL_W, BAR_W, VALUE_W, ROW_H = 215, 260, 110, 20


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value and (optionally) the interval around it; a None value draws no bar."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


def bar_chart(
    title: str, bars: Sequence[Bar], scale: float | None = None, fmt: Callable[[float], str] = "{:,.0f}".format
) -> str:
    """An SVG of `bars`, longest possible bar = `scale` (default: the largest value or interval end)."""
    ends = [v for b in bars for v in (b.value, b.high) if v is not None]
    top = scale if scale is not None else max([*ends, 0.0])
    width, height = LABEL_W + BAR_W + VALUE_W, ROW_H * len(bars) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={attr(title)}>',
        f"<title>{text(title)}</title>",
    ]
    for i, b in enumerate(bars):
        y = 4 + i * ROW_H
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + 13}" text-anchor="end">{text(fit(b.label, 30))}</text>')
        parts.append(f'<rect x="{LABEL_W}" y="{y + 3}" width="{BAR_W}" height="{ROW_H - 6}" fill="#f0f2f5"/>')
        if b.value is None:
            parts.append(f'<text x="{LABEL_W + 6}" y="{y + 13}" fill="#888888">no data</text>')
            continue
        parts.append(
            f'<rect class="bar" x="{LABEL_W}" y="{y + 3}" width="{_w(b.value, top):.1f}" height="{ROW_H - 6}" '
            'fill="#4a7fb5"/>'
        )
        if b.low is not None and b.high is not None:
            x1, x2, mid = LABEL_W + _w(b.low, top), LABEL_W + _w(b.high, top), y + ROW_H / 2
            parts.append(
                f'<line x1="{x1:.1f}" y1="{mid}" x2="{x2:.1f}" y2="{mid}" stroke="#1d2b3a" stroke-width="1.5"/>'
            )
        parts.append(f'<text x="{LABEL_W + BAR_W + 6}" y="{y + 13}">{text(fmt(b.value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _w(value: float, top: float) -> float:
    return 0.0 if top <= 0 else max(0.0, min(1.0, value / top)) * BAR_W
