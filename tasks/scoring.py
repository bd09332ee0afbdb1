"""Scoring one round as a task of its own, so that heavy rules (the games' CRPS grids, simulated
paths) can run in parallel on a Dask task runner (``flows.score_predictions(parallel=True)``).

The task gets the round's outputs, ground truth and scope (plain JSON values) and builds its
contract in the worker's process from the same environment (``tasks.context``).
"""

from __future__ import annotations

from typing import Any

from prefect import task

from tasks.context import get_runtime
from tasks.policy import TASK_DEFAULTS


@task(name="score-round", **TASK_DEFAULTS)
def score_round(outputs: list[Any], truth: dict[str, Any], scope: dict[str, Any]) -> list[Any]:
    """Each output's validated score, or the ``ValidationError`` that fails it."""
    rt = get_runtime()
    return rt.contract.score_batch(outputs, truth, scope, rt.settings.scoring_timeout_seconds)


def task_mapper(function: Any, jobs: list[tuple[Any, ...]]) -> list[Any]:
    """A ``services.score.Mapper`` that runs every job as a ``score-round`` task on the flow's task
    runner (``function`` is the contract's ``score_batch``, rebuilt in each worker)."""
    futures = [score_round.submit(list(outputs), dict(truth), dict(scope)) for outputs, truth, scope in jobs]
    return [future.result() for future in futures]
