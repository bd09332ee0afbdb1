"""The ten tables of the spec, as SQLModel tables.

Natural unique keys make every write an idempotent upsert; indexes serve the hot queries
(what is due: the rounds' ``status`` + ``resolvable_at``; feed lookups: dimensions + ``ts_event``);
an index no query uses is not kept (revision 0007): every write would pay for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from coordinator_core.db.types import BigIntPK, JsonType, UTCDateTime
from coordinator_core.domain.statuses import (  # noqa: F401  (re-exported: the tables' statuses)
    CHECKPOINT_TRANSITIONS,
    CheckpointStatus,
    InputStatus,
    PredictionStatus,
)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json(default: Any = dict, nullable: bool = False) -> Any:
    return Field(default_factory=default, sa_column=Column(JsonType, nullable=nullable))


class FeedRecord(SQLModel, table=True):
    __tablename__ = "feed_records"
    __table_args__ = (
        UniqueConstraint("source", "subject", "kind", "granularity", "ts_event", name="uq_feed_records_event"),
        Index("ix_feed_records_ts_event", "ts_event"),
    )
    id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    source: str
    subject: str
    kind: str
    granularity: str
    ts_event: datetime = _ts()
    ts_ingested: datetime = _ts()
    final: bool = True
    values_jsonb: dict[str, Any] = _json()
    meta_jsonb: dict[str, Any] = _json()


class FeedIngestionState(SQLModel, table=True):
    __tablename__ = "feed_ingestion_state"
    __table_args__ = (UniqueConstraint("source", "subject", "kind", "granularity", name="uq_feed_ingestion_scope"),)
    id: str = Field(primary_key=True)
    source: str
    subject: str
    kind: str
    granularity: str
    last_event_ts: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()
    meta_jsonb: dict[str, Any] = _json()


class ScheduledPredictionConfigRow(SQLModel, table=True):
    __tablename__ = "scheduled_prediction_configs"
    id: str = Field(primary_key=True)
    scope_key: str = Field(unique=True)
    scope_template_jsonb: dict[str, Any] = _json()
    schedule_jsonb: dict[str, Any] = _json()
    active: bool = Field(default=True, index=True)
    order: int = 0
    meta_jsonb: dict[str, Any] = _json()
    updated_at: datetime = _ts()


class Model(SQLModel, table=True):
    __tablename__ = "models"
    # room in every page, so the sync's update of every model each round is HOT (revision 0006)
    __table_args__ = ({"postgresql_with": {"fillfactor": 50}},)
    id: str = Field(primary_key=True)
    name: str
    deployment_identifier: str = "unknown-deployment"
    player_id: str = Field(default="unknown-player", index=True)
    player_name: str = "Unknown"
    wallet: str | None = None
    hotkey: str | None = None
    state: str = Field(default="RUNNING", index=True)
    first_seen_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    # the last time the gateway reported the model RUNNING (absence grace, deregistration)
    running_at: datetime | None = _ts(nullable=True)
    last_failure_code: str | None = None
    last_failure_at: datetime | None = _ts(nullable=True)
    overall_score_jsonb: dict[str, Any] = _json()
    scores_by_scope_jsonb: list[Any] = _json(default=list)
    meta_jsonb: dict[str, Any] = _json()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Input(SQLModel, table=True):
    """One prediction round of one config: the input the models saw and, later, its ground truth."""

    __tablename__ = "inputs"
    __table_args__ = (
        UniqueConstraint("prediction_config_id", "round_at", name="uq_inputs_round"),
        Index("ix_inputs_due", "status", "resolvable_at"),
    )
    id: str = Field(primary_key=True)
    prediction_config_id: str = Field(foreign_key="scheduled_prediction_configs.id")
    scope_key: str
    status: str = InputStatus.RECEIVED
    round_at: datetime = _ts()
    received_at: datetime = _ts()
    resolvable_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    raw_data_jsonb: dict[str, Any] = _json()
    actuals_jsonb: dict[str, Any] | None = _json(default=lambda: None, nullable=True)
    scope_jsonb: dict[str, Any] = _json()
    meta_jsonb: dict[str, Any] = _json()


class Prediction(SQLModel, table=True):
    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("input_id", "model_id", name="uq_predictions_round_model"),
        Index("idx_predictions_lookup", "model_id", "performed_at"),
        Index("ix_predictions_performed_at", "performed_at", "id"),
        # room in every page, so the status change at scoring time is HOT (revision 0007)
        {"postgresql_with": {"fillfactor": 50}},
    )
    id: str = Field(primary_key=True)
    input_id: str = Field(foreign_key="inputs.id")
    model_id: str = Field(foreign_key="models.id")
    prediction_config_id: str = Field(foreign_key="scheduled_prediction_configs.id")
    scope_key: str
    scope_jsonb: dict[str, Any] = _json()
    status: str
    runner_status: str | None = None
    failed_reason: str | None = None
    exec_time_ms: float = 0.0
    inference_output_jsonb: dict[str, Any] = _json()
    meta_jsonb: dict[str, Any] = _json()
    performed_at: datetime = _ts()
    resolvable_at: datetime = _ts()


class Score(SQLModel, table=True):
    __tablename__ = "scores"
    __table_args__ = (
        Index("ix_scores_model_scored", "model_id", "scored_at"),
        Index("ix_scores_scored_at", "scored_at"),
    )
    id: str = Field(primary_key=True)
    prediction_id: str = Field(foreign_key="predictions.id", unique=True)
    model_id: str = Field(foreign_key="models.id")
    input_id: str = Field(foreign_key="inputs.id")
    prediction_status: str
    value: float
    success: bool
    failed_reason: str | None = None
    result_jsonb: dict[str, Any] = _json()
    scored_at: datetime = _ts()


class Snapshot(SQLModel, table=True):
    """Per model, per fixed period: counts and the sum of counted score values."""

    __tablename__ = "snapshots"
    __table_args__ = (
        UniqueConstraint("model_id", "period_start", name="uq_snapshots_model_period"),
        Index("ix_snapshots_period_end", "period_end"),
    )
    id: str = Field(primary_key=True)
    model_id: str = Field(foreign_key="models.id")
    period_start: datetime = _ts()
    period_end: datetime = _ts()
    prediction_count: int = 0
    scored_count: int = 0
    failed_count: int = 0
    absent_count: int = 0
    value_sum: float = 0.0
    result_summary_jsonb: dict[str, Any] = _json()
    meta_jsonb: dict[str, Any] = _json()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"
    id: str = Field(primary_key=True)
    period_start: datetime = _ts()
    period_end: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, unique=True))
    status: str = Field(default=CheckpointStatus.PENDING, index=True)
    entries_jsonb: list[Any] = _json(default=list)
    meta_jsonb: dict[str, Any] = _json()
    created_at: datetime = _ts()
    tx_hash: str | None = None
    submitted_at: datetime | None = _ts(nullable=True)
    merkle_root: str | None = Field(default=None, max_length=64)  # coordinator_core.merkle: scores and snapshots
    gate_jsonb: dict[str, Any] | None = _json(default=lambda: None, nullable=True)  # the gate's verdict


class Leaderboard(SQLModel, table=True):
    __tablename__ = "leaderboards"
    id: str = Field(primary_key=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, unique=True))
    entries_jsonb: list[Any] = _json(default=list)
    meta_jsonb: dict[str, Any] = _json()


class DerivedDirty(SQLModel, table=True):
    """Work owed to the derived tables, written in the same transaction as what caused it.

    ``kind='snapshot'``: the snapshots of the period starting at ``period_start`` must be rebuilt
    from the scores; ``kind='leaderboard'`` (``period_start`` = the ``now`` of the scoring run that
    owes it): the leaderboard must be rebuilt. ``owed_at``: the ``now`` of the run that incurred the
    work (the earliest, when several did); a refresh at ``now`` does only the work owed at or before
    ``now`` (NULL: owed before revision 0005, done by any refresh). A run that is killed leaves its
    rows here, and the next run at or after ``owed_at`` does the work.
    """

    __tablename__ = "derived_dirty"
    kind: str = Field(primary_key=True, max_length=32)
    period_start: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    owed_at: datetime | None = _ts(nullable=True)
