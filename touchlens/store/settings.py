"""Workspace settings, declared once: read from `touchlens.toml`, overridden by `TOUCHLENS_*` variables.

A nested setting ``store.meta_url`` is ``[store] meta_url`` in the file and ``TOUCHLENS_STORE__META_URL`` in
the environment. `docs/settings.md` documents each one (a test checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meta_url: str = Field(
        default="sqlite:///touchlens.db",
        description="SQLAlchemy URL of the metadata store (map, roadmap, users). A relative SQLite path is "
        "relative to the workspace folder; a postgresql:// URL puts it on PostgreSQL.",
    )
    memory_limit: str = Field(
        default="1GB",
        description="DuckDB's memory limit for the events store (e.g. 1GB, 8GB); beyond it DuckDB spills to disk.",
    )
    events_path: str = Field(
        default="events.duckdb",
        description="DuckDB file of events, feedback, customers and quarantine, relative to the workspace.",
    )


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_rows: int = Field(
        default=1_000_000,
        gt=0,
        description="Rows per ingest batch: each batch is one transaction; larger is faster, smaller uses less memory.",
    )
    attach_window: str = Field(
        default="48h",
        description="Default window for tying a survey response to the customer's latest touchpoint (30m, 48h, 7d).",
    )


class LiveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_message_kb: int = Field(
        default=32, gt=0, le=1024, description="Largest message (KB) the live endpoint takes; a larger one is refused."
    )
    max_batch_kb: int = Field(
        default=500, gt=0, le=16384, description="Largest request body (KB) the live endpoint takes (400 beyond)."
    )
    group_rows: int = Field(
        default=20_000,
        gt=0,
        description="Most live events the single writer commits in one transaction (requests queued meanwhile).",
    )
    requests_per_second: float = Field(
        default=100,
        gt=0,
        description="Requests one write key may send per second, on average (bursts of twice as many pass); "
        "beyond it the answer is 429 with Retry-After.",
    )
    events_per_second: float = Field(
        default=10_000,
        gt=0,
        description="Messages one write key may send per second, on average (a request may overdraw the budget "
        "once; later ones wait until it is repaid); beyond it the answer is 429 with Retry-After.",
    )
    rejected_per_minute: int = Field(
        default=1000,
        gt=0,
        description="Invalid messages one write key may send per minute; beyond it its requests get 429 with "
        "Retry-After until the minute has passed.",
    )


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed; from "
        "anyone else the header is ignored and the connecting address is the client's.",
    )
    token_days: int = Field(
        default=90, ge=1, le=3650, description="Days a new API token lasts unless `tokens add --days` says otherwise."
    )
    analysis_seconds: float = Field(
        default=60,
        gt=0,
        description="Longest one analysis may run for a web or API request; beyond it the engine query is "
        "cancelled and the answer is 503.",
    )
    fresh_wait_seconds: float = Field(
        default=3,
        ge=0,
        le=600,
        description="After the data changed, how long a page waits for its new answers before it shows the last "
        "ones with their age; the new ones are computed in the background.",
    )
    behind_seconds: float = Field(
        default=5,
        ge=0,
        le=3600,
        description="While live events flow in (a batch committed within this many seconds), a page shows at once "
        "an answer computed at most this long ago and computes the new one in the background; an older one is "
        "waited for up to fresh_wait_seconds, unless the computation under way is expected (by the last one's "
        "time) to end later; 0: always wait up to fresh_wait_seconds.",
    )
    heavy_per_user: int = Field(
        default=2,
        ge=1,
        description="Expensive analyses (funnels, attribution, drivers, insights, …) one user may run at once "
        "through the web app or API; more get 429.",
    )


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pseudonymise: bool = Field(
        default=False,
        description="Replace customer ids with a salted HMAC-SHA256 at ingest, before anything is stored.",
    )
    salt: str = Field(
        default="",
        description="The HMAC secret for pseudonymise (16+ characters); better set as TOUCHLENS_PRIVACY__SALT.",
    )


class SurveySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where customers reach `touchlens serve`: survey links and QR codes start with it (e.g. "
        "https://cx.example.com).",
    )
    link_days: int = Field(default=30, ge=1, le=3650, description="Days a new survey link can be answered.")
    secret: str = Field(
        default="",
        description="The HMAC secret that signs survey links (32+ characters; better set as "
        "TOUCHLENS_SURVEYS__SECRET). Empty: a random one is made once and kept in the workspace's "
        "`.survey-secret` file (owner-only). Changing it voids every link sent.",
    )


class CasesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open: bool = Field(
        default=True, description="Open a follow-up case for each low score or negative comment as it is ingested."
    )
    within_days: int = Field(
        default=14,
        ge=0,
        description="Only answers given this many days before they are ingested open a case (an import of old "
        "surveys opens none).",
    )
    due_days: float = Field(default=2, gt=0, description="Days a new case has before it is overdue.")
    negative_sentiment: float = Field(
        default=-0.3,
        ge=-1,
        le=0,
        description="A comment at or below this sentiment (−1..1) opens a case whatever its score.",
    )


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="How often `touchlens serve` checks the alert rules while data arrives (and every five "
        "minutes regardless, for case ages and the end of quiet hours).",
    )
    smtp_host: str = Field(default="", description="The SMTP server alert e-mails go through; empty: no e-mail.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Its port (587 with smtp_starttls, usually).")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS before sending.")
    smtp_user: str = Field(default="", description="SMTP user name, if the server wants one.")
    smtp_password: str = Field(default="", description="SMTP password; better set as TOUCHLENS_ALERTS__SMTP_PASSWORD.")
    smtp_from: str = Field(default="touchlens@localhost", description="The sender of alert e-mails.")
    webhook_seconds: float = Field(default=5, gt=0, le=60, description="How long a webhook may take to answer.")


class ProactiveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook: str = Field(
        default="",
        pattern=r"^(https?://.*)?$",
        description="The messaging tool's webhook `touchlens serve` hands each due proactive contact to (JSON); "
        "empty (and `queue` false): the map's proactive rules are not run.",
    )
    queue: bool = Field(
        default=False,
        description="Keep each due proactive contact in a queue the messaging tool fetches (`design queue`, GET "
        "/api/proactive/queue) and confirms once sent (`design confirm`, POST /api/proactive/confirm), instead of "
        "handing it to the webhook.",
    )
    check_seconds: float = Field(
        default=60, gt=0, le=3600, description="How often `touchlens serve` runs the map's proactive rules."
    )


class RoadmapSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    now_score: float = Field(
        default=60,
        ge=0,
        le=100,
        description="Opportunities scoring at least this (0–100, the best scores 100) go to Now, if effort allows.",
    )
    now_max_effort: float = Field(
        default=3, gt=0, le=5, description="Most effort (1–5) an opportunity may take and still go to Now."
    )
    next_score: float = Field(default=30, ge=0, le=100, description="Opportunities scoring at least this go to Next.")
    success_weight: float = Field(
        default=1.5,
        ge=1,
        description="Score multiplier for opportunities on a touchpoint, stage or channel the success statements name.",
    )


class InsightsSettings(BaseModel):
    """When a gap is large enough to call a touchpoint poor, a finding material, or a change an anomaly."""

    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Significance level after multiplicity control (Holm or Benjamini–Hochberg) for every judgment.",
    )
    min_responses: int = Field(
        default=20, ge=5, description="Fewest survey answers a touchpoint needs before its score is judged."
    )
    min_csat_points: float = Field(
        default=5.0,
        ge=0,
        description="A touchpoint is poor only when its CSAT is at least this many points (of 100) below its "
        "reference (its target, else its stage); a smaller significant gap is only worth watching.",
    )
    min_nps_points: float = Field(default=10.0, ge=0, description="The same for NPS, in NPS points (−100..100).")
    min_ces_points: float = Field(
        default=0.5, ge=0, description="The same for CES, in points of its 1–7 scale (higher is more effort)."
    )
    min_rate_points: float = Field(
        default=3.0,
        ge=0,
        description="An effect on an outcome (renewal, churn, conversion) counts only when it moves the rate by at "
        "least this many percentage points: smaller ones are not reported as strengths or problems.",
    )
    min_relative_effect: float = Field(
        default=0.2,
        ge=0,
        description="…and by at least this share of the rate without it (0.2: 75% → 60% counts, 75% → 71% not).",
    )
    anomaly_fdr: float = Field(
        default=0.05, gt=0, lt=1, description="False discovery rate across every series and period of a trends run."
    )
    anomaly_min_csat_points: float = Field(
        default=10.0, ge=0, description="A CSAT anomaly must differ from its expected share by this many points."
    )
    anomaly_min_volume_change: float = Field(
        default=0.3, ge=0, description="A volume anomaly must differ from its expected count by this share."
    )
    impact_min_responses: int = Field(
        default=30,
        ge=1,
        description="Fewest answers on each side of a change before `analyze impact` judges its effect on CSAT.",
    )


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["duckdb", "pyspark"] = Field(
        default="duckdb",
        description="The engine that runs the analyses: duckdb (embedded) or pyspark (Apache Spark; needs "
        "touchlens[spark], Java 17+ and a lake).",
    )
    lake: str = Field(
        default="",
        description="A Parquet lake to analyse instead of the events store: a folder or URL holding "
        "events/date=YYYY-MM-DD/*.parquet, as `touchlens export parquet --lake` writes. Empty: the events store.",
    )
    spark_master: str = Field(
        default="",
        description="Spark master URL for the session touchlens starts (local[*], yarn, spark://…); empty: "
        "Spark's default, or what spark-submit was given.",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description='Spark settings for that session, e.g. { "spark.driver.memory" = "8g" }.',
    )


class Settings(BaseSettings):
    """Every setting of a workspace, with its default and help."""

    model_config = SettingsConfigDict(env_prefix="TOUCHLENS_", env_nested_delimiter="__", extra="forbid")

    store: StoreSettings = Field(default_factory=StoreSettings, description="Where the workspace keeps its data.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="How files are read in.")
    live: LiveSettings = Field(default_factory=LiveSettings, description="The live ingestion endpoint (/v1).")
    web: WebSettings = Field(
        default_factory=WebSettings, description="The web app and REST API: proxies, tokens, analysis limits."
    )
    privacy: PrivacySettings = Field(
        default_factory=PrivacySettings, description="Pseudonymisation of customer ids at ingest."
    )
    surveys: SurveySettings = Field(
        default_factory=SurveySettings, description="Survey links sent to customers: their address, life and secret."
    )
    cases: CasesSettings = Field(
        default_factory=CasesSettings, description="Follow-up cases for unhappy answers: when they open, when due."
    )
    alerts: AlertSettings = Field(
        default_factory=AlertSettings, description="Alert delivery: how often rules are checked, webhooks, SMTP."
    )
    proactive: ProactiveSettings = Field(
        default_factory=ProactiveSettings, description="Running the map's proactive touchpoints: where contacts go."
    )
    roadmap: RoadmapSettings = Field(
        default_factory=RoadmapSettings, description="How suggested opportunities are placed Now / Next / Later."
    )
    insights: InsightsSettings = Field(
        default_factory=InsightsSettings,
        description="How large and how sure a gap must be to be judged: poor, material, anomalous.",
    )
    engine: EngineSettings = Field(
        default_factory=EngineSettings, description="Where the analyses run: DuckDB or Spark, on the store or a lake."
    )


def load_settings(toml_path: Path) -> Settings:
    """Settings from `toml_path` (missing file: defaults), with `TOUCHLENS_*` variables on top."""

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    return _FromFile()


def documented_settings() -> list[tuple[str, Any, str]]:
    """(dotted name, default, help) of every setting, for the settings file and the docs."""
    out: list[tuple[str, Any, str]] = []
    for section, info in Settings.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for name, field in model.model_fields.items():
            default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
            out.append((f"{section}.{name}", default, field.description or ""))
    return out


def settings_file_text() -> str:
    """The commented `touchlens.toml` that `touchlens init` writes: every setting at its default."""
    lines = ["# touchlens workspace settings; each is documented in docs/settings.md.", ""]
    current = None
    for dotted, default, help_text in documented_settings():
        section, name = dotted.split(".", 1)
        if section != current:
            lines += ([""] if current else []) + [f"[{section}]"]
            current = section
        lines += [f"# {help_text}", f"{name} = {_toml_value(default)}"]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
