"""Findings in words for people: evidence as rows of names and units, what is at stake, effects — never JSON,
never scientific notation. Shared by the web pages and the HTML report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from touchlens.insights.items import Stake
from touchlens.insights.words import Names, days, percent

MINUS = "\u2212"
METRICS = {"csat": "CSAT", "nps": "NPS", "ces": "CES"}
# Evidence keys read better under another name; the rest lose their underscores.
LABELS = {
    "p_value": "p-value", "share_of_customers": "share of customers", "within_seconds": "within",
    "median_seconds": "median wait", "drop_off": "journeys that do not convert ending here", "value": "score",
    "reference": "compared against", "n": "answers", "from_stage": "from stage", "to_stage": "to stage",
    "proactive_in_stages": "proactive touchpoints in these stages", "change": "change recorded",
}  # fmt: skip
SHARES = {"share_of_customers", "drop_off", "conversion", "negative_share", "share", "rate"}
# Values on a metric's own scale (a score, its reference) and differences between two of them (in points).
LEVELS, GAPS = {"value", "reference"}, {"gap", "difference", "low", "high"}


def signed(value: float, digits: int = 0) -> str:
    """`+12`, `−54`, `0`: a difference with its sign, a real minus sign."""
    text = f"{abs(value):,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return text
    return f"{MINUS if value < 0 else '+'}{text}"


def plain(value: float) -> str:
    """A number without scientific notation: whole numbers with separators, others to 2–3 decimals."""
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    text = f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    text = text.rstrip("0").rstrip(".")
    return "about 0" if text in ("0", "-0") else text.replace("-", MINUS)


def p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _on_scale(metric: str, key: str, value: float) -> str:
    """A metric's level (CSAT 12%, NPS +18, CES 5.2) or a difference of two levels in points."""
    factor = 100.0 if metric == "csat" else 1.0
    digits = 1 if metric == "ces" else 0
    if key in GAPS:
        return f"{signed(value * factor, digits)} points"
    if metric == "csat":
        return f"{value * 100:.0f}%"
    return signed(value) if metric == "nps" else f"{value:.1f}"


def _number(key: str, value: float, metric: str | None) -> str:
    if key == "p_value":
        return p_text(value)
    if key.endswith("seconds"):
        return days(value)
    if metric in METRICS and key in LEVELS | GAPS:
        return _on_scale(metric, key, value)
    if _share(key, value):
        return f"{value * 100:.0f}%"
    return plain(value)


def _share(key: str, value: float) -> bool:
    """Whether a value is a share of something by its name (`share_of_customers`, `escalation_rate`, a card's
    `csat_with_bot`): the measured ones by name alone, the hand-written ones only between 0 and 1."""
    words = set(key.split("_"))
    return key in SHARES or key.startswith("share") or (bool(words & {"share", "rate", "csat"}) and 0 <= value <= 1)


def _scalar(key: str, value: Any, metric: str | None, names: dict[str, str]) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return _number(key, float(value), metric)
    text = str(value)
    return METRICS.get(text, names.get(text, text))


def _label(key: str, first: bool = True) -> str:
    """`share_of_customers` → `Share of customers`; `csat_with_bot` → `CSAT with bot`; lower case inside a row
    name (`Switches · customers`)."""
    text = LABELS.get(key) or " ".join(METRICS.get(w, w) for w in key.split("_"))
    return text if text.startswith("p-") or not first else text[:1].upper() + text[1:]


def _rows(evidence: dict[str, Any], names: dict[str, str], prefix: str, metric: str | None) -> list[tuple[str, str]]:
    """Evidence flattened: a nested dict gives rows of its own (`Switches · customers`), a list one joined row;
    a `low`/`high` pair becomes one 95% interval row."""
    metric = evidence.get("metric") if isinstance(evidence.get("metric"), str) else metric
    out: list[tuple[str, str]] = []
    for key, value in evidence.items():
        label = prefix + _label(key, not prefix)
        if value is None or (key == "high" and "low" in evidence):
            continue
        if key == "proactive_rule" and isinstance(value, dict):
            out.append(("Suggested proactive rule", _rule_text(value, names)))
        elif isinstance(value, dict):
            out += _rows(value, names, label + " · ", key if key in METRICS else metric)
        elif isinstance(value, list | tuple):
            out.append((label, _joined(key, value, metric, names)))
        elif key == "low" and isinstance(evidence.get("high"), int | float):
            interval = f"{_scalar(key, value, metric, names)} to {_scalar('high', evidence['high'], metric, names)}"
            out.append((prefix + "95% interval", interval.replace(" points to", " to")))
        else:
            out.append((label, _scalar(key, value, metric, names)))
    return out


