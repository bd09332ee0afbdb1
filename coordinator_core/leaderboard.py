"""Window scores and ranking: one definition shared by the leaderboard, reports and checkpoints.

A model's score over a set of snapshots is ``sum(value_sum) / sum(prediction_count)``: the mean of
every counted prediction (scored ones and penalised FAILED/ABSENT ones), weighted by count.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import polars as pl


def window_score(value_sum: float, count: int) -> float | None:
    """Mean score of ``count`` counted predictions, ``None`` when there are none."""
    return value_sum / count if count else None


def window_totals(session: Any, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """Per model, over snapshots with ``since < period_end`` and ``period_start < until``: summed
    counts and ``score`` = Σ value_sum / Σ prediction_count. One indexed GROUP BY."""
    from sqlalchemy import func, select

    from coordinator_core.db.tables import Snapshot

    s = Snapshot.__table__.c  # type: ignore[attr-defined]
    rows = (
        session.connection()
        .execute(
            select(
                s.model_id,
                func.sum(s.value_sum),
                func.sum(s.prediction_count),
                func.sum(s.scored_count),
                func.sum(s.failed_count),
                func.sum(s.absent_count),
            )
            .where(s.period_end > since, s.period_start < until)
            .group_by(s.model_id)
        )
        .all()
    )
    return {
        model_id: {
            "value_sum": float(value_sum or 0.0),
            "prediction_count": int(count or 0),
            "scored_count": int(scored or 0),
            "failed_count": int(failed or 0),
            "absent_count": int(absent or 0),
            "score": window_score(float(value_sum or 0.0), int(count or 0)),
        }
        for model_id, value_sum, count, scored, failed, absent in rows
    }


def aggregate_snapshots(snapshots: pl.LazyFrame) -> pl.LazyFrame:
    """Per model: counts and the window score. Input columns: model_id, value_sum, prediction_count,
    scored_count, failed_count, absent_count."""
    return (
        snapshots.group_by("model_id")
        .agg(
            pl.col("value_sum").sum(),
            pl.col("prediction_count").sum(),
            pl.col("scored_count").sum(),
            pl.col("failed_count").sum(),
            pl.col("absent_count").sum(),
        )
        .with_columns(
            pl.when(pl.col("prediction_count") > 0)
            .then(pl.col("value_sum") / pl.col("prediction_count"))
            .otherwise(None)
            .alias("score")
        )
    )


def default_rank(entries: list[dict[str, Any]], ranking_key: str, direction: str) -> list[dict[str, Any]]:
    """Sort entries by ``entry["metrics"][ranking_key]`` and number them 1..N.

    Missing scores rank last. Ties are broken deterministically: more scored predictions first,
    then ``model_id`` ascending. Returns new dicts with ``rank`` set.
    """
    descending = direction == "desc"

    def key(entry: dict[str, Any]) -> tuple[int, float, int, str]:
        value = entry.get("metrics", {}).get(ranking_key)
        missing = value is None or not math.isfinite(float(value))
        metric = 0.0 if missing else float(value)
        return (
            1 if missing else 0,
            -metric if descending else metric,
            -int(entry.get("scored_count", 0)),
            str(entry["model_id"]),
        )

    ranked = sorted(entries, key=key)
    return [{**entry, "rank": position} for position, entry in enumerate(ranked, start=1)]
