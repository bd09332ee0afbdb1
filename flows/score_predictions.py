"""Resolve and score what is due, write snapshots, rebuild and publish the leaderboard."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from prefect import flow

from coordinator_core.clock import resolve_now
from coordinator_core.reports import score_summary
from tasks.competition import score_predictions as score_predictions_task
from tasks.reports import publish_leaderboard


@flow(name="score-predictions", log_prints=True)
def score_predictions(as_of: datetime | None = None) -> pl.DataFrame:
    """Returns the current leaderboard as a DataFrame."""
    now = resolve_now(as_of)
    result = score_predictions_task(now)
    print(score_summary(result, now))
    return pl.DataFrame(publish_leaderboard())
