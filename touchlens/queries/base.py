"""What every analysis query shares: options declared once (name, type, default, help, bounds), checked when
the query is made, parsed from text for the command line and the REST API, and the map the query runs against.

A query is a frozen dataclass. Its public fields are its options; they alone make its identity (equality and
hash), so the query itself is the cache key wherever the same analysis is asked for.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from touchlens.errors import BadOption, UnknownItem
from touchlens.model.durations import as_duration

if TYPE_CHECKING:  # the map's models build when a query resolves, not when the command line lists the queries
    from touchlens.model.map import TouchpointMap

KINDS = ("text", "int", "float", "bool", "duration", "keys", "choice")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Field:
    """One option of a query, as the CLI, the REST API and the page show it."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    flag: str = ""
    required: bool = False

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "help": self.help,
            "choices": list(self.choices),
            "required": self.required,
        }


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    kind: str = "",
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    flag: str = "",
) -> Any:
    """A query field that is an option: its help, its kind when the type does not say it, its bounds."""
    meta = {"help": help, "kind": kind, "choices": choices, "min": minimum, "max": maximum, "flag": flag}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_TYPE_KINDS = {"str": "text", "int": "int", "float": "float", "bool": "bool"}


def _kind(f: dataclasses.Field[Any], hint: Any) -> str:
    if f.metadata.get("kind"):
        return str(f.metadata["kind"])
    if f.metadata.get("choices"):
        return "choice"
    if hint == tuple[str, ...]:
        return "keys"
    args = [a for a in typing.get_args(hint) if a is not type(None)]  # X | None: X
    base = args[0] if args else hint
    return _TYPE_KINDS.get(getattr(base, "__name__", ""), "text")


@dataclass(frozen=True)
class Query:
    """Base of every analysis query: `fields()` to describe it, `parse()` to build it from text, `resolve(map)`
    to check it against the workspace's map before it runs."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    map_: TouchpointMap | None = dataclasses.field(default=None, kw_only=True, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields():
            check_value(f, getattr(self, f.name))

    @classmethod
    def fields(cls) -> list[Field]:
        hints = typing.get_type_hints(cls, localns={"TouchpointMap": Any})  # `map_` is no option: its type unused
        return [_field(f, hints[f.name]) for f in dataclasses.fields(cls) if f.name != "map_"]

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Self:
        """The query from text values (a query string, say); a `BadOption` names the field that is wrong."""
        known = {f.name: f for f in cls.fields()}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise BadOption(f"unknown option '{unknown[0]}'; options are: {', '.join(known)}", field=unknown[0])
        values = {name: parse_value(known[name], text) for name, text in params.items()}
        missing = [f.name for f in known.values() if f.required and f.name not in values]
        if missing:
            raise BadOption("this option is required", field=missing[0])
        return cls(**values)

    def resolve(self, m: TouchpointMap) -> Self:
        """This query, checked against the map and carrying it to the run function."""
        resolved = dataclasses.replace(self, map_=m)
        resolved.check(m)
        return resolved

    def check(self, m: TouchpointMap) -> None:
        """What the map must hold for this query (a subclass names what is missing)."""

    @property
    def the_map(self) -> TouchpointMap:
        if self.map_ is None:
            raise RuntimeError(f"{type(self).__name__} was run without resolve(map)")
        return self.map_

    def known_touchpoints(self, *keys: str, field: str = "touchpoint") -> None:
        known = {t.key for t in self.the_map.touchpoints}
        for key in keys:
            if key not in known:
                raise UnknownItem(
                    f"unknown touchpoint '{key}'; touchpoints are: {', '.join(sorted(known))}", field=field
                )


def _field(f: dataclasses.Field[Any], hint: Any) -> Field:
    meta = f.metadata
    required = f.default is dataclasses.MISSING
    default = None if required else f.default
    return Field(
        f.name,
        _kind(f, hint),
        default,
        str(meta.get("help", "")),
        tuple(meta.get("choices", ())),
        meta.get("min"),
        meta.get("max"),
        str(meta.get("flag", "")),
        required,
    )


def parse_value(f: Field, text: str) -> Any:
    """A field's value from text: numbers, yes/no, comma-separated keys; the rest stays text."""
    try:
        if f.kind == "int":
            return int(text)
        if f.kind == "float":
            return float(text)
    except ValueError:
        raise BadOption(f"'{text[:40]}' is not a number", field=f.name) from None
    if f.kind == "bool":
        if text.lower() not in (*_TRUE, *_FALSE):
            raise BadOption(f"'{text[:40]}' is not yes or no", field=f.name)
        return text.lower() in _TRUE
    if f.kind == "keys":
        return keys(text)
    return text


def keys(text: str) -> tuple[str, ...]:
    """Comma-separated keys (``a, b,c``), blanks dropped: the one parser of step and touchpoint lists."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def check_value(f: Field, value: Any) -> None:
    """Bounds, choices and durations, checked once when a query is made."""
    if value is None:
        return
    if f.choices and value not in f.choices:
        raise UnknownItem(f"unknown {f.name} '{value}'; choose {', '.join(f.choices)}", field=f.name)
    if f.kind == "duration":
        as_duration(value, f.name)
    if f.minimum is not None and value < f.minimum:
        raise BadOption(f"{value} is less than the smallest allowed, {f.minimum:g}", field=f.name)
    if f.maximum is not None and value > f.maximum:
        raise BadOption(f"{value} is more than the largest allowed, {f.maximum:g}", field=f.name)
