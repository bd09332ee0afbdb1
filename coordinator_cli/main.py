"""The ``coordinator`` command: demo, database, backtest and one command per flow.

Prefect is imported lazily, so ``coordinator db upgrade`` and configuration errors are instant.
Every command first checks what it needs (``_ready``): the settings, the paths it reads and the
database (one connection); a mistake exits with status 2 and a message naming the variable.
Variables that look like settings but are none get a warning (once, at start).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from coordinator_core.clock import parse_utc
from coordinator_core.errors import CoordinatorError
from coordinator_core.prefect_env import apply_defaults

app = typer.Typer(
    help="Prediction-competition coordinator (Prefect flows over coordinator_core).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _register_models_app() -> None:
    from coordinator_cli.models import models_app

    app.add_typer(models_app, name="models")


_register_models_app()
console = Console(width=None if sys.stdout.isatty() else 150)

AsOf = Annotated[str | None, typer.Option("--as-of", help="ISO-8601 time to run for (default: now; no offset = UTC)")]


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value, name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


def _settings() -> Any:
    from tasks.context import get_runtime

    return get_runtime().settings


def _ready(
    database: Literal["schema", "connect", "none"] = "schema",
    paths: frozenset[str] = frozenset(),
    read_database: bool = False,
) -> Any:
    """The settings, once the command's needs are checked: the ``paths`` (see
    ``coordinator_core.preflight.check_paths``), then ``DATABASE_URL`` with one connection:
    ``"schema"`` = migrated to the newest revision, ``"connect"`` = reachable (the command creates
    the schema itself). Raises ``ConfigurationError`` (exit 2) naming the variable to fix."""
    from coordinator_core.db.check import check_database
    from coordinator_core.preflight import check_paths

    settings = _settings()
    check_paths(settings, needs=paths)
    if database != "none":
        check_database(settings.database_url, require_schema=database == "schema")
    if read_database and settings.read_database_url:
        check_database(settings.read_database_url, require_schema=True, variable="READ_DATABASE_URL")
    return settings


ALL_PATHS = frozenset({"models", "configs", "replay"})


def frame_table(frame: Any, title: str) -> Table:
    from coordinator_core.reports import format_cell

    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        table.add_column(column, justify="right" if frame[column].dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*[format_cell(column, v) for column, v in zip(frame.columns, row, strict=True)])
    return table


def print_leaderboard(frame: Any, as_of: str, contract: Any) -> None:
    """The leaderboard, then its metric columns as a second table (``reports.split_metrics``)."""
    from coordinator_core.reports import metrics_note, split_metrics

    board, metrics = split_metrics(frame)
    console.print(frame_table(board, f"Leaderboard as of {as_of}"))
    if metrics is not None:
        note = metrics_note(contract)
        console.print(frame_table(metrics, f"Leaderboard metrics as of {as_of}, {note} (CrunchContract.metrics)"))


def print_checkpoint(checkpoint_id: str, frame: Any, total: int | None = None) -> None:
    console.print(frame_table(frame, f"Emission checkpoint {checkpoint_id} (reward in frac64: 1,000,000,000 = 100 %)"))
    if total is not None:
        console.print(f"  shares sum to [bold]{total:,}[/bold]")


@app.command("init")
def init_command(
    name: Annotated[str, typer.Argument(help="the competition's name: the folder written, its CRUNCH_ID and database")],
    path: Annotated[
        str | None, typer.Option("--path", help="the folder to write NAME in (default: the current one)")
    ] = None,
) -> None:
    """Write a competition workspace NAME/: contract.py, scoring.py, configs.json, three example
    models, replay data, .local.env, a Makefile (demo, backtest/report, check, test) and a test.
    Refuses a folder that exists and is not empty."""
    from pathlib import Path

    from coordinator_cli.workspace import write_workspace

    target = write_workspace(name, Path(path) if path else Path.cwd())
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    console.print(f"[bold]workspace {name}[/bold] written to {target}: {', '.join(files)}")
    console.print(f"next: cd {target} && make demo   (then make test; make check; make backtest)", markup=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema of DATABASE_URL to the newest revision."""
    from coordinator_core.db.migrate import current, upgrade

    url = _ready("connect").database_url
    upgrade(url)
    console.print(f"database {url} at revision {current(url)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of DATABASE_URL."""
    from coordinator_core.db.migrate import current

    console.print(current(_ready("connect").database_url) or "empty (run: coordinator db upgrade)")


ReportOption = Annotated[
    str | None,
    typer.Option(
        "--report",
        help="write the HTML report here (default: reports/backtest-<start>-<end>.html in the current folder)",
    ),
]
NoReport = Annotated[bool, typer.Option("--no-report", help="do not write the HTML report")]


def _run_backtest(
    start: datetime | None, end: datetime | None, days: int, report_path: str | None = None, no_report: bool = False
) -> None:
    from coordinator_core.db.migrate import upgrade
    from coordinator_core.reports import checkpoints

    settings = _ready("connect", ALL_PATHS)
    upgrade(settings.database_url)
    console.print(
        f"[bold]Backtest[/bold] on {settings.database_url} with {settings.feed_source} "
        f"{settings.feed_subjects} {settings.feed_kind} {settings.feed_granularity}, models from "
        f"{settings.models_path} (Prefect starts first: ~20 s on a fresh machine)"
    )
    started = time.perf_counter()
    from flows.backtest import backtest

    report = backtest(start=start, end=end, days=days, report_path=report_path, html_report=not no_report)
    from coordinator_core.reports import backtest_summary, checkpoint_frame, participant_frame

    console.print(
        f"\nBacktest {report.start.isoformat()} → {report.end.isoformat()}: {report.totals} "
        f"in {time.perf_counter() - started:.1f} s\n{backtest_summary(report.totals)}"
    )
    console.print(f"Predictions as scored: {report.failure_summary}", markup=False)
    from tasks.context import get_runtime

    print_leaderboard(report.leaderboard, report.end.isoformat(), get_runtime().contract)
    latest = next((c for c in checkpoints(_runtime_engine(), limit=5)), None)
    if latest is not None:
        total = sum(r["reward_pct"] for r in latest.emission.get("cruncher_rewards", []))
        print_checkpoint(latest.id, checkpoint_frame(latest), total)
        console.print(
            frame_table(participant_frame(latest), "Rewards by participant (EmissionCheckpoint.cruncher_rewards)")
        )
        if latest.status == "GATED":
            console.print(
                f"[bold red]GATED[/bold red], not payable: {'; '.join((latest.gate or {}).get('blocked') or [])}"
            )
    if report.report_path is not None:
        console.print(f"Report: {report.report_path} (rendered in {report.report_seconds:.1f} s)", markup=False)
    elif report.report_error is not None:
        console.print(f"[bold red]Report not written[/bold red]: {report.report_error}")


def _runtime_engine() -> Any:
    from tasks.context import get_runtime

    return get_runtime().engine


GAMES = {
    # game: (contract, models folder, base class, the models' own Python via model nodes?)
    "crunch-synth": (
        "coordinator_core.games.crunch_synth:contract_1h",
        "examples/games/crunch_synth",
        "crunch_synth.tracker.TrackerBase",
        False,
    ),
    "condor": (
        "coordinator_core.games.condor:contract_1h",
        "examples/games/condor",
        "condorgame.tracker.TrackerBase",
        True,
    ),
}
GAME_DEMO_START = datetime(2026, 10, 1, tzinfo=UTC)  # the synthetic feed: any fixed window reproduces
# the tournament (batch) mode: one era a day from the shipped dataset, its targets known 3 days later
TOURNAMENT = ("coordinator_core.games.tournament:contract", "examples/tournament")
TOURNAMENT_START = datetime(2026, 1, 5, tzinfo=UTC)  # era 0 of coordinator_core/data/tournament_eras.csv
TOURNAMENT_DAYS = 30


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="days of data to backtest")] = 14,
    game: Annotated[
        str | None,
        typer.Option(
            help="run a real game instead: crunch-synth or condor (its 1 h profile, the package's "
            "example trackers, 2 days of synthetic 1-minute BTC by default), or tournament (the batch "
            "mode: the shipped tournament contract and dataset, its three example models, 30 daily eras)"
        ),
    ] = None,
    report: ReportOption = None,
    no_report: NoReport = False,
) -> None:
    """Create the database, backtest the last DAYS of the shipped BTC data with the example models,
    and print the leaderboard, the emission checkpoint and the path of the HTML report. With
    --game, the same for a real game."""
    if game is None:
        _run_backtest(None, None, days, report, no_report)
        return
    if game == "tournament":
        _run_tournament_demo(days if days != 14 else TOURNAMENT_DAYS, report, no_report)
        return
    if game not in GAMES:
        raise typer.BadParameter(f"unknown game {game!r}; use {', '.join([*GAMES, 'tournament'])}", param_hint="--game")
    _run_game_demo(game, days if days != 14 else 2, report, no_report)


