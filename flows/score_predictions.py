"""Resolve and score what is due, write snapshots, rebuild and publish the leaderboard."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from prefect import flow

from coordinator_core import diagnostics
from coordinator_core.clock import resolve_now
from coordinator_core.domain import failures as failure_rules
from coordinator_core.reports import score_summary
from coordinator_core.services import score
from tasks.competition import score_predictions as score_predictions_task
from tasks.competition import score_report
from tasks.context import get_runtime
from tasks.reports import publish_leaderboard
from tasks.scoring import task_mapper


@flow(name="score-predictions", log_prints=True)
def score_predictions(as_of: datetime | None = None, parallel: bool = False) -> pl.DataFrame:
    """Returns the current leaderboard as a DataFrame.

    ``parallel``: every round's scoring rule runs as a ``score-round`` task on this flow's task
    runner, e.g. ``score_predictions.with_options(task_runner=DaskTaskRunner(...))(parallel=True)``;
    the reads and writes stay in the flow's process, in the same transactions as a sequential run.
    """
    now = resolve_now(as_of)
    if parallel:
        rt = get_runtime()
        due = diagnostics.due_input_ids(rt.engine, now)
        outcome = score.score_predictions(rt.uow, rt.contract, rt.settings, now, mapper=task_mapper)
        result = score_report(rt, now, due, outcome)
    else:
        result = score_predictions_task(now)
    failures = failure_rules.from_dicts(result["failures"])
    print(score_summary(result, now) + " | " + failure_rules.summary(result["statuses"], failures))
    return pl.DataFrame(publish_leaderboard())
