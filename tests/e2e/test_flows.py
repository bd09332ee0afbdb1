"""Flows as real Prefect runs (one Prefect API per session), on SQLite and Postgres."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from coordinator_core.db.tables import (
    Checkpoint,
    FeedRecord,
    Input,
    Leaderboard,
    Prediction,
    Score,
    Snapshot,
)
from tasks.context import get_runtime, reset_runtime
from tests.conftest import EXAMPLE_MODELS

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

ROUND = datetime(2019, 10, 10, 12, tzinfo=UTC)
TABLES = (FeedRecord, Input, Prediction, Score, Snapshot, Leaderboard, Checkpoint)


@pytest.fixture
def flow_env(db_url: str, monkeypatch: pytest.MonkeyPatch):
    """Flows read settings from the environment: point it at the test database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MODELS_DIR", str(EXAMPLE_MODELS))
    reset_runtime()
    yield get_runtime()
    reset_runtime()


def counts(runtime) -> dict[str, int]:
    with Session(runtime.engine) as session:
        return {t.__tablename__: session.exec(select(func.count()).select_from(t)).one() for t in TABLES}


def test_live_flows_in_sequence_and_rerun_writes_nothing(flow_env) -> None:
    from flows.build_checkpoint import build_checkpoint
    from flows.ingest_feed import ingest_feed
    from flows.predict_round import predict_round
    from flows.score_predictions import score_predictions

    ingested = ingest_feed(as_of=ROUND)
    assert ingested[0]["written"] > 100 and ingested[0]["watermark"] == ROUND - timedelta(hours=1)
    round_result = predict_round(as_of=ROUND)
    assert len(round_result["inputs"]) == 2  # BTC-3600 and BTC-14400
    assert sum(round_result["statuses"].values()) == 12  # 2 configs x 6 example models

    later = ROUND + timedelta(hours=1)
    ingest_feed(as_of=later)
    board = score_predictions(as_of=later)
    assert board.height >= 5 and board["rank"].to_list() == list(range(1, board.height + 1))
    assert build_checkpoint(as_of=later) == []  # no weekly boundary passed yet

    before = counts(flow_env)
    ingest_feed(as_of=later)
    predict_round(as_of=ROUND)
    score_predictions(as_of=later)
    build_checkpoint(as_of=later)
    assert counts(flow_env) == before


def test_backtest_flow_runs_the_competition_and_is_idempotent(flow_env, tmp_path) -> None:
    from flows.backtest import backtest

    start, end = datetime(2019, 10, 5, tzinfo=UTC), datetime(2019, 10, 8, 6, tzinfo=UTC)
    report = backtest(start=start, end=end, report_path=str(tmp_path / "report.html"))
    assert report.report_path == (tmp_path / "report.html").resolve() and report.report_path.is_file()
    from prefect.artifacts import Artifact

    artifact = Artifact.get("backtest-report")  # the newest: this run's
    assert artifact is not None and artifact.type == "markdown"
    assert f"({report.report_path.as_uri()})" in str(artifact.data)
    assert report.totals["rounds"] == 2 * report.totals["steps"]
    assert report.leaderboard.height == 6
    scores = report.leaderboard["score_recent (24 h)"].to_list()  # window columns carry their hours
    assert len(set(scores)) == 6 and all(s != 0 for s in scores)
    columns = ("coverage", "n", "mean", "mean_ci_low", "mean_ci_high", "ic", "hit_rate", "sharpe", "max_drawdown")
    assert report.leaderboard.columns[-len(columns) :] == list(columns)  # the metrics over the ranking window
    by_model = {row["model"]: row for row in report.leaderboard.to_dicts()}
    assert by_model["flaky"]["coverage"] < 1 and by_model["momentum"]["coverage"] == 1.0
    assert all(row["mean"] == pytest.approx(row["score_recent (24 h)"]) for row in by_model.values())
    table = Artifact.get("leaderboard")  # the Prefect table artifact carries the same columns
    assert table is not None and table.type == "table"
    shown = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert {r["model"]: r["coverage"] for r in shown} == pytest.approx(
        {m: r["coverage"] for m, r in by_model.items()}, abs=1e-4
    )
    assert all(set(columns) <= set(r) for r in shown)
    assert len(report.checkpoints) == 1  # the Monday 2019-10-07 boundary
    checkpoint_id, frame = report.checkpoints[0]
    assert checkpoint_id == "CKP_20191007_000000"
    assert frame["reward (frac64)"].sum() == 1_000_000_000
    assert round(frame["reward %"].sum(), 6) == 100.0

    before = counts(flow_env)
    again = backtest(start=start, end=end, html_report=False)
    assert again.report_path is None
    assert again.totals["rounds"] == 0 and again.totals["checkpoints"] == 0
    from coordinator_core.reports import backtest_summary

    assert backtest_summary(again.totals).startswith("up to date")
    assert counts(flow_env) == before


def test_flow_with_bad_configuration_fails_with_the_variable_named(flow_env, monkeypatch) -> None:
    from flows.predict_round import predict_round

    monkeypatch.setenv("SCORING_FUNCTION", "no_such_module:score")
    reset_runtime()
    state = predict_round(as_of=ROUND, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="SCORING_FUNCTION"):
        state.result()


def test_ingest_flow_fails_visibly_when_a_source_fails_and_writes_nothing(flow_env, monkeypatch) -> None:
    from flows.ingest_feed import ingest_feed
    from tests.doubles.binance_server import FakeBinance

    with FakeBinance(now_ms=int(ROUND.timestamp() * 1000)) as fake:
        fake.fail_next("451", times=100)
        monkeypatch.setenv("FEED_SOURCE", "binance")
        monkeypatch.setenv("FEED_GRANULARITY", "1m")
        monkeypatch.setenv("BINANCE_API_URL", fake.url)
        reset_runtime()
        state = ingest_feed(as_of=ROUND, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="binance:BTC:candle:1m.*restricted location"):
        state.result()
    assert counts(get_runtime())["feed_records"] == 0