def _rule_text(rule: dict[str, Any], names: dict[str, str]) -> str:
    """A prefilled proactive rule in one sentence, with its key for the map's `proactive:`."""

    def touch(when: dict[str, Any]) -> str:
        key = when.get("touchpoint")
        return names.get(key, key) if key else f"event {when.get('event')}"

    unless = f", unless {touch(rule['unless'])} came first" if rule.get("unless") else ""
    return (f"{rule.get('name') or rule['key']}: {rule['wait']} after {touch(rule['after'])}{unless}, "
            f"{rule.get('holdout', 0) * 100:.0f}% held out to measure it (key {rule['key']})")  # fmt: skip


def _joined(key: str, values: list[Any] | tuple[Any, ...], metric: str | None, names: dict[str, str]) -> str:
    parts = []
    for v in values:
        if isinstance(v, dict):
            parts.append(", ".join(f"{k.replace('_', ' ')} {_scalar(k, x, metric, names)}" for k, x in v.items()))
        else:
            parts.append(_scalar(key, v, metric, names))
    if key == "cycle":
        return " → ".join(parts)
    return ("; " if any("," in p for p in parts) else ", ").join(parts)


def evidence_items(evidence: dict[str, Any], names: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Evidence as (name, text) pairs for a definition list: names for keys (touchpoints and stages by their map
    names), shares as %, seconds as minutes, hours or days, p-values as `0.003` or `< 0.001`, a metric's values in
    its unit, nested values flattened into rows of their own; never JSON, never scientific notation."""
    return _rows(evidence, names or {}, "", None)


@dataclass
class FindingView:
    """A finding as the pages show it: its sentence, touchpoints by name, every number already in words."""

    kind: str
    section: str
    title: str
    summary: str
    touchpoints: list[tuple[str, str]]  # (key, name)
    stage: str | None
    reach: int
    stake: str | None
    effects: list[tuple[str, str, str]]  # (outcome, rates with and without, difference with its interval)
    confidence: float | None
    evidence: list[tuple[str, str]]


def stake_text(stake: Any) -> str | None:
    """`about 83 conversions lost a year (73–91)`; None when nothing is at stake (or a hand-written card's
    evidence holds something else)."""
    if not isinstance(stake, dict):
        return None
    try:
        return "about " + Stake(**stake).text()
    except (TypeError, ValueError):
        return None


def _effect(e: Any, names: Names) -> tuple[str, str, str] | None:
    """`Conversion` · `29% with it, 83% without` · `−54 points (95% interval −61 to −48)`."""
    numbers = ("rate_with", "rate_without", "low", "high")
    if not isinstance(e, dict) or not all(isinstance(e.get(k), int | float) for k in numbers):
        return None
    difference = e["rate_with"] - e["rate_without"]
    rates = f"{percent(e['rate_with'])} with it, {percent(e['rate_without'])} without"
    change = f"{signed(difference * 100)} points (95% interval {signed(e['low'] * 100)} to {signed(e['high'] * 100)})"
    outcome = names.rate(str(e.get("outcome")))
    return outcome[:1].upper() + outcome[1:], rates, change


def key_names(names: Names) -> dict[str, str]:
    return {**names.stages, **names.touchpoints}


def finding_view(d: dict[str, Any], names: Names) -> FindingView:
    """A finding's JSON (`Insight.to_dict()`, or one a roadmap card carries) in words."""
    keys = [t for t in d.get("touchpoints") or [] if isinstance(t, str)]
    stage, confidence, evidence = d.get("stage"), d.get("confidence"), d.get("evidence")
    return FindingView(
        kind=str(d.get("kind") or "finding").replace("_", " "),
        section=str(d.get("section") or ""),
        title=str(d.get("title") or ""),
        summary=str(d.get("summary") or d.get("title") or ""),
        touchpoints=[(k, names.touchpoint(k)) for k in keys],
        stage=names.stage(stage) if isinstance(stage, str) else None,
        reach=d["reach"] if isinstance(d.get("reach"), int) else 0,
        stake=stake_text(d.get("at_stake")),
        effects=[row for e in d.get("effects") or [] if (row := _effect(e, names))],
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        evidence=evidence_items(evidence if isinstance(evidence, dict) else {}, key_names(names)),
    )