def _run_tournament_demo(days: int, report: str | None = None, no_report: bool = False) -> None:
    """Backtest the shipped tournament contract (``coordinator_core.games.tournament``) over its
    dataset's first ``days`` eras, weekly checkpoints; every variable the user exported wins."""
    import os

    contract, models_dir = TOURNAMENT
    defaults = {
        "DATABASE_URL": "sqlite:///./tournament-demo.db",
        "CRUNCH_CONTRACT": contract,
        "FEED_SOURCE": "synthetic",
        "FEED_SUBJECTS": "TOURNAMENT",
        "MODELS_DIR": models_dir,
        "CHECKPOINT_INTERVAL_SECONDS": str(7 * 86_400),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    from tasks.context import reset_runtime

    reset_runtime()
    try:
        _run_backtest(TOURNAMENT_START, TOURNAMENT_START + timedelta(days=days), days, report, no_report)
    finally:
        reset_runtime()


def _run_game_demo(game: str, days: int, report: str | None = None, no_report: bool = False) -> None:
    """The game's preset on a synthetic 1-minute feed, daily checkpoints; every variable the user
    exported wins. Condor's trackers need Python 3.12: they run as local model nodes."""
    import os

    contract, models_dir, base, nodes = GAMES[game]
    defaults = {
        "DATABASE_URL": f"sqlite:///./{game}-demo.db",
        "CRUNCH_CONTRACT": contract,
        "FEED_SOURCE": "synthetic",
        "FEED_GRANULARITY": "1m",
        "FEED_SUBJECTS": "BTC",
        "MODELS_DIR": models_dir,
        "MODEL_BASE_CLASSNAME": base,
        "CHECKPOINT_INTERVAL_SECONDS": "86400",
        "LOCAL_MODEL_TIMEOUT_SECONDS": "30",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    from tasks.context import reset_runtime

    reset_runtime()
    start, end = GAME_DEMO_START, GAME_DEMO_START + timedelta(days=days)
    if not nodes:
        _run_backtest(start, end, days, report, no_report)
        return
    from coordinator_core.config import PROJECT_DIR
    from coordinator_core.gateway.orchestrator import LocalCluster

    with LocalCluster(PROJECT_DIR / models_dir, crunch_id=f"{game}-demo", project_dir=PROJECT_DIR) as cluster:
        console.print(f"starting the {game} trackers as model nodes (their own Python) ...")
        cluster.start()
        os.environ.update(
            {
                "MODEL_GATEWAY": "model_runner",
                "MODEL_RUNNER_NODE_HOST": cluster.orchestrator.host,
                "MODEL_RUNNER_NODE_PORT": str(cluster.orchestrator.port),
                "CRUNCH_ID": f"{game}-demo",
                "MODEL_RUNNER_TIMEOUT_SECONDS": "60",
            }
        )
        reset_runtime()
        try:
            _run_backtest(start, end, days, report, no_report)
        finally:
            reset_runtime()  # close the gateway before the nodes go


@app.command()
def backtest(
    start: Annotated[str | None, typer.Option(help="ISO-8601 start (default: END minus DAYS)")] = None,
    end: Annotated[str | None, typer.Option(help="ISO-8601 end (default: end of the replay data)")] = None,
    days: Annotated[int, typer.Option(help="window length when START is not given")] = 14,
    report: ReportOption = None,
    no_report: NoReport = False,
) -> None:
    """Run the whole competition over a historical window on a virtual clock; prints the
    leaderboard, the checkpoint and the path of the HTML report."""
    _run_backtest(_time(start, "--start"), _time(end, "--end"), days, report, no_report)


@app.command()
def ingest(as_of: AsOf = None) -> None:
    """Run the ingest-feed flow once."""
    _ready("schema", frozenset({"replay"}))
    from coordinator_core.clock import resolve_now
    from coordinator_core.reports import ingest_summary
    from flows.ingest_feed import ingest_feed

    now = resolve_now(_time(as_of, "--as-of"))
    console.print(ingest_summary(ingest_feed(as_of=now), now))


@app.command()
def predict(as_of: AsOf = None) -> None:
    """Run the predict-round flow once (the rounds due at that time)."""
    _ready("schema", frozenset({"models", "configs"}))
    from coordinator_core.clock import resolve_now
    from coordinator_core.reports import predict_summary
    from flows.predict_round import predict_round

    now = resolve_now(_time(as_of, "--as-of"))
    console.print(predict_summary(predict_round(as_of=now), now))


@app.command()
def score(as_of: AsOf = None) -> None:
    """Run the score-predictions flow once and print the leaderboard."""
    _ready("schema")
    from flows.score_predictions import score_predictions
    from tasks.context import get_runtime

    now = _time(as_of, "--as-of")
    frame = score_predictions(as_of=now)
    print_leaderboard(frame, now.isoformat() if now else "now", get_runtime().contract)


@app.command()
def checkpoint(as_of: AsOf = None) -> None:
    """Run the build-checkpoint flow once (builds every checkpoint due)."""
    _ready("schema")
    from coordinator_core.clock import resolve_now
    from coordinator_core.reports import checkpoint_summary
    from flows.build_checkpoint import build_checkpoint

    now = resolve_now(_time(as_of, "--as-of"))
    console.print(checkpoint_summary(build_checkpoint(as_of=now), now))


@app.command()
def backfill(
    start: Annotated[str, typer.Option(help="ISO-8601 start of the range")],
    end: Annotated[str | None, typer.Option(help="ISO-8601 end (default: now)")] = None,
    source: Annotated[str | None, typer.Option(help="feed source (default: every configured one)")] = None,
    subject: Annotated[str | None, typer.Option(help="subject (default: every FEED_SUBJECTS)")] = None,
    kind: Annotated[str | None, typer.Option(help="candle or tick (default: FEED_KIND)")] = None,
    granularity: Annotated[str | None, typer.Option(help="e.g. 1m (default: FEED_GRANULARITY)")] = None,
) -> None:
    """Fill a range of feed records (resumable; a repeat writes nothing), with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from coordinator_core.clock import SystemClock
    from coordinator_core.db.migrate import upgrade
    from coordinator_core.feeds.base import FeedScope
    from coordinator_core.services.backfill import backfill as run_backfill
    from coordinator_core.services.ingest import feed_scopes
    from tasks.context import get_runtime

    settings = _ready("connect", frozenset({"replay"}) if source in (None, "replay") else frozenset())
    runtime = get_runtime()
    now = SystemClock().now()
    first, last = _time(start, "--start"), _time(end, "--end") or now
    assert first is not None
    upgrade(settings.database_url)
    scopes = sorted(
        {
            FeedScope(source or s.source, subject or s.subject, kind or s.kind, granularity or s.granularity)
            for s in feed_scopes(settings)
        },
        key=lambda s: s.key,
    )
    summary = Table(title="Backfill", title_justify="left")
    for column in ("scope", "rows written", "fetched", "pages", "gaps left", "missing buckets"):
        summary.add_column(column, justify="left" if column == "scope" else "right")
    span = max((last - first).total_seconds(), 1.0)
    results: list[Any] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rows]} rows, {task.fields[pages]} pages"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        for scope in scopes:
            task_id = bar.add_task(scope.key, total=100.0, rows=0, pages=0)

            def progress(cursor: datetime, result: Any, task_id: Any = task_id) -> None:
                bar.update(
                    task_id,
                    completed=100.0 * (cursor - first).total_seconds() / span,
                    rows=result.written,
                    pages=result.pages,
                )

            result = run_backfill(runtime.uow, runtime.source_for(scope.source), scope, first, last, now, progress)
            results.append(result)
            bar.update(task_id, completed=100.0, rows=result.written, pages=result.pages)
            summary.add_row(
                scope.key,
                f"{result.written:,}",
                f"{result.fetched:,}",
                str(result.pages),
                str(len(result.gaps)),
                f"{result.missing:,}",
            )
    console.print(summary)
    if not any(result.written for result in results):
        console.print("up to date: nothing new to backfill")


feeds_app = typer.Typer(help="Feed records: gaps.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")


@feeds_app.command("gaps")
def feeds_gaps(
    start: Annotated[str | None, typer.Option(help="ISO-8601 start (default: 1 day before END)")] = None,
    end: Annotated[str | None, typer.Option(help="ISO-8601 end (default: now)")] = None,
) -> None:
    """List missing candle buckets of every configured feed scope (repair them with `backfill`)."""
    from datetime import timedelta

    from coordinator_core.clock import SystemClock
    from coordinator_core.services.backfill import find_gaps
    from coordinator_core.services.ingest import feed_scopes
    from tasks.context import get_runtime

    _ready("schema")
    runtime = get_runtime()
    last = _time(end, "--end") or SystemClock().now()
    first = _time(start, "--start") or last - timedelta(days=1)
    table = Table(title=f"Gaps {first.isoformat()} → {last.isoformat()}", title_justify="left")
    for column in ("scope", "first missing", "last missing", "buckets"):
        table.add_column(column)
    found = 0
    for scope in feed_scopes(runtime.settings):
        if scope.kind != "candle":
            continue
        for gap in find_gaps(runtime.uow, scope, first, last):
            found += 1
            table.add_row(scope.key, gap.first.isoformat(), gap.last.isoformat(), f"{gap.count:,}")
    console.print(table if found else "no gaps")


@app.command()
def failures(
    start: Annotated[str | None, typer.Option(help="ISO-8601 start (default: 1 day before END)")] = None,
    end: Annotated[str | None, typer.Option(help="ISO-8601 end, excluded (default: now)")] = None,
) -> None:
    """List the predictions made in [START, END) that failed or were absent, by model and cause
    (kind: scoring_function, ground_truth, model_error, model_timeout, invalid_output, absent). No Prefect."""
    from datetime import timedelta

    from coordinator_core.clock import SystemClock
    from coordinator_core.diagnostics import failures as period_failures
    from coordinator_core.domain.failures import kinds

    _ready("schema")
    last = _time(end, "--end") or SystemClock().now()
    first = _time(start, "--start") or last - timedelta(days=1)
    found = period_failures(_runtime_engine(), first, last)
    statuses = ", ".join(f"{status} {count:,}" for status, count in sorted(found.statuses.items())) or "none"
    console.print(f"Predictions {first.isoformat()} → {last.isoformat()}: {statuses}", markup=False)
    if not found.groups:
        console.print("no failures")
        return
    by_kind = kinds(found.failures)
    console.print("By kind: " + ", ".join(f"{kind} {count:,}" for kind, count in sorted(by_kind.items())), markup=False)
    table = Table(title="Failures by model and reason", title_justify="left")
    for column in ("model", "kind", "count", "reason", "first", "last"):
        table.add_column(column, justify="right" if column == "count" else "left", overflow="fold")
    for group in found.groups:
        table.add_row(
            group.model_id,
            group.kind,
            f"{group.count:,}",
            Text(group.example if len(group.example) <= 160 else group.example[:160] + "…"),  # no markup
            group.first_at.isoformat(),
            group.last_at.isoformat(),
        )
    console.print(table)


@app.command()
def leaderboard() -> None:
    """Print the latest leaderboard from the database (no Prefect)."""
    _ready("schema")
    from coordinator_core.reports import latest_leaderboard, window_hours
    from tasks.context import get_runtime

    contract = get_runtime().contract
    board, frame = latest_leaderboard(_runtime_engine(), window_hours(contract))
    print_leaderboard(frame, board["created_at"].isoformat() if board else "–", contract)


@app.command("proof")
def proof_command(
    checkpoint_id: Annotated[str, typer.Argument(help="checkpoint id, e.g. CKP_20191007_000000")],
    model: Annotated[str, typer.Argument(help="model id")],
    out: Annotated[str | None, typer.Option("--out", help="write the proof to this file (default: stdout)")] = None,
) -> None:
    """Write a model's Merkle inclusion proof in a checkpoint (JSON), to check with `verify-proof`."""
    from coordinator_core.services.checkpoint import checkpoint_proof
    from tasks.context import get_runtime

    _ready("schema")
    document = json.dumps(checkpoint_proof(get_runtime().uow, checkpoint_id, model), indent=2, sort_keys=True)
    if out is None:
        print(document)
    else:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(document + "\n")
        console.print(f"proof of {model} in {checkpoint_id} written to {out}")


@app.command("verify-proof")
def verify_proof_command(
    file: Annotated[str, typer.Argument(help="a proof file (GET /reports/checkpoints/{id}/proof?model=, or `proof`)")],
    root: Annotated[str | None, typer.Option("--root", help="the root it must reach, e.g. as published")] = None,
) -> None:
    """Check a Merkle inclusion proof offline (no database): exit 0 when it verifies, 1 when not."""
    from coordinator_core.merkle import ProofError, verify_proof

    try:
        with open(file, encoding="utf-8") as handle:
            document = json.load(handle)
        proven = verify_proof(document, expected_root=root)
    except (OSError, json.JSONDecodeError, ProofError) as exc:
        console.print(f"[bold red]FAILED[/bold red]: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"[bold green]ok[/bold green]: the {len(document['leaves'])} leaves of model {document['model_id']} "
        f"are in checkpoint {document['checkpoint_id']} under root {proven}"
    )


def _pairs_table(title: str, pairs: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for name, value in pairs:
        if value is None:
            continue
        table.add_row(name, value if isinstance(value, str) else json.dumps(value, default=str))
    return table


@app.command("explain")
def explain_command(
    checkpoint_id: Annotated[str, typer.Argument(help="checkpoint id, e.g. CKP_20191014_000000")],
    model: Annotated[str, typer.Argument(help="model id")],
    limit: Annotated[int, typer.Option(min=1, max=168, help="snapshots per page")] = 24,
    after: Annotated[str | None, typer.Option("--after", help="page: snapshots starting after this ISO time")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the page as JSON (the API's body)")] = False,
) -> None:
    """Why a model was paid what it was: reward ← rank ← aggregate ← snapshots ← predictions, feed records."""
    from coordinator_core.services.explain import explain_reward
    from tasks.context import get_runtime

    _ready("schema")
    runtime = get_runtime()
    page = explain_reward(runtime.uow, runtime.contract, checkpoint_id, model, _time(after, "--after"), limit)
    doc = page.document
    if as_json:
        print(json.dumps({**doc, "next_after": page.next_after.isoformat() if page.next_after else None}, indent=2))
        return
    who, reward, rank, aggregate = doc["model"], doc["reward"], doc["rank"], doc["aggregate"]
    checkpoint = doc["checkpoint"]
    console.print(
        f"[bold]Payout of {who['model_id']}[/bold] (participant {who['player_name'] or '–'}, "
        f"{who['player_id'] or '–'}) in {checkpoint['id']}, {checkpoint['period_start']} → "
        f"{checkpoint['period_end']}, status {checkpoint['status']}, merkle root {checkpoint['merkle_root']}"
    )
    console.print(
        _pairs_table(
            "1. Reward (from the rank and the emission strategy)",
            [
                ("reward (frac64)", f"{reward['reward_pct']:,}"),
                ("reward %", f"{reward['reward_percent']:.6f}"),
                ("participant's reward (frac64)", f"{reward['participant']['reward_pct']:,}"),
                ("participant's models", ", ".join(reward["participant"]["model_ids"])),
                ("strategy", reward["strategy"]),
                ("rule", reward.get("rule")),
                (
                    "weight / total",
                    f"{reward.get('weight')} / {reward.get('weight_total')}" if reward.get("weight") else None,
                ),
                ("exact share (frac64)", reward.get("exact_share_fraction")),
                (
                    "rounding residue (frac64)",
                    f"{reward['rounding_residue']:+.6f}" if "rounding_residue" in reward else None,
                ),
                ("reproduced from the stored ranking", "yes" if reward["reproduced"] else "NO"),
                ("note", reward.get("note")),
            ],
        )
    )
    console.print(
        _pairs_table(
            "2. Rank (from the period aggregate)",
            [
                (
                    "rank",
                    f"{rank['rank']} of {rank['of']}" if rank.get("rank") else f"not ranked ({rank['of']} ranked)",
                ),
                ("ranking", f"{rank['ranking_key']} {rank.get('direction', '')} = {rank.get('value')}"),
                ("tie-break", rank["tie_break"]),
                ("tied with", ", ".join(rank.get("tied_with") or []) or "nobody"),
                ("above", rank.get("above")),
                ("below", rank.get("below")),
                ("recomputed from the snapshots", "same ranking" if rank["recomputed_matches"] else "DIFFERS"),
            ],
        )
    )
    console.print(
        _pairs_table(
            "3. Aggregate (from the snapshots)",
            [
                ("score", f"{aggregate['score']}"),
                ("value_sum / prediction_count", f"{aggregate['value_sum']} / {aggregate['prediction_count']}"),
                (
                    "scored / failed / absent",
                    f"{aggregate['scored_count']} / {aggregate['failed_count']} / {aggregate['absent_count']}",
                ),
                ("snapshots", str(aggregate["snapshot_count"])),
                ("formula", aggregate["formula"]),
                ("equals the ranking value", "yes" if aggregate["matches_ranking"] else "NO"),
            ],
        )
    )
    rule = doc["scoring_rule"]
    console.print(
        _pairs_table(
            "Scoring rule (applied to every prediction below)",
            [
                ("at build", rule["at_build"]),
                ("now", rule["now"]),
                ("unchanged", "yes" if rule["unchanged"] else "NO (or not recorded)"),
            ],
        )
    )
    table = Table(title="4. Snapshots and their predictions (this page)", title_justify="left")
    for column in ("snapshot", "value_sum", "prediction", "status", "output", "truth", "feed records", "score"):
        table.add_column(column, overflow="fold")
    for snapshot in doc["snapshots"]:
        first = True
        for item in snapshot["predictions"] or [{}]:
            truth = item.get("ground_truth") or {}
            records = item.get("feed_records") or {}
            ids = [str((records.get(k) or {}).get("id", "–")) for k in ("entry", "exit")] if records else []
            table.add_row(
                f"{snapshot['period_start']} ({snapshot['prediction_count']})" if first else "",
                f"{snapshot['value_sum']:,.4f}" + ("" if snapshot["sums_match"] else " MISMATCH") if first else "",
                item.get("prediction_id", "–"),
                item.get("status", "–"),
                json.dumps(item.get("output")) if item else "–",
                f"return {truth['return']:+.6f}" if "return" in truth else json.dumps(truth or None),
                " → ".join(ids) if ids else "–",
                f"{item['score']['value']:,.4f}" if item else "–",
            )
            first = False
    console.print(table)
    if page.next_after is not None:
        console.print(f"more snapshots: add --after {page.next_after.isoformat()}")


@app.command("shadow")
def shadow_command(
    contract: Annotated[str, typer.Option("--contract", help="the candidate: module:attr of a CrunchContract")],
    start: Annotated[str, typer.Option(help="ISO-8601 start: rounds built at or after it")],
    end: Annotated[str, typer.Option(help="ISO-8601 end: rounds built before it")],
) -> None:
    """Re-score the stored predictions of [START, END) under a candidate contract and print both
    leaderboards and the emission diff per participant. Writes nothing."""
    from coordinator_core.reports import shadow_frames
    from coordinator_core.services.shadow import load_candidate, shadow_score
    from tasks.context import get_runtime

    _ready("schema")
    runtime = get_runtime()
    first, last = _time(start, "--start"), _time(end, "--end")
    assert first is not None and last is not None
    if last <= first:
        raise typer.BadParameter(f"--end {last.isoformat()} must be after --start {first.isoformat()}")
    candidate = load_candidate(contract)
    report = shadow_score(runtime.uow, runtime.contract, candidate, runtime.settings, first, last)
    if report.up_to_date:
        console.print(f"no resolved round was built in {first.isoformat()} → {last.isoformat()}: nothing to compare")
        return
    current_board, candidate_board, diff = shadow_frames(report)
    console.print(
        f"[bold]Shadow scoring[/bold] of {report.rounds:,} rounds ({report.predictions:,} predictions) built in "
        f"{first.isoformat()} → {last.isoformat()}; the current contract reproduces "
        f"{report.reproduced:,} of {report.compared:,} stored scores"
    )
    console.print(frame_table(current_board, f"Current: {report.current.strategy}"))
    console.print(frame_table(candidate_board, f"Candidate {contract}: {report.candidate.strategy}"))
    console.print(frame_table(diff, "Emission diff per participant (frac64, 1,000,000,000 = 100 %)"))
    console.print("nothing was written: shadow scoring only reads")


LIVE_DEFAULTS = {
    "DATABASE_URL": "sqlite:///./live.db",
    "FEED_SOURCE": "synthetic",
    "FEED_GRANULARITY": "1m",
    "FEED_MAX_STALENESS_SECONDS": "180",
    "INGEST_INTERVAL_SECONDS": "20",
    "PREDICT_INTERVAL_SECONDS": "20",
    "SCORE_INTERVAL_SECONDS": "20",
    "CHECKPOINT_INTERVAL_SECONDS": "3600",
}


@app.command()
def serve(
    ui_port: Annotated[int, typer.Option(help="Prefect server and UI port")] = 4200,
    with_api: Annotated[bool, typer.Option("--api/--no-api", help="also serve the report API")] = True,
) -> None:
    """Live local mode: a Prefect server with its UI on 127.0.0.1:UI_PORT, every flow served on its
    schedule, the report API on API_HOST:API_PORT and a live synthetic 1-minute feed with 1- and
    5-minute rounds (settings you export win). Ctrl-C stops everything it started."""
    import os
    import signal
    import subprocess

    import httpx

    from coordinator_core.config import PROJECT_DIR

    for name, value in LIVE_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("SCHEDULED_PREDICTION_CONFIGS_PATH", str(PROJECT_DIR / "examples" / "live_configs.json"))
    os.environ.setdefault("PREFECT_HOME", str(PROJECT_DIR / ".prefect"))
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "5")  # pick up scheduled runs sooner (default 10 s)
    api_url = f"http://127.0.0.1:{ui_port}/api"
    os.environ["PREFECT_API_URL"] = api_url
    settings = _ready("connect", ALL_PATHS)
    from coordinator_core.db.migrate import upgrade

    upgrade(settings.database_url)
    children: list[subprocess.Popen[bytes]] = []
    binary = os.path.dirname(sys.executable)

    def stop(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in reversed(children):
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()

    try:
        console.print(f"starting the Prefect server and UI on http://127.0.0.1:{ui_port} …")
        children.append(
            subprocess.Popen(
                [os.path.join(binary, "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(ui_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if children[0].poll() is not None or time.monotonic() > deadline:
                raise CoordinatorError(f"the Prefect server did not start on port {ui_port} (is the port in use?)")
            time.sleep(0.5)
        if with_api:
            children.append(subprocess.Popen([os.path.join(binary, "coordinator"), "api"]))
            console.print(f"report API on http://{settings.api_host}:{settings.api_port}")
        console.print(
            f"[bold]live[/bold]: {settings.feed_source} {settings.feed_granularity} feed, rounds every minute, "
            f"database {settings.database_url}; open http://127.0.0.1:{ui_port} — Ctrl-C stops everything"
        )
        from prefect import serve as prefect_serve

        from deployments.serve import deployments

        prefect_serve(*deployments(settings), limit=8)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        console.print("stopped")


@app.command()
def api() -> None:
    """Serve the report API with uvicorn on API_HOST:API_PORT."""
    import uvicorn

    from api.app import create_app

    settings = _ready("schema", read_database=True)
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port)


def main() -> None:
    # a workspace's own modules (CRUNCH_CONTRACT=contract:contract) import from the current folder,
    # as with `python -m`; installed packages come first
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    apply_defaults()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from coordinator_core.preflight import warn_unknown_variables

    warn_unknown_variables()
    try:
        app()
    except CoordinatorError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
