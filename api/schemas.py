"""Response and request models. Timestamps are ISO-8601 UTC (``...Z``).

Score fields: each aggregation window ``w`` of the contract is flattened as ``score_key(w)``: the
window's own name when it already starts with ``score_`` (the default ``score_recent``,
``score_steady``, ``score_anchor``), else ``score_<w>``. The models carrying them are built per
app from the contract's windows (``with_windows``), so the OpenAPI schema names them exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from coordinator_core.db.tables import CheckpointStatus
from coordinator_core.errors import ConfigurationError

RESERVED_SCORE_KEYS = frozenset(
    {"score_metrics", "score_ranking", "score_value", "score_success", "score_failed", "score_failed_reason"}
)


def score_key(window: str) -> str:
    """The flattened payload key of an aggregation window."""
    return window if window.startswith("score_") else f"score_{window}"


def check_windows(windows: Iterable[str]) -> None:
    keys = [score_key(w) for w in windows]
    clash = sorted({k for k in keys if k in RESERVED_SCORE_KEYS or keys.count(k) > 1})
    if clash:
        raise ConfigurationError(
            f"CRUNCH_CONTRACT: aggregation window names give clashing report fields {clash}; rename them"
        )


def with_windows(base: type[BaseModel], windows: Iterable[str], name: str) -> type[BaseModel]:
    """``base`` plus one ``float | None`` field per window, named ``score_key(window)``."""
    fields: dict[str, Any] = {
        score_key(w): (
            float | None,
            Field(None, description=f"score over the window {w!r} (Σ value / Σ counted predictions)"),
        )
        for w in windows
    }
    return create_model(name, __base__=base, **fields)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=False)


class Problem(Out):
    """The body of every error but a 422 (which lists its errors: ``HTTPValidationError``)."""

    detail: str = Field(description="what went wrong, and what to fix when it is the request")


class Health(Out):
    status: str = Field(description="ok, or error when the database cannot be reached")
    database: str


def problem(description: str, **headers: str) -> dict[str, Any]:
    """An entry of a route's ``responses``: ``description``, the ``Problem`` body and the headers named."""
    entry: dict[str, Any] = {"model": Problem, "description": description}
    if headers:
        entry["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return entry


class ScoreRanking(Out):
    key: str
    value: float | None
    direction: str


class Totals(Out):
    """Σ over snapshots: ``score`` = value_sum / prediction_count (``None`` without predictions)."""

    value_sum: float = 0.0
    prediction_count: int = 0
    scored_count: int = 0
    failed_count: int = 0
    absent_count: int = 0
    score: float | None = None


class LeaderboardEntry(Out):
    created_at: datetime = Field(description="as-of time of the stored leaderboard")
    leaderboard_id: str
    rank: int | None = Field(description="1..N among the paid models; null for a virtual ensemble")
    model_id: str
    model_name: str | None = None
    cruncher_id: str | None = None
    cruncher_name: str | None = None
    status: str | None = Field(None, description="the model's state (RUNNING, STOPPED, ...)")
    score_metrics: dict[str, float | None]
    score_ranking: ScoreRanking
    prediction_count: int = 0
    scored_count: int = 0
    failed_count: int = 0
    absent_count: int = 0
    virtual: bool = Field(False, description="a virtual ensemble (ensemble:<name>): shown, never ranked or paid")
    contribution: float | None = Field(
        None,
        description="mean one-out contribution to the contract's first ensemble over the ranking window "
        "(positive = the model made the ensemble better); null without an ensemble or a defined round",
    )
    metrics: dict[str, float | None] = Field(
        default_factory=dict,
        description="the contract's metric columns over the ranking window (CrunchContract.metrics; "
        "coordinator_core.domain.metrics): coverage (scored / scheduled), n, mean, mean_ci_low and "
        "mean_ci_high (95 % percentile bootstrap), for point forecasts ic, hit_rate, sharpe and "
        "max_drawdown, for probabilistic ones pit_50, pit_80 and pit_90, and the mean of each extra "
        "numeric key of the scoring function's results under its name; null when undefined, "
        "shown only (never ranked or paid)",
    )


class ClusterPair(Out):
    config: str | None = Field(None, description="the config (scope_key) whose stream showed it")
    a: str
    b: str
    correlation: float = Field(description="Pearson correlation of b[t + lag] with a[t] over the shared rounds")
    lag: int = Field(description="rounds b repeats a later (negative: a repeats b)")
    overlap: int = Field(description="rounds both answered at that lag")


class CloneCluster(Out):
    members: list[str]
    leaders: list[str] = Field(description="members that repeat no other member later")
    representative: str | None = Field(description="the ranked leader holding the cluster's one emission slot")
    pairs: list[ClusterPair] = Field(description="the evidence: every pair at or above the threshold")


class CheckpointClusters(Out):
    """The clone clusters of a checkpoint's period: each shares one emission slot, split equally."""

    checkpoint_id: str
    threshold: float | None = None
    max_lag: int | None = None
    min_overlap: int | None = None
    clusters: list[CloneCluster] = Field(default_factory=list)
    followers: list[str] = Field(
        default_factory=list, description="left out of the missing-prediction baseline from the next scoring on"
    )


class ModelOut(Out):
    model_id: str
    model_name: str
    cruncher_id: str
    cruncher_name: str
    deployment_id: str
    status: str
    wallet: str | None = None
    overall_score: dict[str, Any] = Field(
        default_factory=dict, description="rank and window scores of the latest leaderboard"
    )
    first_seen_at: datetime
    last_seen_at: datetime
    last_failure_code: str | None = None
    last_failure_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class ModelScoresBase(Out):
    model_id: str
    model_name: str | None = None
    cruncher_id: str | None = None
    cruncher_name: str | None = None
    status: str | None = None
    as_of: datetime = Field(description="end of every window (default: the latest leaderboard's as-of time)")
    start: datetime
    end: datetime
    score_metrics: dict[str, float | None]
    score_ranking: ScoreRanking
    windows: dict[str, Totals] = Field(description="per window: counts and score")
    period: Totals = Field(description="totals over (start, end]")
    performed_at: datetime | None = Field(None, description="newest prediction at or before end")


class ModelParamsBase(ModelScoresBase):
    scope_key: str
    scope: dict[str, Any] = Field(default_factory=dict, description="scope of the newest prediction of this scope key")


class PredictionOut(Out):
    id: str
    input_id: str
    model_id: str
    prediction_config_id: str
    scope_key: str
    scope: dict[str, Any]
    subject: str | None = None
    horizon_seconds: int | None = None
    status: str
    runner_status: str | None = None
    failed_reason: str | None = None
    exec_time_ms: float
    inference_output: dict[str, Any]
    performed_at: datetime
    resolvable_at: datetime
    score_value: float | None = Field(None, description="the counted value (a penalty for FAILED/ABSENT)")
    score_success: bool | None = None
    score_failed: bool = Field(description="FAILED/ABSENT, or scored without success; false while PENDING")
    score_failed_reason: str | None = None
    scored_at: datetime | None = None


class FeedOut(Out):
    source: str
    subject: str
    kind: str
    granularity: str
    record_count: int = Field(description="records of this scope, exact up to record_count_capped")
    record_count_capped: bool = Field(description="true when there are more records than record_count")
    oldest_ts: datetime | None = None
    newest_ts: datetime | None = None
    watermark_ts: datetime | None = None
    watermark_updated_at: datetime | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class FeedRecordOut(Out):
    id: int
    source: str
    subject: str
    kind: str
    granularity: str
    ts_event: datetime
    ts_ingested: datetime
    final: bool
    values: dict[str, Any]
    meta: dict[str, Any]


class SnapshotOut(Out):
    id: str
    model_id: str
    period_start: datetime
    period_end: datetime
    prediction_count: int
    scored_count: int
    failed_count: int
    absent_count: int
    value_sum: float
    score: float | None = Field(None, description="value_sum / prediction_count")
    result_summary: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class CheckpointOut(Out):
    id: str
    period_start: datetime
    period_end: datetime
    status: str
    entries: list[Any] = Field(description="[EmissionCheckpoint]")
    meta: dict[str, Any] = Field(description="snapshot_count, model_count, ranking, ranking_key")
    created_at: datetime
    tx_hash: str | None = None
    submitted_at: datetime | None = None
    merkle_root: str | None = Field(
        None, description="SHA-256 Merkle root of the period's snapshots and scores (coordinator_core.merkle)"
    )
    gate: dict[str, Any] | None = Field(
        None,
        description="the gate's verdict before money moves: stage, checked_at, passed, blocked (reasons), flags; "
        "a checkpoint with blocking reasons is GATED and cannot be confirmed",
    )


class ProofStep(Out):
    side: Literal["left", "right"] = Field(description="where the sibling sits")
    hash: str = Field(description="the sibling's SHA-256, hex")


class MerkleProof(Out):
    """A model's inclusion proof in a checkpoint (check it with ``coordinator verify-proof FILE``)."""

    version: int
    checkpoint_id: str
    root: str = Field(description="the checkpoint's stored Merkle root, the one the proof must reach")
    stored_root: str | None = Field(description="the stored root (null for a checkpoint built before revision 0004)")
    model_id: str
    checkpoint_leaf: dict[str, Any] = Field(description="the period and the emission's SHA-256 (informational)")
    leaves: list[dict[str, Any]] = Field(description="the model's score and snapshot leaves, in (kind, id) order")
    model_leaf: dict[str, Any] = Field(description="the model's own root and leaf count")
    index: int = Field(description="position of model_leaf among the checkpoint tree's sorted leaves")
    count: int = Field(description="number of leaves of the checkpoint tree")
    path: list[ProofStep] = Field(description="audit path, bottom first")


class PayoutExplanation(Out):
    """Why a model was paid what it was (``coordinator_core.services.explain``); ``snapshots`` is one
    page (``limit`` snapshots, next page by ``X-Next-Cursor``)."""

    checkpoint: dict[str, Any] = Field(description="id, period, status, merkle_root, gate")
    model: dict[str, Any] = Field(description="model_id, model_name, player_id, player_name")
    reward: dict[str, Any] = Field(
        description="reward_pct (frac64) and percent, the participant's share, the stored strategy and its "
        "parameters, the exact weight, the rounding residue, and whether the stored emission is reproduced"
    )
    rank: dict[str, Any] = Field(description="rank of N, key, direction, value, tie-break, ties, neighbours")
    aggregate: dict[str, Any] = Field(description="the period's window totals: Σ value_sum / Σ prediction_count")
    scoring_rule: dict[str, Any] = Field(description="dotted path and sha256 of the source, at build and now")
    snapshots: list[dict[str, Any]] = Field(
        description="this page's snapshots, each with its predictions: output, score, ground truth, feed records"
    )


class CheckpointPayload(Out):
    checkpoint_id: str
    period_start: datetime
    period_end: datetime
    entries: list[Any]


class CliFormat(Out):
    crunch: str
    crunchEmission: dict[str, float] = Field(
        description="percent per participant, keyed by wallet (else cruncher id); sums to exactly 100 at 6 decimals"
    )
    computeProvider: dict[str, float]
    dataProvider: dict[str, float]


class Prize(Out):
    prizeId: str
    timestamp: int = Field(description="period_end in Unix seconds")
    period_end: datetime
    model: str
    player_id: str | None = None
    rank: int | None = None
    reward_pct: int = Field(description="frac64 share (1e9 = 100 %)")
    prize: int


class LatestPrizes(Out):
    checkpoint_id: str
    status: str
    period_start: datetime
    period_end: datetime
    total_prize: int
    prizes: list[Prize]


class LatestEmission(Out):
    checkpoint_id: str
    status: str
    period_start: datetime
    period_end: datetime
    emission: dict[str, Any]


class Info(Out):
    crunch_id: str
    crunch_address: str
    network: str
    api_version: str
    windows: dict[str, int] = Field(description="aggregation window name → hours")
    ranking_key: str
    ranking_direction: str


class LastPrediction(Out):
    id: str
    input_id: str
    round_at: datetime | None = None
    performed_at: datetime
    resolvable_at: datetime
    scope_key: str
    status: str
    runner_status: str | None = None
    failed_reason: str | None = None
    exec_time_ms: float


class Latency(Out):
    sample_size: int
    last_exec_time_ms: float | None = None
    mean_exec_time_ms: float | None = None
    max_exec_time_ms: float | None = None


class ModelStatus(Out):
    model_id: str
    model_name: str
    cruncher_id: str
    cruncher_name: str
    status: str
    last_failure_code: str | None = None
    last_failure_at: datetime | None = None
    last_seen_at: datetime
    last_round_at: datetime | None = Field(None, description="round time of the newest prediction")
    last_prediction: LastPrediction | None = None
    latency: Latency = Field(description="exec_time_ms over the newest answered predictions (ABSENT excluded)")
    recent_statuses: dict[str, int] = Field(
        description="statuses of the newest predictions (sample of latency.sample_size + absent)"
    )
    as_of: datetime | None = Field(
        None, description="end of the windows (default: the latest leaderboard's as-of time)"
    )
    rank: int | None = Field(None, description="rank in the latest leaderboard")
    score_metrics: dict[str, float | None] = Field(description="provisional window scores (window_totals)")
    windows: dict[str, Totals]


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tx_hash: str = Field(
        min_length=1, max_length=256, pattern=r"^[^\s\x00]+$", description="transaction hash/signature"
    )


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: CheckpointStatus


class ReportSchema(Out):
    schema_version: str
    leaderboard_columns: list[dict[str, Any]]
    metrics_widgets: list[dict[str, Any]]
