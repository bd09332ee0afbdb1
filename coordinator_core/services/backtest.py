"""Backtest: the whole competition over a historical window on a virtual clock, through the same
services as live (ingest → predict → score → checkpoint at every step)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from coordinator_core.bootstrap import Runtime
from coordinator_core.clock import floor_time
from coordinator_core.domain.failures import SCORING_FUNCTION, kinds
from coordinator_core.services.checkpoint import build_checkpoints
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import predict_round
from coordinator_core.services.score import score_predictions


def step_seconds(runtime: Runtime) -> int:
    """The virtual clock's step: the gcd of the prediction intervals (rounds fall on it; every step
    ingests everything observed by then, so the feed's granularity does not need to divide it)."""
    with runtime.uow() as work:
        intervals = [int(c.schedule.get("prediction_interval_seconds") or 60) for c in work.configs.active()]
    step = 0
    for interval in intervals:
        step = math.gcd(step, interval)
    return max(step or runtime.settings.granularity_seconds, 1)


def virtual_times(start: datetime, end: datetime, step: int) -> Iterator[datetime]:
    now = floor_time(start, step)
    if now < start:
        now += timedelta(seconds=step)
    while now <= end:
        yield now
        now += timedelta(seconds=step)


def run_steps(
    runtime: Runtime,
    times: list[datetime],
    progress: Callable[[datetime], None] | None = None,
    failures: Counter[tuple[str, str]] | None = None,
) -> dict[str, int]:
    """Run one competition step at each virtual time; returns totals (``failed``, ``absent``: as
    scored; ``scoring_failed``: of those failed, the scoring function's). ``failures``, when given,
    gathers the scoring runs' failures by (kind, reason)."""
    totals = dict.fromkeys(
        ("steps", "rounds", "predictions", "scored", "failed", "absent", "scoring_failed", "checkpoints"), 0
    )
    # virtual time: no wall-clock deadline may decide a result, so a backtest gives the same
    # results whatever the machine's load (BACKTEST_MODEL_TIMEOUT_SECONDS caps a call that hangs)
    gateway = runtime.gateway
    gateway.virtual_timeout_seconds = runtime.settings.backtest_model_timeout_seconds
    try:
        _steps(runtime, times, totals, progress, failures)
    finally:
        gateway.virtual_timeout_seconds = None
    return totals


def _steps(
    runtime: Runtime,
    times: list[datetime],
    totals: dict[str, int],
    progress: Callable[[datetime], None] | None,
    failures: Counter[tuple[str, str]] | None,
) -> None:
    for now in times:
        ingest(runtime.uow, runtime.sources, runtime.settings, now, runtime.contract.history_seconds)
        round_result = predict_round(runtime.uow, runtime.gateway, runtime.contract, runtime.settings, now)
        score_result = score_predictions(runtime.uow, runtime.contract, runtime.settings, now)
        checkpoints = build_checkpoints(runtime.uow, runtime.contract, runtime.settings, now)
        totals["steps"] += 1
        totals["rounds"] += len(round_result.inputs)
        totals["predictions"] += sum(round_result.statuses.values())
        totals["scored"] += score_result.statuses.get("SCORED", 0)
        totals["failed"] += score_result.statuses.get("FAILED", 0)
        totals["absent"] += score_result.statuses.get("ABSENT", 0)
        totals["scoring_failed"] += kinds(score_result.failures)[SCORING_FUNCTION]
        if failures is not None:
            failures.update(score_result.failures)
        totals["checkpoints"] += len(checkpoints)
        if progress:
            progress(now)


def prepare(runtime: Runtime, start: datetime) -> None:
    """Seed configs before the first step."""
    seed_configs(runtime.uow, runtime.contract, runtime.settings, start)


def default_window(runtime: Runtime, days: int, now: datetime) -> tuple[datetime, datetime]:
    """The last ``days`` of the primary source's data (a dataset's end), or the last ``days``
    before ``now`` for a source without a fixed end."""
    granularity = timedelta(seconds=runtime.settings.granularity_seconds)
    ends = [runtime.source.history_end(subject) for subject in runtime.settings.subjects]
    if all(end is not None for end in ends):
        end = min(e for e in ends if e is not None) + granularity
    else:
        end = floor_time(now, runtime.settings.granularity_seconds)
    return end - timedelta(days=days), end


def chunks(
    start: datetime, end: datetime, step: int, per_chunk: timedelta = timedelta(days=1)
) -> list[tuple[datetime, datetime]]:
    """Split [start, end] into consecutive windows of virtual time, each holding whole steps."""
    times = list(virtual_times(start, end, step))
    if not times:
        return []
    out, first = [], times[0]
    for previous, current in zip(times, times[1:], strict=False):
        if current - first >= per_chunk:
            out.append((first, previous))
            first = current
    out.append((first, times[-1]))
    return out
