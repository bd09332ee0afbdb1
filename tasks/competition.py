"""Tasks over the competition services. Each takes timestamps and small values only."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from prefect import get_run_logger, task

from coordinator_core import diagnostics
from coordinator_core.domain import failures as failure_rules
from coordinator_core.services import checkpoint, configs, ingest, predict, score
from tasks import alerts
from tasks.context import get_runtime
from tasks.policy import policy

ONE_MICROSECOND = timedelta(microseconds=1)


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
    stale = diagnostics.stale_feed(scope, result.watermark, as_of, rt.settings.max_staleness_seconds)
    if stale is not None:
        get_run_logger().warning(
            "%s is stale: newest record %s observed %s ago (bound %d s), %d fetched",
            scope_key,
            stale.watermark,
            diagnostics.age(stale.age_seconds),
            stale.bound_seconds,
            result.fetched,
        )
        alerts.feed_stale(stale, as_of, result.fetched, result.written)
    return {**asdict(result), "stale": stale is not None}


@task(name="prune-feed-records", **policy(2))
def prune_feed_records(as_of: datetime) -> int:
    rt = get_runtime()
    return ingest.prune_records(rt.uow, as_of, rt.settings.feed_record_ttl_days)


@task(name="predict-round", **policy(1))
def predict_round(as_of: datetime) -> dict[str, Any]:
    rt = get_runtime()
    result = predict.predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, as_of)
    found = diagnostics.failures(rt.engine, as_of, as_of + ONE_MICROSECOND) if result.inputs else None
    failed = found.failures if found else Counter()
    get_run_logger().info("round at %s: %s", as_of.isoformat(), failure_rules.summary(result.statuses, failed))
    if found and found.groups:
        threshold = rt.settings.alert_model_failing_rounds
        this_round: dict[str, int] = {}
        for group in found.groups:
            this_round[group.model_id] = this_round.get(group.model_id, 0) + group.count
        streaks = diagnostics.failing_streaks(rt.engine, this_round, threshold + max(this_round.values()))
        for model_id, streak in streaks.items():
            if streak.rounds >= threshold > streak.rounds - this_round[model_id]:  # this round made it that long
                alerts.model_failing(streak, threshold, as_of)
    return {
        "inputs": result.inputs,
        "statuses": dict(result.statuses),
        "skipped": result.skipped,
        "failures": failure_rules.as_dict(failed),
    }


@task(name="score-predictions", **policy(2))
def score_predictions(as_of: datetime) -> dict[str, Any]:
    """Score what is due; then alert on rounds closed with nothing scored, and fail (permanently,
    after everything is committed) when the scoring function failed on too many predictions."""
    rt = get_runtime()
    due = diagnostics.due_input_ids(rt.engine, as_of)
    return score_report(rt, as_of, due, score.score_predictions(rt.uow, rt.contract, rt.settings, as_of))


def score_report(rt: Any, as_of: datetime, due: Any, result: score.ScoreRunResult) -> dict[str, Any]:
    """After a scoring run (sequential, or parallel from the flow): log its counts, alert on rounds
    closed with nothing scored, fail when the scoring function failed too often; its summary."""
    get_run_logger().info(
        "scoring at %s: %d resolved, %d waiting, %d given up | %s",
        as_of.isoformat(),
        result.resolved,
        result.waiting,
        result.gave_up,
        failure_rules.summary(result.statuses, result.failures),
    )
    unscored = diagnostics.unscored_rounds(rt.engine, due) if result.resolved or result.gave_up else []
    alerts.round_unscored(unscored, as_of)
    failure_rules.check_scoring_function(
        result.statuses.get("SCORED", 0),
        result.failures,
        rt.settings.scoring_failure_limit,
        rt.settings.scoring_failure_min_count,
        f"scoring at {as_of.isoformat()}",
    )
    return {
        "resolved": result.resolved,
        "waiting": result.waiting,
        "gave_up": result.gave_up,
        "statuses": dict(result.statuses),
        "leaderboard_id": result.leaderboard_id,
        "late": result.late,
        "failures": failure_rules.as_dict(result.failures),
        "unscored": [r.input_id for r in unscored],
    }


@task(name="build-checkpoints", **policy(2))
def build_checkpoints(as_of: datetime) -> list[str]:
    rt = get_runtime()
    written = checkpoint.build_checkpoints(rt.uow, rt.contract, rt.settings, as_of)
    for checkpoint_id in written:  # the stored row says whether it is gated
        with rt.uow() as work:
            row = work.checkpoints.get(checkpoint_id)
        gate = diagnostics.checkpoint_gate(row) if row is not None else None
        if gate is not None:
            get_run_logger().warning(
                "checkpoint %s is gated: gate %s, rewards total %d", checkpoint_id, gate.gates, gate.total
            )
            alerts.checkpoint_gated(gate)
    return written


@task(name="backtest-chunk", task_run_name="backtest-{start:%Y-%m-%d %H:%M}", **policy(0))
def backtest_chunk(start: datetime, end: datetime) -> dict[str, Any]:
    """Run the competition at every virtual step in [start, end]; totals and, under ``failures``,
    the scoring runs' failures by kind and reason."""
    from coordinator_core.services import backtest

    rt = get_runtime()
    times = list(backtest.virtual_times(start, end, backtest.step_seconds(rt)))
    found: failure_rules.Failures = Counter()
    totals: dict[str, Any] = dict(backtest.run_steps(rt, times, failures=found))
    totals["failures"] = failure_rules.as_dict(found)
    return totals


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
