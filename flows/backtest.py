"""Run the whole competition over a historical window on a virtual clock, as fast as it goes,
through the same services as live; one task run per simulated day."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from uuid import UUID

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)

from coordinator_core import backtest_report, reports
from coordinator_core.clock import ensure_utc
from coordinator_core.domain import failures as failure_rules
from coordinator_core.services import backtest as service
from tasks.competition import backtest_chunk, seed_configs
from tasks.context import get_runtime
from tasks.reports import checkpoint_markdown, publish_leaderboard


@dataclass
class BacktestReport:
    start: datetime
    end: datetime
    totals: dict[str, int]
    leaderboard: pl.DataFrame
    checkpoints: list[tuple[str, pl.DataFrame]] = field(default_factory=list)
    failures: failure_rules.Failures = field(default_factory=Counter)  # (kind, reason) -> predictions, as scored
    report_path: Path | None = None  # the HTML report (coordinator_core.backtest_report), when written
    report_seconds: float = 0.0  # how long rendering it took
    report_error: str | None = None  # why it was not written

    @property
    def failure_summary(self) -> str:
        statuses = {name.upper(): self.totals.get(name, 0) for name in ("scored", "failed", "absent")}
        return failure_rules.summary(statuses, self.failures)


@flow(name="backtest", log_prints=True)
def backtest(
    start: datetime | None = None,
    end: datetime | None = None,
    days: int = 14,
    report_path: str | None = None,
    html_report: bool = True,
) -> BacktestReport:
    """Backtest over [start, end] (default: the last ``days`` of the replay data). With
    ``html_report``, writes the HTML report to ``report_path`` (default
    ``reports/backtest-<start>-<end>.html`` in the working folder) and links it in the
    ``backtest-report`` markdown artifact."""
    log = get_run_logger()
    if html_report:
        backtest_report.warm_up()  # the chart engine loads while the backtest runs
    runtime = get_runtime()
    default_start, default_end = service.default_window(runtime, days, datetime.now(UTC))
    start = ensure_utc(start, "start") if start else default_start
    end = ensure_utc(end, "end") if end else default_end
    if end <= start:
        raise ValueError(f"backtest: end {end.isoformat()} must be after start {start.isoformat()}")
    seed_configs(start)
    windows = service.chunks(start, end, service.step_seconds(runtime))
    progress = cast(
        UUID, create_progress_artifact(progress=0.0, key="backtest-progress", description="Backtest progress")
    )
    totals: dict[str, int] = {}
    found: failure_rules.Failures = Counter()
    settings = runtime.settings
    for index, (chunk_start, chunk_end) in enumerate(windows, start=1):
        chunk = backtest_chunk(chunk_start, chunk_end)
        found.update(failure_rules.from_dicts(chunk.pop("failures", [])))
        totals = {k: totals.get(k, 0) + v for k, v in chunk.items()}
        update_progress_artifact(progress, progress=100.0 * index / len(windows))
        log.info("backtest %d/%d up to %s: %s", index, len(windows), chunk_end.isoformat(), chunk)
        # a broken scoring function fails the backtest as soon as it shows, over everything run so far
        failure_rules.check_scoring_function(
            totals.get("scored", 0),
            found,
            settings.scoring_failure_limit,
            settings.scoring_failure_min_count,
            f"backtest {start.isoformat()} → {chunk_end.isoformat()}",
        )
    statuses = {name.upper(): totals.get(name, 0) for name in ("scored", "failed", "absent")}
    log.info("backtest predictions as scored: %s", failure_rules.summary(statuses, found))
    publish_leaderboard()
    _, leaderboard = reports.latest_leaderboard(runtime.engine, reports.window_hours(runtime.contract))
    print(reports.backtest_summary(totals))
    in_window = [c for c in reports.checkpoints(runtime.engine, limit=100) if start < c.period_end <= end]
    checkpoint_frames = [(c.id, reports.checkpoint_frame(c)) for c in in_window]
    summary = [
        f"# Backtest {start.isoformat()} → {end.isoformat()}",
        "",
        f"Totals: {totals}",
        "",
        reports.backtest_summary(totals),
        "",
        "Failures (by kind, top reasons): " + failure_rules.summary(statuses, found),
        "",
    ]
    summary += [md for c in in_window if (md := checkpoint_markdown(c.id))]
    create_markdown_artifact(key="backtest-summary", markdown="\n\n".join(summary), description="Backtest summary")
    result = BacktestReport(start, end, totals, leaderboard, checkpoint_frames, found)
    if html_report:
        _write_report(result, Path(report_path) if report_path else backtest_report.default_report_path(start, end))
    return result


def _write_report(result: BacktestReport, path: Path) -> None:
    """The HTML report and the artifact linking to it; a report that cannot be written is logged
    (the backtest's results are stored either way)."""
    log = get_run_logger()
    try:
        data = backtest_report.report_data(get_runtime().engine, result)
        written, seconds = backtest_report.write_report(data, path)
    except Exception as exc:  # the charts are a view: never lose the run for them
        result.report_error = f"{type(exc).__name__}: {exc}"
        log.error("backtest report not written to %s: %s", path, result.report_error)
        return
    result.report_path, result.report_seconds = written.resolve(), seconds
    log.info("backtest report written to %s in %.2f s", result.report_path, seconds)
    create_markdown_artifact(
        key="backtest-report",
        markdown=(
            f"# Backtest report\n\n[{result.report_path.name}]({result.report_path.as_uri()})\n\n"
            f"`{result.report_path}` (self-contained HTML: leaderboard, score over time per model, cumulative "
            f"rewards per participant, failures by reason; rendered in {seconds:.2f} s)"
        ),
        description=f"Backtest report {result.start.isoformat()} → {result.end.isoformat()}",
    )
