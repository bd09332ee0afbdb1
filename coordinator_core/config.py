"""Settings: one pydantic-settings class, read from the environment (and ``.local.env``).

Names and defaults follow the coordinator-node spec, except where the embedded default needs
otherwise (documented in ``.local.env.example``): the feed defaults to the shipped replay dataset
(``replay``/``candle``/``1h``) so that one command runs offline.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coordinator_core.errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DEFAULT_REPLAY_PATH = PACKAGE_DIR / "data" / "btc_usd_1h.csv"

GRANULARITY_SECONDS = {
    "1s": 1,
    "5s": 5,
    "15s": 15,
    "30s": 30,
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "12h": 43200,
    "1d": 86400,
}


FEED_SOURCES = ("replay", "synthetic", "binance", "pyth")

# Settings whose empty value is documented as meaningful (``VAR=`` means the default: none, off or
# built-in; ``.local.env.example`` writes each of them empty). Every other setting refuses an empty
# value, so that ``FEED_SUBJECTS=`` fails instead of quietly meaning ``BTC``.
EMPTY_MEANS_DEFAULT = frozenset(
    {
        "crunch_pubkey",
        "compute_provider_pubkey",
        "data_provider_pubkey",
        "crunch_contract",
        "feed_max_staleness_seconds",
        "replay_path",
        "pyth_api_key",
        "scheduled_prediction_configs_path",
        "model_runner_secure_cert_dir",
        "model_runner_gateway_key_path",
        "inference_input_builder",
        "inference_output_validator",
        "model_score_aggregator",
        "leaderboard_ranker",
        "api_public_keys",
        "api_read_keys",
        "api_admin_keys",
        "api_cors_origins",
        "read_database_url",
    }
)

DATABASE_URL_EXAMPLES = "sqlite:///./coordinator.db (a file) or postgresql+psycopg2://USER@HOST:5432/DBNAME"
_CREDENTIALS = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def hide_password(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1***@", text)


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (``None`` for an in-memory database)."""
    from sqlalchemy import make_url

    database = make_url(url).database
    return None if database in (None, "", ":memory:") else database


def validate_database_url(url: str) -> str:
    """``url`` if the coordinator can use it, else ``ValueError`` saying what to write instead.

    Accepted: ``sqlite:///PATH`` (its folder must exist), ``sqlite://`` (in memory, for tests) and
    ``postgresql[+psycopg2]://…``.
    """
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    scheme, sep, rest = url.strip().partition("://")
    shown = hide_password(url)
    if not sep or not scheme:
        hint = f"sqlite:///{url.strip()}" if url.strip().endswith((".db", ".sqlite", ".sqlite3")) else None
        raise ValueError(
            f"{shown!r} is not a database URL; write {f'{hint} for that file' if hint else DATABASE_URL_EXAMPLES}"
        )
    dialect, _, driver = scheme.lower().partition("+")
    if dialect == "postgres":
        raise ValueError(
            f"the postgres:// alias is not understood by SQLAlchemy; write {hide_password('postgresql+psycopg2://' + rest)}"
        )
    if dialect == "postgresql":
        if driver not in ("", "psycopg2"):
            why = {
                "asyncpg": "asyncpg is the Prefect server's driver (PREFECT_SERVER_DATABASE_CONNECTION_URL); "
                "the coordinator connects synchronously through psycopg2",
                "psycopg": "psycopg 3 is not installed; the coordinator uses psycopg2",
            }.get(driver, f"the driver {driver!r} is not installed; the coordinator uses psycopg2")
            raise ValueError(f"{why}: write {hide_password('postgresql+psycopg2://' + rest)}")
        try:
            make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(
                f"cannot parse {shown!r} ({exc}); write e.g. postgresql+psycopg2://USER@HOST:5432/DBNAME"
            ) from None
        return url
    if dialect == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ValueError(f"the SQLite driver {driver!r} is not supported; write sqlite:///PATH")
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"cannot parse {shown!r} ({exc}); write sqlite:///./coordinator.db") from None
        if parsed.host:  # sqlite://coordinator.db: SQLAlchemy would open an in-memory database
            raise ValueError(
                f"{shown!r} has two slashes, which SQLAlchemy reads as an in-memory database; write "
                f"sqlite:///{parsed.host}{parsed.database and '/' + parsed.database or ''} (three slashes before a "
                "relative path, four before an absolute one: sqlite:////var/lib/coordinator.db)"
            )
        path = sqlite_path(url)
        if path is None:
            return url  # in memory: every connection sees its own empty database (tests only)
        file = Path(path)
        folder = file.parent
        where = "" if folder.is_absolute() else f" (relative to the working directory {Path.cwd()})"
        if not folder.exists():
            raise ValueError(
                f"the folder {folder} of the SQLite file {file.name} does not exist{where}; "
                f"create it (mkdir -p {folder}) or point the URL into an existing folder"
            )
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder{where}, so the SQLite file {file.name} cannot live in it")
        if file.is_dir():
            raise ValueError(
                f"{file} is a folder{where}; name a file inside it, e.g. sqlite:///{file / 'coordinator.db'}"
            )
        return url
    supported = "the coordinator runs on SQLite or Postgres only"
    if dialect in ("mysql", "mariadb", "mssql", "oracle", "cockroachdb", "duckdb"):
        raise ValueError(f"{dialect} is not supported: {supported}; write {DATABASE_URL_EXAMPLES}")
    raise ValueError(f"unknown database kind {scheme!r} in {shown!r} ({supported}); write {DATABASE_URL_EXAMPLES}")


