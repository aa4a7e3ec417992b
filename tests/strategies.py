"""Hypothesis strategies for valid touchpoint maps: every reference resolves, no two match rules overlap."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

keys = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
texts = st.text(max_size=40)
maybe_text = st.none() | texts
short_lists = st.lists(st.text(max_size=20), max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
scalars = st.text(max_size=12) | st.integers(-1000, 1000) | st.booleans()


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


@st.composite
def conditions(draw: st.DrawFn, unique: str | None = None) -> Any:
    """A condition; with `unique`, one only values starting with it can meet (so rules never overlap)."""
    if unique is not None:
        return draw(
            st.sampled_from([unique, {"equals": unique}, {"in": [unique, unique + "_b"]}, {"prefix": unique + "."}])
        )
    op = draw(st.sampled_from(["equals", "in", "prefix", "exists"]))
    if op == "equals":
        return draw(scalars)
    if op == "in":
        return {"in": draw(st.lists(scalars, min_size=1, max_size=3))}
    if op == "prefix":
        return {"prefix": draw(st.text(max_size=8))}
    return {"exists": draw(st.booleans())}


@st.composite
def maps(draw: st.DrawFn) -> dict[str, Any]:
    """Raw map data (as a person would write it) that must validate."""
    ch_keys = draw(st.lists(keys, unique=True, max_size=4))
    persona_keys = draw(st.lists(keys, unique=True, max_size=3))
    stage_keys = draw(st.lists(keys, unique=True, max_size=5))
    journeys = draw(st.lists(_journey(persona_keys, stage_keys), max_size=3, unique_by=lambda j: j["key"]))
    declared_stages = [s["key"] for j in journeys for s in j.get("stages", [])]
    tp_keys = draw(st.lists(keys, unique=True, max_size=6))
    return _drop_none(
        {
            "name": draw(st.text(min_size=1, max_size=30)),
            "description": draw(maybe_text),
            "mission": draw(maybe_text),
            "success": draw(st.none() | texts | st.lists(texts, max_size=3)),
            "channels": [draw(_channel(k, declared_stages)) for k in ch_keys],
            "personas": [draw(_persona(k)) for k in persona_keys],
            "journeys": journeys,
            "touchpoints": [
                draw(_touchpoint(k, i, declared_stages, ch_keys, persona_keys)) for i, k in enumerate(tp_keys)
            ],
            "outcomes": draw(_outcomes()),
            "opportunities": draw(st.lists(_opportunity(tp_keys), max_size=3, unique_by=lambda o: o["key"])),
        }
    )


@st.composite
def _channel(draw: st.DrawFn, key: str, stages: list[str]) -> dict[str, Any]:
    return _drop_none(
        {
            "key": key,
            "name": draw(maybe_text),
            "kind": draw(st.none() | st.sampled_from(["digital", "offline", "human"])),
            "description": draw(maybe_text),
            "owner": draw(maybe_text),
            "strategy": draw(maybe_text),
            "stages": draw(st.lists(st.sampled_from(stages), max_size=2)) if stages else None,
        }
    )


@st.composite
def _persona(draw: st.DrawFn, key: str) -> dict[str, Any]:
    segment = draw(st.lists(conditions(), max_size=2))
    return _drop_none(
        {
            "key": key,
            "name": draw(maybe_text),
            "description": draw(maybe_text),
            "goals": draw(short_lists),
            "frustrations": draw(short_lists),
            "segment": [{"property": draw(keys), **(c if isinstance(c, dict) else {"equals": c})} for c in segment],
        }
    )


@st.composite
def _journey(draw: st.DrawFn, personas: list[str], stages: list[str]) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(stages), unique=True, max_size=4)) if stages else []
    return _drop_none(
        {
            "key": draw(keys),
            "name": draw(maybe_text),
            "persona": draw(st.sampled_from(personas)) if personas else None,
            "description": draw(maybe_text),
            "stages": [
                _drop_none(
                    {
                        "key": s,
                        "name": draw(maybe_text),
                        "goal": draw(maybe_text),
                        "tasks": draw(short_lists),
                        "questions": draw(short_lists),
                        "emotion": draw(st.none() | st.integers(-2, 2)),
                        "weaknesses": draw(short_lists),
                        "opportunities": draw(short_lists),
                    }
                )
                for s in chosen
            ],
        }
    )


@st.composite
def _touchpoint(
    draw: st.DrawFn, key: str, index: int, stages: list[str], channels: list[str], personas: list[str]
) -> dict[str, Any]:
    match = None
    if draw(st.booleans()):
        where = draw(st.dictionaries(keys, conditions(), max_size=2))
        match = {"event": draw(conditions(unique=f"ev{index}")), "where": where}
        if channels and draw(st.booleans()):
            match["channel"] = draw(st.sampled_from(channels))
    targets = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "csat": st.floats(0, 1),
                "nps": st.floats(-100, 100),
                "ces": st.floats(1, 7),
                "sentiment": st.floats(-1, 1),
                "conversion": st.floats(0, 1),
                "drop_off": st.floats(0, 1),
                "repeat_rate": st.floats(0, 1),
            },
        )
    )
    desired = draw(st.fixed_dictionaries({}, optional={"think": texts, "do": texts, "feel": texts}))
    return _drop_none(
        {
            "key": key,
            "name": draw(maybe_text),
            "description": draw(maybe_text),
            "stage": draw(st.sampled_from(stages)) if stages else draw(st.none() | keys),
            "channel": draw(st.sampled_from(channels)) if channels else draw(st.none() | keys),
            "phase": draw(st.none() | st.sampled_from(["pre-purchase", "purchase", "post-purchase"])),
            "initiative": draw(st.none() | st.sampled_from(["proactive", "reactive"])),
            "directness": draw(st.none() | st.sampled_from(["direct", "indirect"])),
            "owner": draw(maybe_text),
            "personas": draw(st.lists(st.sampled_from(personas), unique=True, max_size=2)) if personas else None,
            "expectations": draw(maybe_text),
            "annoyances": draw(maybe_text),
            "desired": desired,
            "script": draw(maybe_text),
            "match": match,
            "targets": targets,
        }
    )


@st.composite
def _outcomes(draw: st.DrawFn) -> dict[str, Any]:
    event = {"event": draw(conditions()), "where": draw(st.dictionaries(keys, conditions(), max_size=1))}
    return _drop_none(
        {
            "conversion": draw(st.none() | st.just({**event, "value": "revenue"})),
            "churn": draw(st.none() | st.just({"inactive_days": 90}) | st.just(event)),
            "repeat": draw(st.none() | st.just({**event, "within_days": 180})),
        }
    )


@st.composite
def _opportunity(draw: st.DrawFn, touchpoints: list[str]) -> dict[str, Any]:
    return _drop_none(
        {
            "key": draw(keys),
            "title": draw(st.text(min_size=1, max_size=30)),
            "description": draw(maybe_text),
            "touchpoints": draw(st.lists(st.sampled_from(touchpoints), max_size=2)) if touchpoints else None,
            "horizon": draw(st.none() | st.sampled_from(["now", "next", "later"])),
            "impact": draw(st.none() | st.floats(0, 5)),
            "effort": draw(st.none() | st.floats(0.1, 5)),
            "confidence": draw(st.none() | st.floats(0, 1)),
            "status": draw(st.sampled_from(["idea", "planned", "in_progress", "done", "dropped"])),
            "owner": draw(maybe_text),
            "source": draw(st.sampled_from(["person", "suggested"])),
            "evidence": draw(st.dictionaries(keys, json_values, max_size=3)),
        }
    )


# -- hostile input: strings, JSON and byte-level damage that every reader and the map loader must survive ------

HOSTILE_STRINGS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '"><svg onload="window.__pwned=1">',
    "javascript:window.__pwned=1",
    "'; DROP TABLE events; --",
    '"; DROP TABLE feedback; --',
    "../../etc/passwd",
    "{{7*7}} ${7*7} %s %n",
    "\u202eevil\u202c",
    "zero\u200bwidth\u200d\ufeff",
    "bell\x07back\x08esc\x1b[31mnul\x00end",
    "line\r\nbreak\u2028sep\u2029",
    "ｆｕｌｌｗｉｄｔｈ ﷽ 𝕏 😀",
    "x" * 10_000,
)
hostile_text = st.sampled_from(HOSTILE_STRINGS) | st.text(max_size=30)
# JSON numbers Python's json module parses but little else expects: huge ints, NaN and infinities.
odd_numbers = st.sampled_from([10**30, -(2**63), 2**64, 1e308, float("nan"), float("inf"), -0.0, 1e-320])
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | odd_numbers | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text | keys, inner, max_size=4),
    max_leaves=12,
)
# A value of the wrong type for a field that wants text or a time.
wrong_typed = (
    st.none()
    | st.booleans()
    | st.integers()
    | odd_numbers
    | st.just("")
    | st.just("   ")
    | hostile_text
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(keys, st.integers(), max_size=2)
)
BOM = b"\xef\xbb\xbf"


def deep_json(depth: int, opener: str = "[") -> str:
    """A JSON value nested `depth` deep (Python's parser gives up near 1000)."""
    closer = "]" if opener == "[" else "}"
    inner = '{"a":' if opener == "{" else "["
    return inner * depth + "1" + closer * depth


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with up to three kinds of damage: bytes cut, flipped, inserted (NUL, BOM, junk), re-encoded."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "drop", "encode", "newlines", "huge"]))
        at = draw(st.integers(0, len(data)))
        if kind == "cut":
            data = data[:at]
        elif kind == "flip" and data:
            i = min(at, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
        elif kind == "insert":
            junk = draw(st.sampled_from([b"\x00", BOM, b"\xff\xfe", b"\xc3", b'"', b",", b"\n", b"{", b"]"]))
            data = data[:at] + junk + data[at:]
        elif kind == "drop":
            data = data[:at] + data[at + draw(st.integers(1, 20)) :]
        elif kind == "encode":
            codec = draw(st.sampled_from(["utf-16", "utf-16-le", "latin-1", "cp1252", "utf-32"]))
            data = data.decode("utf-8", "replace").encode(codec, "replace")
        elif kind == "newlines":
            data = data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n", b"\x85"])))
        elif kind == "huge":
            data = data[:at] + b"y" * 200_000 + data[at:]
    return data
