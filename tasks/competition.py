"""Tasks over the competition services. Each takes timestamps and small values only."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from prefect import task

from coordinator_core.services import checkpoint, configs, ingest, predict, score
from tasks.context import get_runtime
from tasks.policy import policy


@task(name="seed-configs", **policy(2))
def seed_configs(as_of: datetime) -> list[str]:
    rt = get_runtime()
    return configs.seed_configs(rt.uow, rt.contract, rt.settings, as_of)


@task(name="ingest-scope", task_run_name="ingest-{scope_key}", **policy(3))
def ingest_scope(scope_key: str, as_of: datetime) -> dict[str, Any]:
    rt = get_runtime()
    scope = next(s for s in ingest.feed_scopes(rt.settings) if s.key == scope_key)
    result = ingest.ingest_scope(
        rt.uow, rt.source_for(scope.source), scope, as_of, rt.settings, rt.contract.history_seconds
    )
    return asdict(result)


@task(name="prune-feed-records", **policy(2))
def prune_feed_records(as_of: datetime) -> int:
    rt = get_runtime()
    return ingest.prune_records(rt.uow, as_of, rt.settings.feed_record_ttl_days)


@task(name="predict-round", **policy(1))
def predict_round(as_of: datetime) -> dict[str, Any]:
    rt = get_runtime()
    result = predict.predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, as_of)
    return {"inputs": result.inputs, "statuses": dict(result.statuses), "skipped": result.skipped}


@task(name="score-predictions", **policy(2))
def score_predictions(as_of: datetime) -> dict[str, Any]:
    rt = get_runtime()
    result = score.score_predictions(rt.uow, rt.contract, rt.settings, as_of)
    return {
        "resolved": result.resolved,
        "waiting": result.waiting,
        "gave_up": result.gave_up,
        "statuses": dict(result.statuses),
        "leaderboard_id": result.leaderboard_id,
    }


@task(name="build-checkpoints", **policy(2))
def build_checkpoints(as_of: datetime) -> list[str]:
    rt = get_runtime()
    return checkpoint.build_checkpoints(rt.uow, rt.contract, rt.settings, as_of)


@task(name="backtest-chunk", task_run_name="backtest-{start:%Y-%m-%d %H:%M}", **policy(0))
def backtest_chunk(start: datetime, end: datetime) -> dict[str, int]:
    """Run the competition at every virtual step in [start, end]."""
    from coordinator_core.services import backtest

    rt = get_runtime()
    times = list(backtest.virtual_times(start, end, backtest.step_seconds(rt)))
    return backtest.run_steps(rt, times)


@task(name="backfill-range", task_run_name="backfill-{source}-{subject}-{kind}-{granularity}", **policy(3))
def backfill_range(
    source: str, subject: str, kind: str, granularity: str, start: datetime, end: datetime, as_of: datetime
) -> dict[str, Any]:
    """Backfill one scope over [start, end] with a progress artifact; resumes on retry."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    from coordinator_core.feeds.base import FeedScope
    from coordinator_core.services.backfill import backfill

    rt = get_runtime()
    scope = FeedScope(source, subject, kind, granularity)
    artifact = cast(UUID, create_progress_artifact(progress=0.0, description=f"Backfill {scope.key} {start} → {end}"))
    span = max((end - start).total_seconds(), 1.0)

    def progress(cursor: datetime, _result: Any) -> None:
        update_progress_artifact(artifact, progress=min(100.0, 100.0 * (cursor - start).total_seconds() / span))

    result = backfill(rt.uow, rt.source_for(source), scope, start, end, as_of, progress)
    update_progress_artifact(artifact, progress=100.0)
    return {
        "scope": result.scope,
        "pages": result.pages,
        "fetched": result.fetched,
        "written": result.written,
        "gaps": [(g.first.isoformat(), g.last.isoformat(), g.count) for g in result.gaps],
    }
