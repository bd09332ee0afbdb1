"""Tasks over the competition services. Each takes timestamps and small values only."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from prefect import task

from coordinator_core.runtime import get_runtime
from coordinator_core.services import checkpoint, configs, ingest, predict, score
from tasks.policy import policy


@task(name="seed-configs", **policy(2))
def seed_configs(as_of: datetime) -> list[str]:
    rt = get_runtime()
    return configs.seed_configs(rt.engine, rt.contract, rt.settings, as_of)


@task(name="ingest-scope", task_run_name="ingest-{scope_key}", **policy(3))
def ingest_scope(scope_key: str, as_of: datetime) -> dict[str, Any]:
    rt = get_runtime()
    scope = next(s for s in ingest.feed_scopes(rt.settings) if s.key == scope_key)
    result = ingest.ingest_scope(rt.engine, rt.source_for(scope.source), scope, as_of, rt.settings)
    return asdict(result)


@task(name="prune-feed-records", **policy(2))
def prune_feed_records(as_of: datetime) -> int:
    rt = get_runtime()
    return ingest.prune_records(rt.engine, as_of, rt.settings.feed_record_ttl_days)


@task(name="predict-round", **policy(1))
def predict_round(as_of: datetime) -> dict[str, Any]:
    rt = get_runtime()
    result = predict.predict_round(rt.engine, rt.gateway, rt.contract, rt.settings, as_of)
    return {"inputs": result.inputs, "statuses": dict(result.statuses), "skipped": result.skipped}


@task(name="score-predictions", **policy(2))
def score_predictions(as_of: datetime) -> dict[str, Any]:
    rt = get_runtime()
    result = score.score_predictions(rt.engine, rt.contract, rt.settings, as_of)
    return {"resolved": result.resolved, "waiting": result.waiting, "gave_up": result.gave_up,
            "statuses": dict(result.statuses), "leaderboard_id": result.leaderboard_id}


@task(name="build-checkpoints", **policy(2))
def build_checkpoints(as_of: datetime) -> list[str]:
    rt = get_runtime()
    return checkpoint.build_checkpoints(rt.engine, rt.contract, rt.settings, as_of)


@task(name="backtest-chunk", task_run_name="backtest-{start:%Y-%m-%d %H:%M}", **policy(0))
def backtest_chunk(start: datetime, end: datetime) -> dict[str, int]:
    """Run the competition at every virtual step in [start, end]."""
    from coordinator_core.services import backtest

    rt = get_runtime()
    times = list(backtest.virtual_times(start, end, backtest.step_seconds(rt)))
    return backtest.run_steps(rt, times)