def granularity_seconds(granularity: str) -> int:
    try:
        return GRANULARITY_SECONDS[granularity]
    except KeyError:
        raise ConfigurationError(
            f"FEED_GRANULARITY: unknown granularity {granularity!r}; use one of {', '.join(GRANULARITY_SECONDS)}"
        ) from None


class Settings(BaseSettings):
    """Every variable the coordinator reads. Field ``foo_bar`` is env var ``FOO_BAR``."""

    # Empty values reach the validators (env_ignore_empty=False): ``_empty`` turns them into the
    # default for the settings of ``EMPTY_MEANS_DEFAULT`` and refuses them for every other one.
    model_config = SettingsConfigDict(
        env_file=(".env", ".local.env"), extra="ignore", frozen=True, env_ignore_empty=False
    )

    # competition identity
    crunch_id: str = "starter-challenge"
    crunch_pubkey: str = ""
    network: str = "devnet"
    compute_provider_pubkey: str | None = None
    data_provider_pubkey: str | None = None
    crunch_contract: str | None = Field(None, description="module:attr of a CrunchContract (or a factory)")

    # storage
    database_url: str = "sqlite:///./coordinator.db"

    # feeds
    feed_source: str = Field("replay", description="source name, or several in priority order: binance,pyth")
    feed_subjects: str = "BTC"
    feed_kind: Literal["candle", "tick"] = "candle"
    feed_granularity: str = "1h"
    feed_backfill_minutes: int = Field(180, ge=0)
    feed_candles_window: int = Field(120, ge=1, le=10_000)
    feed_record_ttl_days: int = Field(90, ge=1)
    feed_max_staleness_seconds: int | None = Field(None, ge=1)
    replay_path: str = str(DEFAULT_REPLAY_PATH)
    synthetic_seed: int = 7
    synthetic_start_price: float = Field(60_000.0, gt=0)
    binance_api_url: str = "https://api.binance.com"
    pyth_hermes_url: str = "https://hermes.pyth.network"
    pyth_benchmarks_url: str = "https://benchmarks.pyth.network"
    pyth_api_key: str | None = None
    pyth_feed_ids: str = (
        "BTC=0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43,"
        "ETH=0xff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
    )
    feed_http_timeout_seconds: float = Field(10.0, gt=0)
    feed_max_retries: int = Field(5, ge=1, le=20)

    # prediction rounds
    scheduled_prediction_configs_path: str | None = None
    predict_interval_seconds: int = Field(60, ge=1, description="how often the predict flow wakes")
    ingest_interval_seconds: int = Field(60, ge=1, description="how often the ingest flow wakes")

    # models
    model_gateway: Literal["local", "model_runner"] = "local"
    models_dir: str = "examples/models"
    model_base_classname: str = "tracker.TrackerBase"
    model_runner_node_host: str = "model-orchestrator"
    model_runner_node_port: int = Field(9091, ge=1, le=65535)
    model_runner_timeout_seconds: float = Field(60.0, gt=0)
    model_runner_max_consecutive_failures: int = Field(100, ge=0, description="0 = never report/remove")
    model_runner_max_consecutive_timeouts: int = Field(100, ge=0, description="0 = never report/remove")
    model_runner_report_failure: bool = True
    model_runner_connect_timeout_seconds: float = Field(10.0, gt=0)
    model_runner_setup_timeout_seconds: float = Field(120.0, gt=0)
    model_runner_reconnect_seconds: float = Field(2.0, gt=0)
    model_runner_tick_cooldown: bool = False
    model_runner_secure_cert_dir: str | None = None
    model_runner_gateway_key_path: str | None = None
    local_model_timeout_seconds: float = Field(1.0, gt=0)
    local_model_workers: int = Field(32, ge=1, le=1024, description="threads calling in-process models")
    backtest_model_timeout_seconds: float = Field(
        300.0, gt=0, description="in a backtest (virtual time), how long a model call is waited for"
    )
    absence_grace_seconds: int = Field(
        0,
        ge=0,
        description="a registered model that is not RUNNING at a round gets an ABSENT prediction (charged by "
        "MISSING_PREDICTION_POLICY) once this long has passed since it was last seen running",
    )
    model_deregister_after_seconds: int = Field(
        604_800,
        ge=1,
        description="a registered model not seen running for this long is DEREGISTERED (no more ABSENT rows) "
        "until the gateway reports it running again",
    )

    # scoring
    scoring_function: str = "coordinator_core.scoring.rules:absolute_error_bps"
    score_interval_seconds: int = Field(60, ge=1)
    score_batch_size: int = Field(500, ge=1)
    scoring_timeout_seconds: float = Field(
        60.0, gt=0, description="deadline of one call of the scoring rule, outside any transaction or lock"
    )
    resolve_give_up_seconds: int = Field(86_400, ge=0)
    missing_prediction_policy: str = "worst_in_round"
    snapshot_period_seconds: int = Field(3600, ge=60)
    scoring_failure_limit: float = Field(
        0.5, ge=0.0, le=1.0, description="share of scored predictions the scoring function may fail on"
    )
    scoring_failure_min_count: int = Field(10, ge=1, description="failures below this count never fail a run")
    allow_constant_scoring: bool = Field(
        False,
        description="start even though the scoring function gives every sample prediction the same score "
        "(the scoring preflight, coordinator_core.preflight.check_scoring)",
    )

    # alerts (Prefect events)
    alert_model_failing_rounds: int = Field(5, ge=1, description="rounds a model fails in a row before an alert")

    # checkpoints
    checkpoint_interval_seconds: int = Field(604_800, ge=60)
    checkpoint_anchor: str = "1970-01-05T00:00:00Z"
    checkpoint_wait_seconds: int = Field(
        3600,
        ge=0,
        description="how long after its end a checkpoint waits for the rounds resolvable inside its period that are "
        "not yet scored or given up; then it is built without them and their scores count as late in the next",
    )
    checkpoint_max_share_change: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a participant's share moving more than this fraction of the whole against the previous "
        "checkpoint is flagged by the gate (not blocked); 1 = never flagged",
    )

    # extension points (module:attr), validated at start
    inference_input_builder: str | None = None
    inference_output_validator: str | None = None
    model_score_aggregator: str | None = None
    leaderboard_ranker: str | None = None

    # report API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_public_keys: str | None = Field(None, description="comma-separated keys for public reads; unset = open")
    api_read_keys: str | None = Field(None, description="comma-separated keys for private reads")
    api_admin_keys: str | None = Field(None, description="comma-separated keys for admin actions")
    api_cors_origins: str = Field("", description="comma-separated allowed origins; empty = no CORS")
    read_database_url: str | None = Field(None, description="read-only replica for the report API")

    @field_validator("*", mode="before")
    @classmethod
    def _empty(cls, value: Any, info: ValidationInfo) -> Any:
        """An empty value: the default where the example file documents it so, else an error."""
        if not isinstance(value, str) or value.strip():
            return value
        name = info.field_name or ""
        default = cls.model_fields[name].get_default()
        if name in EMPTY_MEANS_DEFAULT:
            return default  # (not PydanticUseDefault: pydantic-settings validates the defaults too)
        raise ValueError(
            f"empty, and an empty {name.upper()} means nothing: unset it (or delete its line in .local.env) "
            f"to get the default {default!r}, or give a value"
        )

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return None if value is None else validate_database_url(value)

    @field_validator("replay_path")
    @classmethod
    def _replay_template(cls, value: str) -> str:
        try:
            value.format(subject="BTC", subject_lower="btc")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not a path template ({type(exc).__name__}: {exc}); "
                "the only placeholders are {subject} and {subject_lower}"
            ) from None
        return value

    @field_validator("feed_source")
    @classmethod
    def _sources(cls, value: str) -> str:
        sources = [s.strip().lower() for s in value.split(",") if s.strip()]
        unknown = [s for s in sources if s not in FEED_SOURCES]
        if not sources or unknown:
            raise ValueError(
                f"unknown feed source(s) {unknown or value!r}; use one or more of {', '.join(FEED_SOURCES)}"
            )
        if len(set(sources)) != len(sources):
            raise ValueError("a source is listed twice")
        return ",".join(sources)

    @field_validator("api_cors_origins")
    @classmethod
    def _cors(cls, value: str) -> str:
        if any(o.strip() == "*" for o in value.split(",")):
            raise ValueError(
                "'*' is refused (the API uses credentials); list the exact origins, e.g. https://hub.example.com"
            )
        return value

    @field_validator("pyth_feed_ids")
    @classmethod
    def _feed_ids(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            subject, sep, feed_id = item.partition("=")
            hex_id = feed_id.strip().lower().removeprefix("0x")
            if not sep or not subject.strip() or len(hex_id) != 64 or any(c not in "0123456789abcdef" for c in hex_id):
                raise ValueError(f"{item!r} is not SUBJECT=<64 hex digits>")
        return value

    @field_validator("feed_subjects")
    @classmethod
    def _subjects(cls, value: str) -> str:
        subjects = [s.strip().upper() for s in value.split(",") if s.strip()]
        if not subjects:
            raise ValueError("list at least one subject, e.g. BTC or BTC,ETH")
        return ",".join(subjects)

    @field_validator("feed_granularity")
    @classmethod
    def _granularity(cls, value: str) -> str:
        if value not in GRANULARITY_SECONDS:
            raise ValueError(f"unknown granularity {value!r}; use one of {', '.join(GRANULARITY_SECONDS)}")
        return value

    @field_validator("missing_prediction_policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        if value in ("worst_in_round", "exclude"):
            return value
        if value.startswith("constant:"):
            try:
                float(value.split(":", 1)[1])
            except ValueError:
                raise ValueError("constant:<number>, e.g. constant:-100") from None
            return value
        raise ValueError("use worst_in_round, exclude or constant:<number>")

    @field_validator("checkpoint_anchor")
    @classmethod
    def _anchor(cls, value: str) -> str:
        from coordinator_core.clock import parse_utc

        parse_utc(value, "CHECKPOINT_ANCHOR")
        return value

    @model_validator(mode="after")
    def _periods(self) -> Settings:
        from coordinator_core.clock import parse_utc

        if int(parse_utc(self.checkpoint_anchor).timestamp()) % self.snapshot_period_seconds:
            raise ValueError(
                f"CHECKPOINT_ANCHOR {self.checkpoint_anchor} must fall on a SNAPSHOT_PERIOD_SECONDS boundary "
                f"({self.snapshot_period_seconds} s since the epoch), or a snapshot would straddle two checkpoints"
            )
        if "binance" in self.sources and self.feed_kind == "candle" and self.feed_granularity in ("5s", "15s", "30s"):
            raise ValueError(
                f"FEED_GRANULARITY {self.feed_granularity} is not a Binance kline interval; "
                "use 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h or 1d"
            )
        if self.absence_grace_seconds >= self.model_deregister_after_seconds:
            raise ValueError(
                f"ABSENCE_GRACE_SECONDS ({self.absence_grace_seconds}) must be less than "
                f"MODEL_DEREGISTER_AFTER_SECONDS ({self.model_deregister_after_seconds}): a model would be "
                "deregistered before its absence is ever charged"
            )
        if self.checkpoint_interval_seconds % self.snapshot_period_seconds:
            raise ValueError(
                "CHECKPOINT_INTERVAL_SECONDS must be a multiple of SNAPSHOT_PERIOD_SECONDS "
                f"({self.checkpoint_interval_seconds} % {self.snapshot_period_seconds} != 0)"
            )
        return self

    # derived values -------------------------------------------------------------------------
    @staticmethod
    def _keys(value: str | None) -> frozenset[str]:
        return frozenset(k.strip() for k in (value or "").split(",") if k.strip())

    @property
    def public_keys(self) -> frozenset[str]:
        return self._keys(self.api_public_keys)

    @property
    def read_keys(self) -> frozenset[str]:
        return self._keys(self.api_read_keys)

    @property
    def admin_keys(self) -> frozenset[str]:
        return self._keys(self.api_admin_keys)

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.api_cors_origins.split(",") if o.strip()]

    @property
    def sources(self) -> list[str]:
        """Feed sources in priority order (the first is the primary)."""
        return self.feed_source.split(",")

    @property
    def feed_ids(self) -> dict[str, str]:
        """Pyth feed id per subject, lower-case hex without ``0x``."""
        pairs = (item.partition("=") for item in self.pyth_feed_ids.split(",") if item.strip())
        return {s.strip().upper(): i.strip().lower().removeprefix("0x") for s, _, i in pairs}

    @property
    def subjects(self) -> list[str]:
        return self.feed_subjects.split(",")

    @property
    def granularity_seconds(self) -> int:
        return GRANULARITY_SECONDS[self.feed_granularity]

    @property
    def max_staleness_seconds(self) -> int:
        return self.feed_max_staleness_seconds or 2 * self.granularity_seconds + 60

    @property
    def models_path(self) -> Path:
        path = Path(self.models_dir)
        if not path.is_absolute() and not path.exists() and (PROJECT_DIR / path).exists():
            return PROJECT_DIR / path
        return path


def load_settings(**overrides: object) -> Settings:
    """Build the settings; a bad value raises ``ConfigurationError`` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            if not name:  # a rule across several variables: its message names them
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            shown = os.environ.get(name)
            if shown is None and isinstance(error.get("input"), str):
                shown = error["input"]  # from an env file, or given in code
            got = f" (got {hide_password(shown)!r})" if shown is not None else ""
            problems.append(f"{name}: {error['msg']}{got}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
