"""The touchpoint map: channels, personas, journeys, stages, touchpoints, outcomes and opportunities.

Pure data with validation of each item's own fields; references between items are checked in
`touchlens.model.checks`. Example::

    TouchpointMap(name="Acme", touchpoints=[Touchpoint(key="receipt", channel="email")])
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from touchlens.model.phases import Phase as Phase  # re-exported: the map's own enum

Key = Annotated[
    str,
    Field(
        min_length=1,
        max_length=120,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="An identifier: letters, digits, '_', '-' or '.', starting with a letter or digit.",
    ),
]
Scalar = str | int | float | bool
Text = Annotated[str, Field(max_length=20_000)]
# No real event property name comes near this; the engines refuse longer ones, so the map does too.
MAX_PROPERTY_NAME = 1000


# Validation context of a map read back from the store: it was valid when saved, and an older version accepted
# more property names than this one, so a stored map still loads (a rule it cannot run fails at ingest, naming
# it) rather than making every command that reads the map fail.
STORED = {"stored": True}


def _property_name(name: str, info: ValidationInfo) -> str:
    if isinstance(info.context, dict) and info.context.get("stored"):
        return name
    if not name:
        raise ValueError("a property name cannot be empty")
    if len(name) > MAX_PROPERTY_NAME:
        raise ValueError(f"a property name has at most {MAX_PROPERTY_NAME} characters")
    if "\x00" in name:
        raise ValueError("a property name cannot hold a NUL character")
    return name


# An event property a rule reads: any text an engine can address (checked here so a bad one is a map error at
# import or edit, never a failure of every later ingest).
PropertyName = Annotated[str, AfterValidator(_property_name)]


class ChannelKind(StrEnum):
    digital = "digital"
    offline = "offline"
    human = "human"


class Initiative(StrEnum):
    proactive = "proactive"
    reactive = "reactive"


class Directness(StrEnum):
    direct = "direct"
    indirect = "indirect"


class Horizon(StrEnum):
    now = "now"
    next = "next"
    later = "later"


class OpportunityStatus(StrEnum):
    idea = "idea"
    planned = "planned"
    in_progress = "in_progress"
    done = "done"
    dropped = "dropped"


class OpportunitySource(StrEnum):
    person = "person"
    suggested = "suggested"


class Item(BaseModel):
    """Base of every map item: unknown fields are errors, so typos never vanish silently."""

    model_config = ConfigDict(extra="forbid")


class Condition(Item):
    """One test on a value: exactly one of equals, in, prefix or exists."""

    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)
    prefix: str | None = None
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        given = [name for name in OPERATORS if self.operand(name) is not None]
        if len(given) != 1:
            raise ValueError(f"a condition needs exactly one of {', '.join(OPERATORS)}; got {given or 'none'}")
        return self

    def operand(self, name: str) -> Any:
        return getattr(self, "in_" if name == "in" else name)

    @property
    def operator(self) -> str:
        return next(name for name in OPERATORS if self.operand(name) is not None)

    @model_serializer
    def to_data(self) -> Any:
        """The compact form: a plain value for equals, else ``{operator: operand}``."""
        if self.equals is not None:
            return self.equals
        return {self.operator: self.operand(self.operator)}


def condition_shorthand(value: Any) -> Any:
    """Accept a plain value as shorthand for ``{equals: value}`` and a list for ``{in: [...]}``."""
    if value is None or isinstance(value, dict | Condition):
        return value
    if isinstance(value, list):
        return {"in": value}
    return {"equals": value}


def where_shorthand(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: condition_shorthand(cond) for name, cond in value.items()}
    return value


ConditionField = Annotated[Condition, BeforeValidator(condition_shorthand)]
WhereField = Annotated[dict[PropertyName, Condition], BeforeValidator(where_shorthand)]


OPERATORS = ("equals", "in", "prefix", "exists")


class PropertyCondition(Condition):
    """A condition on a named customer attribute, used by persona segments."""

    property: Key

    @model_serializer
    def to_data(self) -> Any:
        return {"property": self.property, self.operator: self.operand(self.operator)}


class MatchRule(Item):
    """Which events belong to a touchpoint: conditions on the event name, channel and properties."""

    event: ConditionField | None = None
    channel: ConditionField | None = None
    where: WhereField = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> MatchRule:
        if self.event is None and self.channel is None and not self.where:
            raise ValueError("a match rule needs at least one of event, channel or where")
        return self


class Channel(Item):
    key: Key
    name: str | None = None
    kind: ChannelKind | None = None
    description: Text | None = None
    owner: str | None = None
    strategy: Text | None = Field(default=None, description="The company's channel strategy for this channel.")
    stages: list[Key] = Field(default_factory=list, description="Stages the channel strategy says it serves.")


class Persona(Item):
    key: Key
    name: str | None = None
    description: Text | None = None
    goals: list[str] = Field(default_factory=list)
    frustrations: list[str] = Field(default_factory=list)
    segment: list[PropertyCondition] = Field(default_factory=list)

    @field_validator("segment", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class Stage(Item):
    key: Key
    name: str | None = None
    description: Text | None = None
    goal: str | None = None
    tasks: list[str] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)
    emotion: int | None = Field(default=None, ge=-2, le=2)
    weaknesses: list[str] = Field(default_factory=list)
    opportunities: list[str] = Field(default_factory=list)


class Journey(Item):
    key: Key
    name: str | None = None
    persona: Key | None = None
    description: Text | None = None
    stages: list[Stage] = Field(default_factory=list)


class Desired(Item):
    """What we want the customer to think, do and feel at a touchpoint."""

    think: str | None = None
    do: str | None = None
    feel: str | None = None


class Targets(Item):
    """Metric targets; `ces`, `drop_off` and `repeat_rate` are upper bounds, the rest lower bounds."""

    csat: float | None = Field(default=None, ge=0, le=1)
    nps: float | None = Field(default=None, ge=-100, le=100)
    ces: float | None = Field(default=None, ge=1, le=7)
    sentiment: float | None = Field(default=None, ge=-1, le=1)
    conversion: float | None = Field(default=None, ge=0, le=1)
    drop_off: float | None = Field(default=None, ge=0, le=1)
    repeat_rate: float | None = Field(default=None, ge=0, le=1)


class Survey(Item):
    """How customers are asked about a touchpoint through survey links (`touchlens survey link`)."""

    metric: Literal["csat", "nps", "ces"] = "csat"
    question: str | None = Field(
        default=None, min_length=1, max_length=300, description="The question; each metric has a default."
    )
    comment: bool = Field(default=True, description="Whether the customer is offered a comment box.")


class Touchpoint(Item):
    key: Key
    name: str | None = None
    description: Text | None = None
    stage: Key | None = None
    channel: Key | None = None
    phase: Phase | None = None
    initiative: Initiative | None = None
    directness: Directness | None = None
    owner: str | None = None
    personas: list[Key] = Field(default_factory=list)
    expectations: Text | None = None
    annoyances: Text | None = None
    desired: Desired | None = None
    script: Text | None = None
    match: MatchRule | None = None
    targets: Targets | None = None
    survey: Survey | None = None

    @property
    def label(self) -> str:
        return self.name or self.key


class OutcomeRule(Item):
    """An outcome: an event (with optional property conditions) or, for churn, days of inactivity."""

    event: ConditionField | None = None
    where: WhereField = Field(default_factory=dict)
    value: PropertyName | None = Field(default=None, description="Property holding the conversion's value.")
    inactive_days: int | None = Field(default=None, gt=0)
    within_days: int | None = Field(default=None, gt=0)
    label: str | None = Field(
        default=None, min_length=1, max_length=60, description="What one outcome is called, e.g. renewal."
    )

    @model_validator(mode="after")
    def _event_or_inactivity(self) -> OutcomeRule:
        if self.event is None and self.inactive_days is None:
            raise ValueError("an outcome needs an event or inactive_days")
        if self.event is not None and self.inactive_days is not None:
            raise ValueError("an outcome takes an event or inactive_days, not both")
        return self


class Outcomes(Item):
    conversion: OutcomeRule | None = None
    churn: OutcomeRule | None = None
    repeat: OutcomeRule | None = None


class Opportunity(Item):
    """An improvement to make; `key` defaults to a slug of the title."""

    key: Key
    title: str = Field(min_length=1)
    description: Text | None = None
    touchpoints: list[Key] = Field(default_factory=list)
    horizon: Horizon | None = None
    impact: float | None = Field(default=None, ge=0, le=5)
    effort: float | None = Field(default=None, gt=0, le=5)
    confidence: float | None = Field(default=None, ge=0, le=1)
    status: OpportunityStatus = OpportunityStatus.idea
    owner: str | None = None
    source: OpportunitySource = OpportunitySource.person
    evidence: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _derive_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("key") is None and isinstance(data.get("title"), str):
            return {**data, "key": slugify(data["title"])}
        return data


class SuccessMetric(StrEnum):
    csat = "csat"
    nps = "nps"
    ces = "ces"
    conversion = "conversion"


# The scale of each metric a success statement can measure. Shares are written 0.85 or "85%"; a bare 85 is
# refused rather than guessed at (it could mean 85% or a typo of 0.85). Effort (CES) is better when lower.
METRIC_RANGES: dict[SuccessMetric, tuple[float, float]] = {
    SuccessMetric.csat: (0, 1),
    SuccessMetric.conversion: (0, 1),
    SuccessMetric.nps: (-100, 100),
    SuccessMetric.ces: (1, 7),
}
SHARE_METRICS = frozenset({SuccessMetric.csat, SuccessMetric.conversion})
LOWER_IS_BETTER = frozenset({SuccessMetric.ces})
Comparison = Literal[">=", "<="]


class SuccessScope(Item):
    """Where a success statement is measured: exactly one of touchpoints, stage, channel, phase or `all: true`."""

    touchpoints: list[Key] | None = Field(default=None, min_length=1)
    stage: Key | None = None
    channel: Key | None = None
    phase: Phase | None = None
    all_: Literal[True] | None = Field(default=None, alias="all")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> SuccessScope:
        given = [name for name in SCOPES if self.part(name) is not None]
        if len(given) != 1:
            raise ValueError(f"a scope needs exactly one of {', '.join(SCOPES)}; got {', '.join(given) or 'none'}")
        return self

    def part(self, name: str) -> Any:
        return getattr(self, "all_" if name == "all" else name)

    @property
    def kind(self) -> str:
        return next(name for name in SCOPES if self.part(name) is not None)


SCOPES = ("touchpoints", "stage", "channel", "phase", "all")


class SuccessStatement(Item):
    """A measurable CX success statement: `metric` `op` `threshold` over `scope`, e.g. CSAT ≥ 0.85 on every
    post-purchase touchpoint. `str()` gives its text, so code that reads statements as text keeps working."""

    text: Text = Field(min_length=1)
    metric: SuccessMetric
    threshold: float
    op: Comparison | None = None
    scope: SuccessScope
    every: bool = False

    @field_validator("threshold", mode="before")
    @classmethod
    def _percent(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool):  # YAML's `yes` is no threshold, though Python counts it as 1
            raise ValueError("a threshold is a number, not true or false")
        if not (isinstance(value, str) and value.strip().endswith("%")):
            return value
        metric = info.data.get("metric")  # absent when the metric itself is wrong (reported on its own)
        if metric is not None and metric not in SHARE_METRICS:
            raise ValueError(f"a percentage fits only shares ({', '.join(sorted(SHARE_METRICS))}); write a number")
        try:
            return float(value.strip().removesuffix("%")) / 100
        except ValueError:
            raise ValueError(f"'{value}' is not a percentage; write e.g. '85%' or 0.85") from None

    @field_validator("threshold")
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        metric = info.data.get("metric")
        if metric is None:
            return value
        low, high = METRIC_RANGES[metric]
        if not low <= value <= high:
            hint = f": write {value / 100:g} or '{value:g}%'" if metric in SHARE_METRICS and 1 < value <= 100 else ""
            raise ValueError(f"a {metric} threshold is a number from {low:g} to {high:g}{hint}")
        return value

    @property
    def comparison(self) -> Comparison:
        """`op` as written, else "<=" for metrics where lower is better and ">=" for the rest."""
        return self.op or ("<=" if self.metric in LOWER_IS_BETTER else ">=")

    def __str__(self) -> str:
        return self.text


def _success_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "plain"
    return "measured" if isinstance(value, dict | SuccessStatement) else None


# A success statement: plain text (not measured) or a measurable statement. The tags appear in validation-error
# locations after the index; `mapfile` drops them so errors read `success[0].metric`.
SUCCESS_TAGS = ("plain", "measured")
SuccessItem = Annotated[
    Annotated[Text, Tag("plain")] | Annotated[SuccessStatement, Tag("measured")],
    Discriminator(
        _success_kind,
        custom_error_type="success_statement",
        custom_error_message="a success statement is text, or a mapping with text, metric, threshold and scope",
    ),
]


QUIET = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def _duration(value: str) -> str:
    from touchlens.model.durations import parse_duration

    parse_duration(value)  # its ValueError says what a duration looks like
    return value


Duration = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_duration)]


def _quiet(value: str) -> str:
    if not QUIET.match(value):
        raise ValueError(f"quiet hours are written HH:MM-HH:MM (e.g. 21:00-08:00), not '{value[:40]}'")
    return value


Quiet = Annotated[str, AfterValidator(_quiet)]


class Trigger(Item):
    """What starts or cancels a proactive contact: a touchpoint's events, or events of one name."""

    touchpoint: Key | None = None
    event: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        if (self.touchpoint is None) == (self.event is None):
            raise ValueError("name a touchpoint or an event (one of them)")
        return self


