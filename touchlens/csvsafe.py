"""Formula-safe CSV cells: the one rule every CSV touchlens writes follows (and the inventory reader undoes).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or carriage
return) as a formula, so a customer id, event name or touchpoint name planted by a write key or an editor
could run ``=HYPERLINK(…)`` or ``=WEBSERVICE(…)`` on the machine of whoever opens an export. As OWASP
recommends, such a text cell gets one leading single quote, which spreadsheets show as "this is text".

Numbers are left alone: a number column stays numeric, and a text cell that is a plain number (``-3``,
``+1.5e3``) is no formula either. Text that starts with quotes before one of those characters gets one more
quote, so `unescape_cell` gives back exactly what was escaped: ``'=x`` is written ``''=x`` and read ``'=x``.

Leaf module: imports nothing of ours, so the model (the inventory reader) may use it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# Written once as text so that Python's `re` and Arrow's RE2 apply the very same rule.
TRIGGERS = "=+\\-@\\t\\r"
_FORMULA = f"^'*[{TRIGGERS}]"  # quotes first too: see the module doc
_ESCAPED = f"^'+[{TRIGGERS}]"
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_formula, _escaped, _number = re.compile(_FORMULA), re.compile(_ESCAPED), re.compile(_NUMBER, re.ASCII)


def needs_quote(text: str) -> bool:
    """True for text a spreadsheet could read as a formula (a plain number is not one)."""
    return bool(_formula.match(text)) and not _number.fullmatch(text)


def safe_cell(value: Any) -> Any:
    """The value to write in a CSV cell: text that could be a formula gets a leading quote; anything else,
    numbers included, is returned as it is."""
    if isinstance(value, str) and needs_quote(value):
        return "'" + value
    return value


def unescape_cell(text: str) -> str:
    """Undo `safe_cell` on a cell read back: drop the one quote it put before a formula character."""
    return text[1:] if _escaped.match(text) else text


def safe_array(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`safe_cell` over an Arrow column at once (exports stream millions of rows); non-text columns unchanged."""
    # Imported here: the model imports this module and has no use for Arrow.
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values
    risky = pc.and_(
        pc.match_substring_regex(values, _FORMULA),
        pc.invert(pc.match_substring_regex(values, f"^{_NUMBER}$")),
    )
    quoted = pc.binary_join_element_wise(pa.scalar("'", values.type), values, pa.scalar("", values.type))
    return pc.if_else(risky, quoted, values)


def safe_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Every text column of a batch made formula-safe (`safe_array`)."""
    import pyarrow as pa

    return pa.RecordBatch.from_arrays([safe_array(c) for c in batch.columns], schema=batch.schema)
