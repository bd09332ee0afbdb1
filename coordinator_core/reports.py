"""Read models for people: the leaderboard and checkpoints as polars DataFrames, and the one-line
summaries of runs.

Names people read, the same in every table, frame, artifact and CLI output:

* a participant is shown by ``participant_label`` (the display name, the id when there is none);
  tables of money also show ``participant_id``, the key shares are paid by;
* a window's score column carries its hours (``score_recent (24 h)``); a checkpoint's score column
  says it is over the period and how long the period is;
* shares are ``reward (frac64)`` (1,000,000,000 = 100 %) next to ``reward %`` (6 decimals,
  apportioned so that a full emission sums to exactly 100);
* a run that had nothing to do says ``up to date`` (``*_summary``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
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


def format_cell(column: str, value: Any) -> str:
    """One table cell as people read it, the same in the CLI and the artifacts: floats with 4
    decimals (percent columns, ``%``: 6, as apportioned), integers with thousands separators
    (frac64 shares are easier to read so; not ranks), missing values as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.6f}" if column.endswith("%") else f"{value:,.4f}"
    if isinstance(value, int) and not isinstance(value, bool) and column != "rank":
        return f"{value:,}"
    return str(value)


def window_hours(contract: Any) -> dict[str, int]:
    """``{window name: hours}`` of a contract's aggregation, in contract order."""
    return {name: window.hours for name, window in contract.aggregation.windows.items()}


def window_column(name: str, hours: int | None) -> str:
    """A window's column name with its hours, ``score_recent (24 h)`` (as on the board page)."""
    return f"{name} ({hours} h)" if hours is not None else name


def leaderboard_frame(entries: list[dict[str, Any]], windows: Mapping[str, int]) -> pl.DataFrame:
    """One row per model: rank, model, participant (``participant_label``), every window's score in
    a column named with its hours (``windows``: name → hours), prediction counts; with an ensemble
    in the contract, the contribution (the virtual ensembles: no rank, participant ``virtual
    ensemble``, listed last); then the contract's metric columns over the ranking window
    (``stats``, ``domain.metrics``: one column per key, named by it; ``n`` as an integer)."""
    contribution = any("contribution" in e for e in entries)
    stats = metric_columns(entries)
    ordered = sorted(entries, key=lambda e: (e.get("rank") is None, e.get("rank") or 0, str(e["model_id"])))
    rows = [
        {
            "rank": e.get("rank"),
            "model": e["model_id"],
            "participant": participant_label(e.get("cruncher_name"), e.get("player_id")),
            **{window_column(name, windows.get(name)): value for name, value in e["metrics"].items()},
            "scored": e.get("scored_count", 0),
            "failed": e.get("failed_count", 0),
            "absent": e.get("absent_count", 0),
            **({"contribution": e.get("contribution")} if contribution else {}),
            **{column: _stat(column, (e.get("stats") or {}).get(column)) for column in stats},
        }
        for e in ordered
    ]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"rank": pl.Int64, "model": pl.String})


def split_metrics(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """A leaderboard frame as two narrower tables for a terminal: the ranking (every column up to
    the counts and the contribution) and ``rank``, ``model`` with the metric columns (``None``
    without metrics)."""
    base = [c for c in frame.columns if c not in _after_counts(frame.columns)]
    rest = _after_counts(frame.columns)
    return frame.select(base), (frame.select(["rank", "model", *rest]) if rest else None)


def _after_counts(columns: Sequence[str]) -> list[str]:
    last = max((i for i, c in enumerate(columns) if c in ("absent", "contribution")), default=len(columns) - 1)
    return list(columns[last + 1 :])


def metrics_note(contract: Any) -> str:
    """What the metric columns are computed over: ``metrics over score_recent (24 h)``."""
    key = contract.aggregation.ranking_key
    return f"metrics over {window_column(key, contract.aggregation.windows[key].hours)}"


def metric_columns(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metric keys of the entries' ``stats``, in display order (``domain.metrics.ordered_columns``)."""
    from coordinator_core.domain.metrics import ordered_columns

    return ordered_columns(key for e in entries for key in e.get("stats") or {})


def _stat(column: str, value: Any) -> Any:
    if value is None:
        return None
    return int(value) if column == "n" else float(value)


def latest_leaderboard(engine: Engine, windows: Mapping[str, int]) -> tuple[Mapping[str, Any] | None, pl.DataFrame]:
    """The newest stored leaderboard (``id``, ``created_at``, ``entries_jsonb``, ``meta_jsonb``) and its
    frame; ``windows`` (name → hours, ``window_hours(contract)``) label the score columns."""
    with Session(engine) as session:
        board = queries.latest_leaderboard(session)
    return board, leaderboard_frame(board["entries_jsonb"] if board else [], windows)


def period_column(checkpoint: CheckpointRow) -> str:
    """The checkpoint's score column: the ranking key over the period, with the period's hours."""
    key = checkpoint.meta.get("ranking_key", "score")
    return f"{key} over the period ({hours_label((checkpoint.period_end - checkpoint.period_start).total_seconds())})"


def checkpoint_frame(checkpoint: CheckpointRow) -> pl.DataFrame:
    """Per model: rank, participant (label and id: money is keyed by the id), the period score
    (column named with the period's hours), scored predictions, and the reward in frac64 next to
    the same reward in percent (apportioned: a full emission sums to exactly 100)."""
    emission = checkpoint.emission
    rewards = {r["model_id"]: r["reward_pct"] for r in emission.get("model_rewards", [])}
    shown = percents(list(rewards.items()))
    key = checkpoint.meta.get("ranking_key", "score_recent")
    column = period_column(checkpoint)
    ranking = checkpoint.meta.get("ranking", [])
    slots = any("slot" in e for e in ranking)  # clone clusters: one emission slot each
    contribution = any("contribution" in e for e in ranking)
    rows = [
        {
            "rank": e["rank"],
            "model": e["model_id"],
            "participant": participant_label(e.get("cruncher_name"), e.get("player_id")),
            "participant_id": e.get("player_id"),
            column: e["metrics"].get(key),
            "scored": e.get("scored_count", 0),
            **({"slot": e.get("slot")} if slots else {}),
            **({"contribution": e.get("contribution")} if contribution else {}),
            "reward (frac64)": rewards.get(e["model_id"], 0),
            "reward %": shown.get(e["model_id"], 0.0),
        }
        for e in ranking
    ]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"rank": pl.Int64, "model": pl.String})


