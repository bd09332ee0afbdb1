"""Settings: one pydantic-settings class, read from the environment (and ``.local.env``).

Names and defaults follow the coordinator-node spec, except where the embedded default needs
otherwise (documented in ``.local.env.example``): the feed defaults to the shipped replay dataset
(``replay``/``candle``/``1h``) so that one command runs offline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
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


def granularity_seconds(granularity: str) -> int:
    try:
        return GRANULARITY_SECONDS[granularity]
    except KeyError:
        raise ConfigurationError(
            f"FEED_GRANULARITY: unknown granularity {granularity!r}; use one of {', '.join(GRANULARITY_SECONDS)}"
        ) from None


class Settings(BaseSettings):
    """Every variable the coordinator reads. Field ``foo_bar`` is env var ``FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_file=(".env", ".local.env"), extra="ignore", frozen=True, env_ignore_empty=True
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

    # scoring
    scoring_function: str = "coordinator_core.scoring.rules:absolute_error_bps"
    score_interval_seconds: int = Field(60, ge=1)
    score_batch_size: int = Field(500, ge=1)
    resolve_give_up_seconds: int = Field(86_400, ge=0)
    missing_prediction_policy: str = "worst_in_round"
    snapshot_period_seconds: int = Field(3600, ge=60)

    # checkpoints
    checkpoint_interval_seconds: int = Field(604_800, ge=60)
    checkpoint_anchor: str = "1970-01-05T00:00:00Z"

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
            got = f" (got {shown!r})" if shown is not None else ""
            problems.append(f"{name}: {error['msg']}{got}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
