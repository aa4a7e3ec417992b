"""Read and write the map file (YAML or JSON) with every error reported at once, each located by line.

Takes and returns text; reading files is the caller's job. Example::

    m = parse_map(open("touchlens.yaml").read(), "touchlens.yaml")
    text = dump_map(m, "json")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from touchlens.errors import MapError, Problem
from touchlens.model.checks import SECTIONS, Declared, Path, RefProblem, duplicate_keys, reference_problems
from touchlens.model.map import (
    SUCCESS_TAGS,
    Channel,
    Journey,
    Opportunity,
    Persona,
    ProactiveRule,
    SuccessStatement,
    Touchpoint,
    TouchpointMap,
)

Format = Literal["yaml", "json"]
Positions = dict[Path, int]

SECTION_MODELS: dict[str, type[BaseModel]] = {
    "channels": Channel,
    "personas": Persona,
    "journeys": Journey,
    "touchpoints": Touchpoint,
    "opportunities": Opportunity,
}


def detect_format(filename: str) -> Format:
    return "json" if filename.lower().endswith(".json") else "yaml"


def parse_map(text: str, filename: str = "<map>", fmt: Format | None = None) -> TouchpointMap:
    """Parse and validate a map; raises `MapError` listing every problem as ``FILE:LINE: path: message``."""
    fmt = fmt or detect_format(filename)
    data, positions, problems = _read_yaml(text) if fmt == "yaml" else _read_json(text)
    if data is None and not problems:
        problems = [RefProblem((), "the map is empty; it needs at least a name")]
    try:
        return _checked(data, filename, positions, list(problems))
    except MapError:
        if fmt == "yaml" or positions:
            raise
    # JSON lines are only worth learning once something is wrong; YAML's composer reads JSON too.
    _, positions, _ = _read_yaml(text)
    return _checked(data, filename, positions, problems)


def validate_map(data: Any, filename: str = "<map>", positions: Positions | None = None) -> TouchpointMap:
    """Validate already-parsed map data (dicts and lists); raises `MapError` with every problem."""
    return _checked(data, filename, positions or {}, [])


def _checked(data: Any, filename: str, positions: Positions, problems: list[RefProblem]) -> TouchpointMap:
    if data is not None and not isinstance(data, dict):
        problems.append(RefProblem((), "the map must be a mapping with at least 'name'"))
    elif isinstance(data, dict):
        data = {k: v for k, v in data.items() if not (k in (*SECTIONS, "outcomes") and v is None)}
        problems += _validate_items(data)
        _one_statement_positions(data, positions)
    if problems:
        problems.sort(key=lambda p: (line_of(p.path, positions) or 0, dotted(p.path)))
        raise MapError(locate(problems, positions, filename))
    return TouchpointMap.model_validate(data)


def _validate_items(data: dict[str, Any]) -> list[RefProblem]:
    """Validate each item on its own so one bad item hides no error in another."""
    head = {k: v for k, v in data.items() if k not in SECTIONS}
    problems = _errors(TouchpointMap, head, ())
    kept: dict[str, list[Any]] = {}
    index: dict[str, list[int]] = {}
    for section, model in SECTION_MODELS.items():
        raw = data.get(section, [])
        if not isinstance(raw, list):
            problems.append(RefProblem((section,), f"must be a list, not {type(raw).__name__}"))
            continue
        problems += duplicate_keys(raw, section)
        kept[section], index[section] = [], []
        for i, item in enumerate(raw):
            item_problems = _errors(model, item, (section, i))
            problems += item_problems
            if not item_problems:
                kept[section].append(item)
                index[section].append(i)
    # References of the items valid on their own, against every key declared (valid or not).
    partial = TouchpointMap.model_validate({"name": "-", **kept})
    declared = Declared.of_raw(data)
    problems += _reindex(reference_problems(partial, declared), index)
    problems += list(_proactive_problems(data.get("proactive"), declared))
    return problems + list(_success_problems(data.get("success"), declared))


def _errors(model: type[BaseModel], value: Any, prefix: Path) -> list[RefProblem]:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [{**err, "loc": _untagged(err["loc"])} for err in exc.errors()]
        return [RefProblem((*prefix, *err["loc"]), error_message(model, err)) for err in errors]
    return []


def _untagged(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """A location without the tag of the success statement's kind: ``success[0].metric``, not
    ``success[0].measured.metric``."""
    if len(loc) > 2 and loc[0] == "success" and loc[2] in SUCCESS_TAGS:
        return (*loc[:2], *loc[3:])
    return loc


def _success_problems(raw: Any, declared: Declared) -> Iterator[RefProblem]:
    """Scopes of success statements that name a stage, channel or touchpoint the map does not declare (a section
    nobody declared yet is not checked, as for other references)."""
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        if not isinstance(item, dict) or _errors(SuccessStatement, item, ()):
            continue
        scope = SuccessStatement.model_validate(item).scope
        named: list[tuple[str, int | None, str | None, frozenset[str]]]
        named = [("touchpoints", t, k, declared.touchpoints) for t, k in enumerate(scope.touchpoints or [])]
        named += [(kind, None, getattr(scope, kind), getattr(declared, f"{kind}s")) for kind in ("stage", "channel")]
        for kind, at, key, known in named:
            if key is not None and known and key not in known:
                path: Path = ("success", i, "scope", kind, *(() if at is None else (at,)))
                yield RefProblem(path, _unknown_key(kind.removesuffix("s"), key, known))


def _proactive_problems(raw: Any, declared: Declared) -> Iterator[RefProblem]:
    """Proactive rules that name a touchpoint, persona or channel the map does not declare, or repeat a key."""
    if not isinstance(raw, list):
        return
    yield from duplicate_keys(raw, "proactive")
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or _errors(ProactiveRule, item, ()):
            continue
        rule = ProactiveRule.model_validate(item)
        named: list[tuple[Path, str, str | None, frozenset[str]]] = [
            (("after", "touchpoint"), "touchpoint", rule.after.touchpoint, declared.touchpoints),
            (("unless", "touchpoint"), "touchpoint", rule.unless.touchpoint if rule.unless else None,
             declared.touchpoints),
            (("touchpoint",), "touchpoint", rule.touchpoint, declared.touchpoints),
            (("persona",), "persona", rule.persona, declared.personas),
            (("channel",), "channel", rule.channel, declared.channels),
        ]  # fmt: skip
        for path, kind, key, known in named:
            if key is not None and known and key not in known:
                yield RefProblem(("proactive", i, *path), _unknown_key(kind, key, known))


def _unknown_key(kind: str, key: str, known: frozenset[str]) -> str:
    names = sorted(known)
    return f"unknown {kind} '{key}'; {kind}s are: {', '.join(names[:25])}{', …' if len(names) > 25 else ''}"


def _one_statement_positions(data: dict[str, Any], positions: Positions) -> None:
    """A single success statement written as a mapping is checked as the list's first item: give the lines of
    its fields to that item's paths."""
    if not isinstance(data.get("success"), dict):
        return
    for path, line in list(positions.items()):
        if path[:1] == ("success",):
            positions[("success", 0, *path[1:])] = line


