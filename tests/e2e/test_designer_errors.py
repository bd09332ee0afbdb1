"""Designer errors surfaced: a score run or a backtest whose scoring function (not the models)
fails on more than ``SCORING_FAILURE_LIMIT`` of the predictions ends Failed with the reasons, after
its work is committed; model failures never do; ``coordinator failures`` lists a period's failures
by model and reason."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from coordinator_core.db.tables import Input, Leaderboard, Prediction
from coordinator_core.errors import ScoringFunctionFailing
from tasks.context import get_runtime, reset_runtime
from tests._svc_helpers import broken_rule, raise_above_threshold, write_model
from tests.conftest import EXAMPLE_MODELS, PROJECT_DIR

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

ROUND = datetime(2019, 10, 10, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
ABOVE_THRESHOLD = f"{raise_above_threshold.__module__}:raise_above_threshold"  # raises for a value above 0.1
BROKEN = f"{broken_rule.__module__}:broken_rule"  # always raises KeyError


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch):
    def configure(**settings: str) -> Any:
        monkeypatch.setenv("DATABASE_URL", db_url)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        reset_runtime()
        return get_runtime()

    yield configure
    reset_runtime()


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """lo is scored; hi and hi2 answer values the threshold rule raises on; boom fails its own call."""
    root = tmp_path / "models"
    write_model(root, "lo", 'return {"value": 0.001}')
    write_model(root, "hi", 'return {"value": 0.5}')
    write_model(root, "hi2", 'return {"value": 0.7}')
    write_model(root, "boom", 'raise RuntimeError("boom at predict")')
    return root


def one_round(as_of: datetime = ROUND) -> Any:
    from flows.ingest_feed import ingest_feed
    from flows.predict_round import predict_round
    from flows.score_predictions import score_predictions

    ingest_feed(as_of=as_of)
    predict_round(as_of=as_of)
    ingest_feed(as_of=as_of + HOUR)
    return score_predictions(as_of=as_of + HOUR, return_state=True)


def rows(runtime: Any, table: Any) -> list[Any]:
    with runtime.engine.connect() as connection:
        return list(connection.execute(select(table.__table__)).mappings())


def test_a_score_run_whose_scoring_function_fails_too_often_ends_failed(env, models: Path) -> None:
    rt = env(MODELS_DIR=str(models), SCORING_FUNCTION=ABOVE_THRESHOLD, SCORING_FAILURE_MIN_COUNT="2")
    state = one_round()
    assert state.is_failed()
    with pytest.raises(ScoringFunctionFailing) as raised:
        state.result()
    message = str(raised.value)
    assert message.startswith(f"scoring at {(ROUND + HOUR).isoformat()}: the scoring function failed on 2 of the 3")
    assert "(67% > SCORING_FAILURE_LIMIT 50%" in message
    assert "2× scoring_function: scoring function raised ValueError: prediction N is above the threshold N" in message
    assert "boom" not in message  # the model's own failure is not the designer's
    # everything was committed before the run failed: statuses, reasons, the leaderboard
    one_hour = {p["model_id"]: p for p in rows(rt, Prediction) if p["scope_key"] == "BTC-3600"}
    assert {m: p["status"] for m, p in one_hour.items()} == {
        "lo": "SCORED",
        "hi": "FAILED",
        "hi2": "FAILED",
        "boom": "FAILED",
    }
    assert one_hour["hi"]["failed_reason"].startswith("scoring function raised ValueError")
    assert [b["created_at"] for b in rows(rt, Leaderboard)] == [ROUND + HOUR]


def test_below_the_limit_or_the_minimum_count_the_run_completes(env, models: Path) -> None:
    env(MODELS_DIR=str(models), SCORING_FUNCTION=ABOVE_THRESHOLD, SCORING_FAILURE_LIMIT="0.7")
    assert one_round().is_completed()  # 67% <= 70%
    env(MODELS_DIR=str(models), SCORING_FUNCTION=ABOVE_THRESHOLD)  # default minimum count: 10
    assert one_round(ROUND + 2 * HOUR).is_completed()  # 2 failures are fewer than 10


def test_model_failures_alone_never_fail_a_run(env, tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "lo", 'return {"value": 0.001}')
    for index in range(4):
        write_model(root, f"boom{index}", 'raise RuntimeError("boom at predict")')
    env(MODELS_DIR=str(root), SCORING_FAILURE_MIN_COUNT="1", SCORING_FAILURE_LIMIT="0")
    state = one_round()
    assert state.is_completed()  # 4 of 5 predictions failed, all by the models
    assert state.result()["rank"].to_list() == [1, 2, 3, 4, 5]


def test_a_backtest_with_a_broken_scoring_function_fails_after_its_first_day(env, tmp_path: Path) -> None:
    from flows.backtest import backtest

    rt = env(MODELS_DIR=str(EXAMPLE_MODELS), SCORING_FUNCTION=BROKEN)
    start, end = datetime(2019, 10, 5, tzinfo=UTC), datetime(2019, 10, 7, 23, tzinfo=UTC)
    state = backtest(start=start, end=end, return_state=True)
    assert state.is_failed()
    with pytest.raises(ScoringFunctionFailing) as raised:
        state.result()
    message = str(raised.value)
    assert message.startswith(f"backtest {start.isoformat()} → 2019-10-05T23:00:00+00:00: the scoring function failed")
    assert "scoring function raised KeyError: 'realised_return'" in message
    assert max(i["round_at"] for i in rows(rt, Input)) == datetime(2019, 10, 5, 23, tzinfo=UTC)  # day 2 never ran

    # the command line lists the period's failures by model and reason
    environment = {
        **os.environ,
        "DATABASE_URL": rt.settings.database_url,
        "COLUMNS": "250",
        "PYTHONPATH": str(PROJECT_DIR),
    }
    done = subprocess.run(
        [sys.executable, "-m", "coordinator_cli.main", "failures", "--start", "2019-10-05", "--end", "2019-10-06"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Predictions 2019-10-05T00:00:00+00:00 → 2019-10-06T00:00:00+00:00:" in out
    assert "scoring_function" in out and "scoring function raised KeyError:" in out, out  # (the table wraps)
    for model in ("momentum", "mean_reversion", "noisy"):
        assert model in out
    assert "model_error" in out  # flaky raises on some calls: its own failures, listed apart
