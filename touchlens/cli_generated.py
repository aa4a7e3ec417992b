"""`touchlens analyze NAME` for every analysis of the registry: options from the query's fields, output three ways.

A command here is built, not written: its options are the query's fields (help, bounds and flag from the field),
it runs `ws.run(query)`, and prints the result as a table (a renderer from `TABLES`, else the result's rows), as
JSON (`--json`, the documented shape) or as CSV (`--csv`, the rows).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import RenderableType

from touchlens import console as ui
from touchlens.cli_common import CsvOpt, JsonOpt, show
from touchlens.cli_common import ws_of as _ws
from touchlens.queries.base import Field, Query, parse_value
from touchlens.registry import ANALYSES, Analysis, as_dict

# Tables drawn for a result's documented shape; an analysis missing here gets a table of its rows.
TABLES: dict[str, Callable[[dict[str, Any]], RenderableType]] = {
    "flows": ui.flows_table,
    "variants": ui.variants_table,
    "paths": ui.paths_table,
    "scorecard": ui.scorecard_table,
    "funnel": ui.funnel_table,
}
# Queries whose result has no table (another shape): printed as JSON whatever the flags say.
JSON_ONLY: dict[str, Callable[[Any], bool]] = {
    "sankey": lambda q: True,
    "flows": lambda q: bool(q.by_conversion),
    "scorecard": lambda q: q.breakdown is not None,
}
_PY = {"int": int, "float": float, "bool": bool}


def _parameter(f: Field) -> inspect.Parameter:
    py: Any = _PY.get(f.kind, str)
    decls = (f.cli_flag,) if f.kind == "bool" or f.flag else ()
    opt = typer.Option(*decls, help=f.help, min=f.minimum, max=f.maximum)
    annotation = Annotated[py if f.required or f.default is not None else py | None, opt]  # type: ignore[valid-type]
    default = inspect.Parameter.empty if f.required else _cli_default(f)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _cli_default(f: Field) -> Any:
    return ",".join(f.default) if isinstance(f.default, tuple) else f.default


def _query(spec: Analysis, values: dict[str, Any]) -> Query:
    kinds = {f.name: f for f in spec.fields()}
    typed = {k: parse_value(kinds[k], v) if kinds[k].kind == "keys" else v for k, v in values.items()}
    return spec.query(**typed)


def _rows_table(spec: Analysis) -> Callable[[dict[str, Any]], RenderableType]:
    def table(result: dict[str, Any]) -> RenderableType:
        rows = spec.rows(result)
        return ui.records_table(spec.summary, rows, list(rows[0]) if rows else [])

    return table


def command_for(spec: Analysis) -> Callable[..., None]:
    """The Typer command of one analysis."""

    def command(ctx: typer.Context, as_json: bool = False, as_csv: bool = False, **values: Any) -> None:
        query = _query(spec, values)
        result = as_dict(_ws(ctx).run(query))
        json_only = JSON_ONLY.get(spec.name, lambda q: False)(query)
        show(
            result, as_json or (json_only and not as_csv), as_csv, spec.rows, TABLES.get(spec.name) or _rows_table(spec)
        )

    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *(_parameter(f) for f in spec.fields()),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
        inspect.Parameter("as_csv", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=CsvOpt),
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = spec.summary
    command.__name__ = f"analyze_{spec.name}"
    return command


def add_analyses(app: typer.Typer, written: tuple[str, ...] = ()) -> None:
    """One command per registry entry, in registry order, but those `written` by hand (an analysis whose command
    does more than show it, such as `funnel --dropped-at`)."""
    for spec in ANALYSES.values():
        if spec.name not in written:
            app.command(spec.name)(command_for(spec))
