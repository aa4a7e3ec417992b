"""Journeys as an XES event log (IEEE 1849), for process-mining tools such as ProM, Disco, Celonis or pm4py.

One trace per customer (`concept:name` = the customer id), one event per mapped event: `concept:name` = the
touchpoint, `time:timestamp` in ISO 8601 with its offset, `org:resource` = the channel, `lifecycle:transition`
= complete, plus the stage, the raw event name and the event id. Written while the batches stream in, so a log
of any size never sits in memory; a path ending in `.gz` is gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from touchlens.api import Workspace
from touchlens.report.export import journey_batches
from touchlens.report.markup import NOT_XML, attr

EXTENSIONS = (
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
)


def _string(key: str, value: object) -> str:
    return f'<string key="{key}" value={attr(value)}/>'


def header(log_name: str) -> str:
    """The log element's opening: extensions, globals, the activity classifier and the log's name."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">',
        *(f'  <extension name="{n}" prefix="{p}" uri="{u}"/>' for n, p, u in EXTENSIONS),
        '  <global scope="trace">' + _string("concept:name", "__INVALID__") + "</global>",
        '  <global scope="event">'
        + _string("concept:name", "__INVALID__")
        + '<date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>'
        + "</global>",
        '  <classifier name="Activity" keys="concept:name"/>',
        '  <classifier name="Resource" keys="org:resource"/>',
        "  " + _string("concept:name", log_name),
        "  " + _string("lifecycle:model", "standard"),
    ]
    return "\n".join(lines) + "\n"


# What XML attribute values must escape, in this order (& first): `markup.attr`, done per column.
_ESCAPES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
    ("\t", "&#9;"),
)


def escape_column(column: pa.Array) -> pa.Array:
    """Every string of a column escaped for a double-quoted XML attribute, in Arrow rather than row by row."""
    text = pc.replace_substring_regex(column.cast(pa.string()), NOT_XML.pattern, "\ufffd")
    for raw, escaped in _ESCAPES:
        text = pc.replace_substring(text, raw, escaped)
    return text


def _attribute(tag: str, key: str, values: pa.Array) -> pa.Array:
    """`<tag key="key" value="…"/>` per row; an empty string where the value is null (the attribute is left out)."""
    joined = pc.binary_join_element_wise(f'<{tag} key="{key}" value="', values, '"/>', "", null_handling="emit_null")
    return pc.fill_null(joined, "")


def events(batch: pa.RecordBatch) -> list[str]:
    """Each row of a journeys batch as one `<event>` element on its own line."""
    parts = [
        _attribute("string", "concept:name", escape_column(batch.column("touchpoint"))),
        _attribute("date", "time:timestamp", iso(batch.column("ts"))),
        _attribute("string", "org:resource", escape_column(batch.column("channel"))),
        pa.array([_string("lifecycle:transition", "complete")] * batch.num_rows, pa.string()),
        _attribute("string", "stage", escape_column(batch.column("stage"))),
        _attribute("string", "event", escape_column(batch.column("event"))),
        _attribute("string", "event_id", escape_column(batch.column("event_id"))),
    ]
    lines: list[str] = pc.binary_join_element_wise("    <event>", *parts, "</event>\n", "").to_pylist()
    return lines


def write_xes(ws: Workspace, out: TextIO, log_name: str | None = None) -> tuple[int, int]:
    """Stream the journeys into `out` as XES; returns (traces, events) written."""
    out.write(header(log_name or ws.map_or_empty().name))
    traces = count = 0
    current: str | None = None
    with journey_batches(ws) as reader:
        for batch in reader:
            chunk: list[str] = []
            for customer, line in zip(batch.column("customer_id").to_pylist(), events(batch), strict=True):
                if customer != current:
                    chunk.append("  </trace>\n" if current is not None else "")
                    chunk.append(f"  <trace>{_string('concept:name', customer)}\n")
                    current, traces = customer, traces + 1
                chunk.append(line)
            out.write("".join(chunk))
            count += batch.num_rows
    out.write("  </trace>\n</log>\n" if current is not None else "</log>\n")
    return traces, count


def iso(column: pa.Array) -> pa.Array:
    """Timestamps as ISO 8601 in UTC with microseconds and the offset (`2026-01-01T10:00:00.000000+00:00`)."""
    # The cast only relabels (the values are UTC already); Arrow's %z would write +0000, which xs:dateTime refuses.
    utc = column.cast(pa.timestamp("us", tz="UTC"))
    return pc.binary_join_element_wise(pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S"), "+00:00", "")


@contextmanager
def open_log(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A UTF-8 text file to write the log into, gzip-compressed when the name ends in `.gz`."""
    if os.fspath(path).endswith(".gz"):
        with gzip.open(path, "wt", compresslevel=6, encoding="utf-8", newline="\n") as zipped:
            yield zipped
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as plain:
            yield plain
