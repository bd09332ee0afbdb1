"""Tournament (batch) mode: a round is a dataset sent once; every id is predicted; the era is
resolved later in one batch by rank correlation; the mode backtests (both databases)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from coordinator_core.games import tournament
from coordinator_core.services import backtest
from tests.conftest import PROJECT_DIR

START = datetime(2026, 1, 5, tzinfo=UTC)


def test_the_shipped_dataset_is_what_generate_writes(tmp_path: Path) -> None:
    again = tmp_path / "eras.csv"
    tournament.generate(again)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(tournament.DATASET.read_bytes()).hexdigest()


def test_spearman_by_hand() -> None:
    assert tournament.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert tournament.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert tournament.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254037844386)  # ties share ranks
    assert tournament.spearman([5, 5, 5], [1, 2, 3]) == 0.0


def test_a_tournament_backtest_scores_whole_eras_after_their_horizon(make_runtime) -> None:
    rt = make_runtime(
        crunch_contract="coordinator_core.games.tournament:contract",
        feed_source="synthetic",
        feed_subjects="TOURNAMENT",
        models_dir=str(PROJECT_DIR / "examples" / "tournament"),
        checkpoint_interval_seconds=7 * 86_400,
    )
    backtest.prepare(rt, START)
    totals = backtest.run_steps(rt, list(backtest.virtual_times(START, START + timedelta(days=10), 86_400)))
    assert totals["rounds"] == 11 and totals["predictions"] == 33
    with rt.engine.connect() as c:
        inputs = c.execute(
            text("SELECT round_at, status, meta_jsonb, raw_data_jsonb FROM inputs ORDER BY round_at")
        ).all()
        scores = c.execute(text("SELECT model_id, value, prediction_status, input_id FROM scores")).all()
    meta = [m if isinstance(m, dict) else json.loads(m) for _, _, m, _ in inputs]
    assert [m["era"] for m in meta] == list(range(11))
    data = inputs[0][3] if isinstance(inputs[0][3], dict) else json.loads(inputs[0][3])
    assert len(data["ids"]) == tournament.IDS and len(data["features"][0]) == tournament.FEATURES
    # an era is resolved three days after it opened: eras 0..7 by day 10, none later
    assert [status for _, status, _, _ in inputs] == ["RESOLVED"] * 8 + ["RECEIVED"] * 3
    by_model = {}
    for model_id, value, status, _ in scores:
        by_model.setdefault(model_id, []).append((status, value))
    assert len(by_model["linear"]) == 8 and all(s == "SCORED" for s, _ in by_model["linear"])
    ids, _, targets = tournament.dataset()[0]
    expected = tournament.spearman([row[0] for row in tournament.dataset()[0][1]], targets)
    era0 = [v for m, v, s, i in scores if m == "first_feature" and i == "INP_tournament_20260105T000000"]
    assert era0 == [pytest.approx(expected, rel=1e-12)]
    assert [s for s, _ in by_model["noise"]].count("FAILED") == 4  # odd eras: a third of the ids answered
