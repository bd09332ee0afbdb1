"""Scoring: resolve each round on its own horizon, score its predictions, write snapshots and
rebuild the leaderboard.

Ground truth of a round built at ``t`` with horizon ``h``: entry = the newest price observed at or
before ``t`` (what the models saw); exit = the newest price observed at or before ``t + h``, and
only once the feed has reached the horizon (the exit record must be observed within one
granularity of ``t + h``). Rounds that cannot be resolved wait, and give up after
``RESOLVE_GIVE_UP_SECONDS`` with a reason. A scoring rule that raises fails that prediction only.
FAILED and ABSENT predictions are counted through ``MISSING_PREDICTION_POLICY``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import case, func, tuple_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from coordinator_core.clock import floor_time
from coordinator_core.config import Settings, granularity_seconds
from coordinator_core.contract import CrunchContract
from coordinator_core.db.engine import advisory_lock, unit_of_work, upsert_statement
from coordinator_core.db.tables import (
    Checkpoint,
    Input,
    InputStatus,
    Leaderboard,
    Model,
    Prediction,
    PredictionStatus,
    Score,
    Snapshot,
)
from coordinator_core.errors import ValidationError
from coordinator_core.feeds.base import FeedScope
from coordinator_core.leaderboard import window_totals
from coordinator_core.services.feed_reader import observe_delay, price_at, price_point

log = logging.getLogger(__name__)
SCORE_LOCK = "coordinator:score-and-checkpoint"


@dataclass
class ScoreRunResult:
    resolved: int = 0
    waiting: int = 0
    gave_up: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    leaderboard_id: str | None = None


def scoring_time(session: Session, now: datetime) -> datetime:
    """Scores are stamped ``now``, but never inside a period a checkpoint already paid."""
    latest_end = session.exec(select(func.max(Checkpoint.period_end))).one()
    return max(now, latest_end) if latest_end is not None else now


def _resolve(session: Session, contract: CrunchContract, inp: Input) -> tuple[dict[str, Any] | None, str]:
    """Ground truth from the first source (in priority order) with a complete window."""
    scope_data = inp.scope_jsonb
    reasons = []
    for source in scope_data.get("sources") or [scope_data["source"]]:
        scope = FeedScope(source, scope_data["subject"], scope_data["kind"], scope_data["granularity"])
        truth, reason = _resolve_from(session, contract, inp, scope)
        if truth is not None:
            return {**truth, "source": source}, ""
        reasons.append(reason)
    return None, "; ".join(reasons)


def _resolve_from(
    session: Session, contract: CrunchContract, inp: Input, scope: FeedScope
) -> tuple[dict[str, Any] | None, str]:
    horizon = timedelta(seconds=int(inp.scope_jsonb["horizon_seconds"]))
    tolerance = timedelta(seconds=granularity_seconds(scope.granularity))
    entry = price_at(session, scope, inp.received_at)
    if entry is None:
        return None, f"no {scope.key} price observed at or before the round time {inp.received_at.isoformat()}"
    exit_time = inp.received_at + horizon
    exit_record = price_at(session, scope, exit_time)
    if exit_record is None or exit_record.ts_event + observe_delay(scope) <= exit_time - tolerance:
        return None, f"no {scope.key} price observed at the horizon {exit_time.isoformat()}"
    truth = contract.resolve_ground_truth(price_point(entry, scope), price_point(exit_record, scope))
    if truth is None:
        return None, "resolve_ground_truth returned None"
    return truth, ""


def _penalty(values: list[float], policy: str, direction: str) -> float | None:
    if policy == "exclude":
        return None
    if policy.startswith("constant:"):
        return float(policy.split(":", 1)[1])
    if not values:
        return None
    return min(values) if direction == "desc" else max(values)


def _score_batch(
    session: Session,
    contract: CrunchContract,
    settings: Settings,
    now: datetime,
    scored_at: datetime,
    inputs: list[Input],
    result: ScoreRunResult,
) -> int:
    resolved: dict[str, dict[str, Any]] = {}
    give_up = timedelta(seconds=settings.resolve_give_up_seconds)
    for inp in inputs:
        truth, reason = _resolve(session, contract, inp)
        if truth is not None:
            resolved[inp.id] = truth
            inp.status, inp.actuals_jsonb, inp.resolved_at = InputStatus.RESOLVED.value, truth, now
            session.add(inp)
        elif now - inp.resolvable_at >= give_up:
            result.gave_up += 1
            inp.status, inp.resolved_at = InputStatus.RESOLVED.value, now
            inp.meta_jsonb = {**inp.meta_jsonb, "unresolved_reason": f"gave up after {give_up}: {reason}"}
            session.add(inp)
            for prediction in session.exec(
                select(Prediction).where(Prediction.input_id == inp.id, Prediction.status == PredictionStatus.PENDING)
            ):
                prediction.status = PredictionStatus.FAILED.value
                prediction.failed_reason = f"ground truth unavailable: {reason} (gave up after {give_up})"
                session.add(prediction)
                result.statuses["FAILED"] += 1
        else:
            result.waiting += 1
    if not resolved:
        return 0
    result.resolved += len(resolved)
    predictions = session.exec(select(Prediction).where(col(Prediction.input_id).in_(list(resolved)))).all()
    rows: list[dict[str, Any]] = []
    by_input: dict[str, list[Prediction]] = {}
    for prediction in predictions:
        by_input.setdefault(prediction.input_id, []).append(prediction)
    for input_id, group in by_input.items():
        truth = resolved[input_id]
        values: list[float] = []
        missing: list[Prediction] = []
        for prediction in group:
            if prediction.status != PredictionStatus.PENDING:
                missing.append(prediction)
                continue
            try:
                score = contract.score(prediction.inference_output_jsonb, truth)
            except ValidationError as exc:
                prediction.status, prediction.failed_reason = PredictionStatus.FAILED.value, str(exc)
                session.add(prediction)
                missing.append(prediction)
                continue
            prediction.status = PredictionStatus.SCORED.value
            session.add(prediction)
            values.append(float(score["value"]))
            rows.append(
                {
                    "id": f"SCR_{prediction.id}",
                    "prediction_id": prediction.id,
                    "model_id": prediction.model_id,
                    "input_id": input_id,
                    "prediction_status": PredictionStatus.SCORED.value,
                    "value": float(score["value"]),
                    "success": bool(score.get("success", True)),
                    "failed_reason": score.get("failed_reason"),
                    "result_jsonb": score,
                    "scored_at": scored_at,
                }
            )
        penalty = _penalty(values, settings.missing_prediction_policy, contract.aggregation.ranking_direction)
        for prediction in missing:
            result.statuses[prediction.status] += 1
            if penalty is None:
                continue
            rows.append(
                {
                    "id": f"SCR_{prediction.id}",
                    "prediction_id": prediction.id,
                    "model_id": prediction.model_id,
                    "input_id": input_id,
                    "prediction_status": prediction.status,
                    "value": penalty,
                    "success": False,
                    "failed_reason": prediction.failed_reason,
                    "result_jsonb": {
                        "value": penalty,
                        "success": False,
                        "failed_reason": prediction.failed_reason,
                        "penalty": settings.missing_prediction_policy,
                    },
                    "scored_at": scored_at,
                }
            )
        result.statuses["SCORED"] += len(values)
    if rows:
        session.execute(upsert_statement(session, Score.__table__, ["prediction_id"]), rows)
    return len(rows)


def write_snapshots(
    session: Session, contract: CrunchContract, settings: Settings, scored_at: datetime, now: datetime
) -> int:
    """Recompute every model's snapshot for the period holding ``scored_at``, from its scores."""
    period = timedelta(seconds=settings.snapshot_period_seconds)
    start = floor_time(scored_at, settings.snapshot_period_seconds)
    end = start + period
    in_period = (Score.scored_at >= start) & (Score.scored_at < end)
    counts = session.exec(
        select(
            Score.model_id,
            func.count(),
            func.sum(Score.value),
            func.sum(case((col(Score.success).is_(True), 1), else_=0)),
            func.sum(case((Score.prediction_status == PredictionStatus.FAILED.value, 1), else_=0)),
            func.sum(case((Score.prediction_status == PredictionStatus.ABSENT.value, 1), else_=0)),
        )
        .where(in_period)
        .group_by(Score.model_id)
    ).all()
    results: dict[str, list[dict[str, Any]]] = {}
    for model_id, result_json in session.exec(
        select(Score.model_id, Score.result_jsonb).where(in_period, col(Score.success).is_(True))
    ):
        results.setdefault(model_id, []).append(result_json)
    rows = [
        {
            "id": f"SNAP_{model_id}_{start:%Y%m%dT%H%M%S}",
            "model_id": model_id,
            "period_start": start,
            "period_end": end,
            "prediction_count": int(count),
            "scored_count": int(scored or 0),
            "failed_count": int(failed or 0),
            "absent_count": int(absent or 0),
            "value_sum": float(value_sum or 0.0),
            "result_summary_jsonb": contract.aggregate_snapshot(results.get(model_id, [])),
            "meta_jsonb": {},
            "created_at": now,
            "updated_at": now,
        }
        for model_id, count, value_sum, scored, failed, absent in counts
    ]
    if rows:
        session.execute(
            upsert_statement(
                session,
                Snapshot.__table__,
                ["model_id", "period_start"],
                update=[
                    "prediction_count",
                    "scored_count",
                    "failed_count",
                    "absent_count",
                    "value_sum",
                    "result_summary_jsonb",
                    "updated_at",
                ],
            ),
            rows,
        )
    return len(rows)