class ContactCap(Item):
    """At most `max` proactive contacts per customer in any `per` (across every proactive touchpoint)."""

    max: int = Field(ge=1, le=1000)
    per: Duration


class ProactiveRule(Item):
    """A proactive touchpoint as a rule: after `after`, wait `wait`, unless `unless` happened meanwhile, contact
    the customer (of `persona`, if given) on `channel`; `holdout` of customers, chosen by id, are withheld."""

    key: Key
    name: str | None = Field(default=None, max_length=200)
    after: Trigger
    wait: Duration
    unless: Trigger | None = None
    persona: Key | None = None
    channel: Key | None = None
    touchpoint: Key | None = Field(default=None, description="The touchpoint its contacts are recorded as.")
    quiet: Quiet | None = Field(default=None, description="HH:MM-HH:MM: no contact then.")
    timezone: str = Field(default="UTC", max_length=60)
    holdout: float = Field(default=0.1, ge=0, lt=1)

    @property
    def label(self) -> str:
        return self.name or self.key


class TouchpointMap(Item):
    """The whole designed world of one business."""

    name: str = Field(min_length=1)
    description: Text | None = None
    mission: Text | None = None
    success: list[SuccessItem] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    personas: list[Persona] = Field(default_factory=list)
    journeys: list[Journey] = Field(default_factory=list)
    touchpoints: list[Touchpoint] = Field(default_factory=list)
    outcomes: Outcomes = Field(default_factory=Outcomes)
    opportunities: list[Opportunity] = Field(default_factory=list)
    proactive: list[ProactiveRule] = Field(default_factory=list)
    contact_cap: ContactCap | None = None

    @field_validator("success", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | dict | SuccessStatement) else value

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        # One plain success statement is written back as the string people usually write.
        if isinstance(data.get("success"), list) and len(data["success"]) == 1 and isinstance(self.success[0], str):
            data["success"] = data["success"][0]
        return data

    def stages(self) -> list[Stage]:
        """Every distinct stage key in journey order; the first journey that names a stage describes it."""
        seen: dict[str, Stage] = {}
        for journey in self.journeys:
            for stage in journey.stages:
                seen.setdefault(stage.key, stage)
        return list(seen.values())

    def stage_keys(self) -> list[str]:
        return [stage.key for stage in self.stages()]

    def channel(self, key: str) -> Channel | None:
        return next((c for c in self.channels if c.key == key), None)

    def touchpoint(self, key: str) -> Touchpoint | None:
        return next((t for t in self.touchpoints if t.key == key), None)

    def persona_stage_keys(self, persona: str) -> set[str]:
        return {s.key for j in self.journeys if j.persona == persona for s in j.stages}


def slugify(text: str) -> str:
    """A key from a title: ``"Say when the refund lands"`` → ``"say_when_the_refund_lands"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return slug[:120] or "item"
