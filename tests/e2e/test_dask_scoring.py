"""Heavy scoring in parallel: the score-predictions flow with ``parallel=True`` on a Dask task runner
(``prefect-dask``, a ``distributed.LocalCluster`` of worker processes) writes exactly the rows a
sequential run writes, for a game preset's rounds."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import upgrade
from tests.conftest import PROJECT_DIR

pytestmark = [pytest.mark.prefect]
START = datetime(2026, 10, 1, tzinfo=UTC)
ENV = {
    "CRUNCH_CONTRACT": "tests._svc_helpers:CRUNCH_SYNTH_1H_SHORT_HISTORY",
    "FEED_SOURCE": "synthetic",
    "FEED_GRANULARITY": "1m",
    "MODEL_BASE_CLASSNAME": "crunch_synth.tracker.TrackerBase",
    "LOCAL_MODEL_TIMEOUT_SECONDS": "60",
}


def _rows(url: str) -> dict[str, list[Any]]:
    with get_engine(url).connect() as c:
        return {
            "scores": c.execute(
                text("SELECT prediction_id, value, result_jsonb, prediction_status FROM scores ORDER BY prediction_id")
            ).all(),
            "snapshots": c.execute(
                text("SELECT model_id, period_start, prediction_count, value_sum FROM snapshots ORDER BY 1, 2")
            ).all(),
            "predictions": c.execute(text("SELECT id, status, failed_reason FROM predictions ORDER BY id")).all(),
        }


@pytest.mark.usefixtures("prefect_api")
def test_parallel_scoring_on_dask_writes_what_a_sequential_run_writes(tmp_path: Path, monkeypatch) -> None:
    from prefect_dask import DaskTaskRunner

    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.services import backtest
    from flows.score_predictions import score_predictions
    from tasks.context import reset_runtime

    models = tmp_path / "models"
    models.mkdir()
    for name in ("gaussian_step", "subtracker"):
        (models / name).symlink_to(PROJECT_DIR / "examples" / "games" / "crunch_synth" / name)
    for key, value in {**ENV, "MODELS_DIR": str(models)}.items():
        monkeypatch.setenv(key, value)
    first = tmp_path / "sequential.db"
    url = f"sqlite:///{first}"
    upgrade(url)
    rt = build_runtime(database_url=url)
    backtest.prepare(rt, START)
    for now in backtest.virtual_times(START, START + timedelta(hours=2), backtest.step_seconds(rt)):
        backtest.ingest(rt.uow, rt.sources, rt.settings, now, rt.contract.history_seconds)
        backtest.predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, now)
    rt.close()
    get_engine(url).dispose()
    second = tmp_path / "parallel.db"
    shutil.copy(first, second)
    as_of = START + timedelta(hours=2)

    monkeypatch.setenv("DATABASE_URL", url)
    reset_runtime()
    score_predictions(as_of=as_of)
    sequential = _rows(url)

    parallel_url = f"sqlite:///{second}"
    monkeypatch.setenv("DATABASE_URL", parallel_url)
    reset_runtime()
    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None},
    )
    score_predictions.with_options(task_runner=runner)(as_of=as_of, parallel=True)
    parallel = _rows(parallel_url)
    reset_runtime()
    assert len(sequential["scores"]) >= 8 and any(r[3] == "SCORED" for r in sequential["scores"])
    assert parallel == sequential
    assert os.environ["DATABASE_URL"] == parallel_url
