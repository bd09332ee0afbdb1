"""Read models for people: the leaderboard and checkpoints as polars DataFrames."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from coordinator_core import queries
from coordinator_core.db.repositories.checkpoints import CK, COLUMNS, checkpoint_row
from coordinator_core.domain.ranking import participant_label
from coordinator_core.emission import percents
from coordinator_core.ports import CheckpointRow


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


def latest_leaderboard(engine: Engine) -> tuple[Mapping[str, Any] | None, pl.DataFrame]:
    """The newest stored leaderboard (``id``, ``created_at``, ``entries_jsonb``, ``meta_jsonb``) and its frame."""
    with Session(engine) as session:
        board = queries.latest_leaderboard(session)
    return board, leaderboard_frame(board["entries_jsonb"] if board else [])


def checkpoint_frame(checkpoint: CheckpointRow) -> pl.DataFrame:
    """Per model: rank, participant, period score and frac64 reward."""
    emission = checkpoint.entries[0] if checkpoint.entries else {}
    rewards = {r["model_id"]: r["reward_pct"] for r in emission.get("model_rewards", [])}
    key = checkpoint.meta.get("ranking_key", "score_recent")
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
        for e in checkpoint.meta.get("ranking", [])
    ]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"rank": pl.Int64, "model": pl.String})


def checkpoints(engine: Engine, limit: int = 10) -> list[CheckpointRow]:
    """The newest ``limit`` checkpoints, newest period first."""
    with Session(engine) as session:
        rows = session.execute(select(*COLUMNS).order_by(CK.c.period_end.desc()).limit(limit)).all()
    return [checkpoint_row(r) for r in rows]


def hours_label(seconds: float) -> str:
    """``168 h`` (whole hours), else ``90 min``."""
    return f"{seconds / 3600:g} h" if seconds % 3600 == 0 else f"{seconds / 60:g} min"


def shadow_frames(report: Any) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A ``services.shadow.ShadowReport`` as three frames: the current and the candidate
    leaderboards over the window, and the emission diff per participant."""
    window = hours_label((report.end - report.start).total_seconds())

    def board(side: Any) -> pl.DataFrame:
        rewards = {r["model_id"]: r["reward_pct"] for r in side.emission.get("model_rewards") or []}
        shown = percents(list(rewards.items()))
        rows = [
            {
                "rank": e["rank"],
                "model": e["model_id"],
                "participant": participant_label(e.get("cruncher_name"), e.get("player_id")),
                f"{side.ranking_key} ({window}, {side.direction})": e["metrics"].get(side.ranking_key),
                "scored": e.get("scored_count", 0),
                "failed": e.get("failed_count", 0),
                "absent": e.get("absent_count", 0),
                "reward (frac64)": rewards.get(e["model_id"], 0),
                "reward %": shown.get(e["model_id"], 0.0),
            }
            for e in side.ranking
        ]
        return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"rank": pl.Int64, "model": pl.String})

    diff = [
        {
            "participant": r["participant"],
            "participant_id": r["participant_id"],
            "current (frac64)": r["current_pct"],
            "current %": r["current_percent"],
            "candidate (frac64)": r["candidate_pct"],
            "candidate %": r["candidate_percent"],
            "change (frac64)": r["change_pct"],
            "change (points)": r["change_pct"] / 10_000_000,
        }
        for r in report.diff
    ]
    frame = pl.DataFrame(diff) if diff else pl.DataFrame(schema={"participant": pl.String})
    return board(report.current), board(report.candidate), frame