def participant_frame(checkpoint: CheckpointRow) -> pl.DataFrame:
    """Per participant (``EmissionCheckpoint.cruncher_rewards``): label, id, models, reward in frac64
    and in percent."""
    names = {
        e.get("player_id"): participant_label(e.get("cruncher_name"), e.get("player_id"))
        for e in checkpoint.meta.get("ranking", [])
    }
    rewards = [r for r in checkpoint.emission.get("cruncher_rewards") or [] if isinstance(r, Mapping)]
    shown = percents([(str(r.get("cruncher_id")), int(r.get("reward_pct") or 0)) for r in rewards])
    rows = [
        {
            "cruncher_index": r.get("cruncher_index"),
            "participant": names.get(r.get("cruncher_id")) or str(r.get("cruncher_id")),
            "participant_id": r.get("cruncher_id"),
            "models": ", ".join(r.get("model_ids") or []),
            "reward (frac64)": int(r.get("reward_pct") or 0),
            "reward %": shown.get(str(r.get("cruncher_id")), 0.0),
        }
        for r in rewards
    ]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"participant": pl.String})


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


# -- one-line summaries of runs ("up to date" when there was nothing to do) ----------------------------
def _when(now: datetime) -> str:
    return now.isoformat()


def ingest_summary(results: Sequence[Mapping[str, Any]], now: datetime) -> str:
    written = sum(int(r.get("written") or 0) for r in results)
    if not written:
        return f"up to date: no new feed record at {_when(now)} ({len(results)} scope(s) checked)"
    parts = "; ".join(f"{r['scope']}: {int(r.get('written') or 0):,} rows written" for r in results)
    return f"ingested at {_when(now)}: {parts}"


def predict_summary(result: Mapping[str, Any], now: datetime) -> str:
    inputs = list(result.get("inputs") or [])
    skipped = dict(result.get("skipped") or {})
    extra = (
        f" ({len(skipped)} config(s) skipped: {'; '.join(f'{k}: {v}' for k, v in skipped.items())})" if skipped else ""
    )
    if not inputs:
        return f"up to date: no round due at {_when(now)}{extra}"
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(dict(result.get("statuses") or {}).items()))
    return f"predicted at {_when(now)}: {len(inputs)} round(s), predictions {statuses or 'none'}{extra}"


def score_summary(result: Mapping[str, Any], now: datetime) -> str:
    resolved, waiting, gave_up = (int(result.get(k) or 0) for k in ("resolved", "waiting", "gave_up"))
    if not resolved and not gave_up and result.get("leaderboard_id") is None:
        tail = f" ({waiting} round(s) waiting for their ground truth)" if waiting else ""
        return f"up to date: nothing to score at {_when(now)}{tail}"
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(dict(result.get("statuses") or {}).items()))
    board = result.get("leaderboard_id")
    return (
        f"scored at {_when(now)}: {resolved} round(s) resolved, {waiting} waiting, {gave_up} given up; "
        f"predictions {statuses or 'none'}" + (f"; leaderboard {board}" if board else "")
    )


def checkpoint_summary(written: Sequence[str], now: datetime) -> str:
    if not written:
        return f"up to date: no checkpoint due at {_when(now)}"
    return f"checkpoints written at {_when(now)}: {', '.join(written)}"


def backfill_summary(results: Sequence[Mapping[str, Any]]) -> str:
    written = sum(int(r.get("written") or 0) for r in results)
    gaps = sum(len(r.get("gaps") or []) for r in results)
    if not written:
        return f"up to date: nothing new to backfill ({len(results)} scope(s), {gaps} gap(s) left)"
    return f"backfilled {written:,} rows over {len(results)} scope(s), {gaps} gap(s) left"


def backtest_summary(totals: Mapping[str, int]) -> str:
    if not any(int(totals.get(k) or 0) for k in ("rounds", "predictions", "scored", "checkpoints")):
        return f"up to date: {int(totals.get('steps') or 0)} steps replayed, nothing new to write"
    return ", ".join(f"{k} {int(v):,}" for k, v in totals.items())