def error_message(model: type[BaseModel], err: Any) -> str:
    """A validation error in our words: what was wrong and what is allowed."""
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(model, err["loc"][:-1])
        fields = ", ".join(_field_names(owner)) if owner else ""
        return f"unknown field '{err['loc'][-1]}'" + (f"; fields are: {fields}" if fields else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "enum":
        return f"'{err['input']}' is not allowed; allowed values are: {err['ctx']['expected']}"
    if kind == "string_pattern_mismatch":
        allowed = "letters, digits, '_', '-' or '.', starting with a letter or digit"
        return f"'{err['input']}' is not a valid key: use {allowed}"
    return str(err["msg"]).removeprefix("Value error, ")


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: Iterable[str | int]) -> type[BaseModel] | None:
    """Follow a validation-error location through nested model fields to the model that holds it."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return None
        current = _inner_model(fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside Optional[...], list[...] or dict[str, ...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return getattr(annotation, "__origin__", None) and _inner_model(getattr(annotation, "__origin__", None))


def _reindex(problems: Iterable[RefProblem], index: dict[str, list[int]]) -> Iterator[RefProblem]:
    """Translate paths in the map of valid items back to indices in the file."""
    for p in problems:
        if len(p.path) >= 2 and isinstance(p.path[1], int) and str(p.path[0]) in index:
            yield RefProblem((p.path[0], index[str(p.path[0])][p.path[1]], *p.path[2:]), p.message)
        else:
            yield p


def locate(problems: Iterable[RefProblem], positions: Positions, filename: str) -> list[Problem]:
    return [Problem(p.message, dotted(p.path), filename, line_of(p.path, positions)) for p in problems]


def line_of(path: Path, positions: Positions) -> int | None:
    """The line of the deepest part of `path` that the file has (a missing field: its parent's line)."""
    for end in range(len(path), -1, -1):
        if path[:end] in positions:
            return positions[path[:end]]
    return None


def dotted(path: Path) -> str:
    """``("touchpoints", 3, "channel")`` → ``"touchpoints[3].channel"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- reading: data plus the line of every field and item --------------------------------------------


def _read_yaml(text: str) -> tuple[Any, Positions, list[RefProblem]]:
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.YAMLError as exc:
        return None, _mark_position(exc), [RefProblem((), f"not valid YAML: {_yaml_reason(exc)}")]
    except RecursionError:
        return None, {}, [RefProblem((), f"not valid YAML: {TOO_DEEP}")]
    if node is None:
        return None, {}, []
    positions: Positions = {(): node.start_mark.line + 1}
    problems: list[RefProblem] = []
    try:
        data = _construct(_Loader(""), node, (), positions, problems, _Budget(max_values(text)))
    except yaml.YAMLError as exc:
        return None, _mark_position(exc), [RefProblem((), f"not valid YAML: {_yaml_reason(exc)}")]
    except _TooManyValues as exc:
        return None, {(): node.start_mark.line + 1}, [RefProblem((), f"not valid YAML: {exc}")]
    except (RecursionError, ValueError) as exc:
        return None, positions, [RefProblem((), f"not valid YAML: {unreadable(exc)}")]
    return data, positions, problems


# A map is a few levels deep; nesting that exhausts Python's stack is no map, and nor is a 4300-digit number
# (Python refuses to convert one, as a guard against slow conversions).
TOO_DEEP = "nested too deeply"


def unreadable(exc: RecursionError | ValueError) -> str:
    """Why Python could not read a value that parses in principle (the first clause of its message only: the
    rest is advice for programmers)."""
    return TOO_DEEP if isinstance(exc, RecursionError) else f"a value that cannot be read: {str(exc).split(':')[0]}"


def _mark_position(exc: yaml.YAMLError) -> Positions:
    mark = getattr(exc, "problem_mark", None)
    return {(): mark.line + 1} if mark is not None else {}


def _yaml_reason(exc: yaml.YAMLError) -> str:
    return " ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)


# Aliases (`*name`) repeat a node without repeating its text, so a few hundred bytes of nested aliases ("billion
# laughs") expand to billions of values. A map's values are bounded by its text: at most one per two characters
# (`[1,2,3]`), plus some slack. Expanding beyond that is refused before the work and memory it would take.
VALUES_FLOOR = 100_000


def max_values(text: str) -> int:
    """How many values (scalars, lists, mappings) a YAML text of this size may expand to, aliases included."""
    return VALUES_FLOOR + len(text)


class _TooManyValues(Exception):
    """Alias expansion went past the budget (a YAML 'billion laughs' document)."""


@dataclass
class _Budget:
    limit: int
    spent: int = 0

    def spend(self) -> None:
        self.spent += 1
        if self.spent > self.limit:
            raise _TooManyValues(
                f"its aliases (*name) expand to more than {self.limit:,} values, far more than a map of this "
                "size holds (an alias bomb?); write the repeated parts out or use fewer aliases"
            )


# libyaml's composer when present: the same nodes and marks, several times faster.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(yaml.SafeLoader):
    """Safe YAML whose dates stay strings, so a map read and written back is unchanged."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)  # type: ignore[type-var]


def _construct(
    loader: _Loader, node: yaml.Node, path: Path, positions: Positions, problems: list[RefProblem], budget: _Budget
) -> Any:
    # Each alias is built again where it is used (the composer shares one node), so every value spends budget.
    budget.spend()
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, path, {}, problems, budget)
            if isinstance(key, list | dict):  # `? [a]` is legal YAML, but no field of a map is named by a list
                key = str(key)
            child = (*path, key if isinstance(key, str | int) else str(key))
            positions[child] = key_node.start_mark.line + 1
            if key in out:
                problems.append(RefProblem(child, f"duplicate field '{key}' (the later one would win)"))
            out[key] = _construct(loader, value_node, child, positions, problems, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            positions[(*path, i)] = item.start_mark.line + 1
            items.append(_construct(loader, item, (*path, i), positions, problems, budget))
        return items
    return loader.construct_object(node)


def _read_json(text: str) -> tuple[Any, Positions, list[RefProblem]]:
    problems: list[RefProblem] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                problems.append(RefProblem((key,), f"duplicate field '{key}' (the later one would win)"))
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return None, {(): exc.lineno}, [RefProblem((), f"not valid JSON: {exc.msg} (column {exc.colno})")]
    except (RecursionError, ValueError) as exc:
        return None, {(): 1}, [RefProblem((), f"not valid JSON: {unreadable(exc)}")]
    return data, {}, problems


# -- writing ------------------------------------------------------------------------------------------


def map_to_data(m: TouchpointMap) -> dict[str, Any]:
    """Plain data in the file's shape, leaving out empty and default fields."""
    data = m.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data.setdefault("name", m.name)
    return data


class _Dumper(yaml.SafeDumper):
    pass


_UNICODE_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML may single-quote Unicode line breaks, which a reader folds away; double quotes escape them.
    style = '"' if _UNICODE_BREAKS & set(value) else "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_map(m: TouchpointMap, fmt: Format = "yaml") -> str:
    """The map as YAML or JSON text; `parse_map` of the result gives back an equal map."""
    data = map_to_data(m)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