def snapshot_frame(session: Session, since: datetime, until: datetime | None = None) -> pl.DataFrame:
    """Snapshots whose period ends after ``since`` (and starts before ``until``), as a DataFrame."""
    query = select(
        Snapshot.model_id,
        Snapshot.period_start,
        Snapshot.period_end,
        Snapshot.value_sum,
        Snapshot.prediction_count,
        Snapshot.scored_count,
        Snapshot.failed_count,
        Snapshot.absent_count,
    ).where(Snapshot.period_end > since)
    if until is not None:
        query = query.where(Snapshot.period_start < until)
    rows = session.connection().execute(query).all()
    schema = {
        "model_id": pl.String,
        "period_start": pl.Datetime("us", "UTC"),
        "period_end": pl.Datetime("us", "UTC"),
        "value_sum": pl.Float64,
        "prediction_count": pl.Int64,
        "scored_count": pl.Int64,
        "failed_count": pl.Int64,
        "absent_count": pl.Int64,
    }
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def leaderboard_entries(session: Session, contract: CrunchContract, now: datetime) -> list[dict[str, Any]]:
    """Ranked entries: every window's score per model, from snapshots (one shared definition)."""
    windows = contract.aggregation.windows
    until = now + timedelta(microseconds=1)
    longest = max(w.hours for w in windows.values())
    totals = window_totals(session, now - timedelta(hours=longest), until)
    if not totals:
        return []
    metrics: dict[str, dict[str, float | None]] = {}
    for name, window in windows.items():
        for model_id, row in window_totals(session, now - timedelta(hours=window.hours), until).items():
            metrics.setdefault(model_id, {})[name] = row["score"]
    models = {m.id: m for m in session.exec(select(Model).where(col(Model.id).in_(list(totals))))}
    key, direction = contract.aggregation.ranking_key, contract.aggregation.ranking_direction
    entries = []
    for model_id, total in totals.items():
        model = models.get(model_id)
        model_metrics = {name: metrics.get(model_id, {}).get(name) for name in windows}
        entries.append(
            {
                "model_id": model_id,
                "model_name": model.name if model else model_id,
                "cruncher_name": model.player_name if model else "Unknown",
                "player_id": model.player_id if model else None,
                "metrics": model_metrics,
                "score": {
                    "metrics": model_metrics,
                    "ranking": {"key": key, "value": model_metrics.get(key), "direction": direction},
                },
                "prediction_count": total["prediction_count"],
                "scored_count": total["scored_count"],
                "failed_count": total["failed_count"],
                "absent_count": total["absent_count"],
            }
        )
    return contract.rank(entries, key, direction)


