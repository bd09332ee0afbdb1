"""Read models for people: the leaderboard and checkpoints as polars DataFrames."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from coordinator_core.db.engine import unit_of_work
from coordinator_core.db.tables import Checkpoint, Leaderboard


def leaderboard_frame(entries: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per model: rank, model, participant, every window's score, prediction counts."""
    rows = [
        {
            "rank": e["rank"],
            "model": e["model_id"],
            "participant": e.get("cruncher_name"),
            **{name: value for name, value in e["metrics"].items()},
            "scored": e.get("scored_count", 0),
            "failed": e.get("failed_count", 0),
            "absent": e.get("absent_count", 0),
        }
        for e in entries
    ]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"rank": pl.Int64, "model": pl.String})


def latest_leaderboard(engine: Engine) -> tuple[Leaderboard | None, pl.DataFrame]:
    with unit_of_work(engine) as session:
        board = session.exec(select(Leaderboard).order_by(col(Leaderboard.created_at).desc()).limit(1)).first()
    return board, leaderboard_frame(board.entries_jsonb if board else [])


def checkpoint_frame(checkpoint: Checkpoint) -> pl.DataFrame:
    """Per model: rank, participant, period score and frac64 reward."""
    emission = checkpoint.entries_jsonb[0] if checkpoint.entries_jsonb else {}
    rewards = {r["model_id"]: r["reward_pct"] for r in emission.get("model_rewards", [])}
    key = checkpoint.meta_jsonb.get("ranking_key", "score_recent")
    rows = [
        {
            "rank": e["rank"],
            "model": e["model_id"],
            "participant": e.get("player_id"),
            "period_score": e["metrics"].get(key),
            "scored": e.get("scored_count", 0),
            "reward_pct": rewards.get(e["model_id"], 0),
            "reward_percent": rewards.get(e["model_id"], 0) / 1e7,
        }
        for e in checkpoint.meta_jsonb.get("ranking", [])
    ]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"rank": pl.Int64, "model": pl.String})


def checkpoints(engine: Engine, limit: int = 10) -> list[Checkpoint]:
    with unit_of_work(engine) as session:
        return list(session.exec(select(Checkpoint).order_by(col(Checkpoint.period_end).desc()).limit(limit)))