def rebuild_leaderboard(session: Session, contract: CrunchContract, now: datetime) -> str:
    entries = leaderboard_entries(session, contract, now)
    leaderboard_id = f"LBR_{now:%Y%m%dT%H%M%S.%f}"
    session.execute(
        upsert_statement(session, Leaderboard.__table__, ["created_at"], update=["entries_jsonb"]),
        [
            {
                "id": leaderboard_id,
                "created_at": now,
                "entries_jsonb": entries,
                "meta_jsonb": {"generated_by": "coordinator_core.services.score", "as_of": now.isoformat()},
            }
        ],
    )
    for entry in entries:
        session.execute(
            Model.__table__.update()
            .where(Model.__table__.c.id == entry["model_id"])  # type: ignore[attr-defined]
            .values(overall_score_jsonb={"rank": entry["rank"], **entry["metrics"]})
        )
    return leaderboard_id


def score_predictions(engine: Engine, contract: CrunchContract, settings: Settings, now: datetime) -> ScoreRunResult:
    """Score everything due at ``now`` in bounded batches; rebuild the leaderboard if anything changed."""
    result = ScoreRunResult()
    cursor: tuple[datetime, str] | None = None
    changed = False
    while True:
        with unit_of_work(engine) as session:
            advisory_lock(session, SCORE_LOCK)
            scored_at = scoring_time(session, now)
            query = select(Input).where(Input.status == InputStatus.RECEIVED.value, Input.resolvable_at <= now)
            if cursor is not None:
                query = query.where(tuple_(Input.resolvable_at, Input.id) > tuple_(*cursor))
            batch = list(
                session.exec(query.order_by(col(Input.resolvable_at), col(Input.id)).limit(settings.score_batch_size))
            )
            if not batch:
                break
            cursor = (batch[-1].resolvable_at, batch[-1].id)
            before = result.gave_up
            written = _score_batch(session, contract, settings, now, scored_at, batch, result)
            if written:
                write_snapshots(session, contract, settings, scored_at, now)
            changed = changed or bool(written) or result.gave_up > before
        if len(batch) < settings.score_batch_size:
            break
    if changed:
        with unit_of_work(engine) as session:
            result.leaderboard_id = rebuild_leaderboard(session, contract, now)
    log.info(
        "scoring at %s: %d rounds resolved, %d waiting, %d given up, %s",
        now,
        result.resolved,
        result.waiting,
        result.gave_up,
        dict(result.statuses),
    )
    return result
