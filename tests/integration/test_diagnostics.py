"""The failure reports and the alerts' read queries (``coordinator_core.diagnostics``) against the
rows the services write, on SQLite and Postgres: the period's failures by model and kind agree
with what the scoring runs counted; rounds closed with nothing scored; models failing in a row."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from coordinator_core import diagnostics
from coordinator_core.domain import failures as rules
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import predict_round
from coordinator_core.services.score import score_predictions
from tests._svc_helpers import HOUR, raise_above_threshold, utc, write_model

T = utc(2019, 9, 1, 12)
SCORING_HELPER = f"{raise_above_threshold.__module__}:raise_above_threshold"  # raises for a value above 0.1


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model(root, "lo", 'return {"value": 0.001}')
    write_model(root, "hi", 'return {"value": 0.5}')  # the scoring helper raises on it
    write_model(root, "boom", 'raise RuntimeError("boom at predict")')
    write_model(root, "junk", 'return {"value": "up"}')
    write_model(root, "broken", "", source="def predict(:\n")  # fails to load: ABSENT
    return root


def step(rt, now):
    ingest(rt.uow, rt.sources, rt.settings, now)
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, now)
    return score_predictions(rt.uow, rt.contract, rt.settings, now)


def test_the_period_report_agrees_with_what_the_runs_counted(make_runtime, models_dir) -> None:
    rt = make_runtime(models_dir=str(models_dir), scoring_function=SCORING_HELPER)
    seed_configs(rt.uow, rt.contract, rt.settings, T)
    counted: rules.Failures = Counter()
    for hour in range(5):  # rounds at T .. T + 4 h, two configs (1 h and 4 h)
        counted.update(step(rt, T + hour * HOUR).failures)
    ingest(rt.uow, rt.sources, rt.settings, T + 8 * HOUR)
    counted.update(score_predictions(rt.uow, rt.contract, rt.settings, T + 8 * HOUR).failures)  # every round closed
    assert rules.kinds(counted) == {
        rules.SCORING_FUNCTION: 10,  # hi, in every round: the designer's function, not the model
        rules.MODEL_ERROR: 10,
        rules.INVALID_OUTPUT: 10,
        rules.ABSENT: 10,
    }

    found = diagnostics.failures(rt.engine, T, T + 5 * HOUR)
    assert found.failures == counted  # the stored rows tell the same kinds and reasons as the runs did
    assert found.statuses == {"SCORED": 10, "FAILED": 30, "ABSENT": 10}
    by_model = {(g.model_id, g.kind): g for g in found.groups}
    assert set(by_model) == {
        ("hi", rules.SCORING_FUNCTION),
        ("boom", rules.MODEL_ERROR),
        ("junk", rules.INVALID_OUTPUT),
        ("broken", rules.ABSENT),
    }
    hi = by_model[("hi", rules.SCORING_FUNCTION)]
    assert hi.count == 10 and hi.reason == "scoring function raised ValueError: prediction N is above the threshold N"
    assert hi.example == "scoring function raised ValueError: prediction 0.5 is above the threshold 0.1"
    assert hi.first_at == T and hi.last_at == T + 4 * HOUR
    assert by_model[("boom", rules.MODEL_ERROR)].example.startswith("FAILED: ")
    assert by_model[("broken", rules.ABSENT)].example.startswith("no answer: model failed to load")
    assert diagnostics.failures(rt.engine, T - HOUR, T).groups == []  # the period bounds the report
    assert sum(g.count for g in diagnostics.failures(rt.engine, T, T + HOUR).groups) == 8  # one round time


def test_rounds_closed_with_nothing_scored(make_runtime, tmp_path: Path) -> None:
    root = tmp_path / "failing"
    write_model(root, "boom", 'raise RuntimeError("boom at predict")')
    write_model(root, "hi", 'return {"value": 0.5}')
    rt = make_runtime(models_dir=str(root), scoring_function=SCORING_HELPER)
    seed_configs(rt.uow, rt.contract, rt.settings, T)
    step(rt, T)
    assert diagnostics.due_input_ids(rt.engine, T + HOUR - timedelta(seconds=1)) == []
    due = diagnostics.due_input_ids(rt.engine, T + HOUR)
    assert due == ["INP_BTC-3600_20190901T120000"]
    ingest(rt.uow, rt.sources, rt.settings, T + HOUR)
    result = score_predictions(rt.uow, rt.contract, rt.settings, T + HOUR)
    assert result.resolved == 1 and result.statuses["SCORED"] == 0
    (unscored,) = diagnostics.unscored_rounds(rt.engine, due)
    assert unscored.input_id == due[0] and unscored.scope_key == "BTC-3600" and unscored.round_at == T
    assert unscored.predictions == {"FAILED": 2} and unscored.reason == "every prediction failed or was absent"
    assert diagnostics.unscored_rounds(rt.engine, ["INP_BTC-14400_20190901T120000"]) == []  # still open


def test_rounds_with_a_scored_prediction_are_not_unscored(make_runtime, models_dir) -> None:
    rt = make_runtime(models_dir=str(models_dir), scoring_function=SCORING_HELPER)
    seed_configs(rt.uow, rt.contract, rt.settings, T)
    step(rt, T)
    due = diagnostics.due_input_ids(rt.engine, T + HOUR)
    step(rt, T + HOUR)
    assert due and diagnostics.unscored_rounds(rt.engine, due) == []


def test_failing_streaks_count_the_models_own_failures_in_a_row(make_runtime, models_dir) -> None:
    rt = make_runtime(models_dir=str(models_dir), scoring_function=SCORING_HELPER)
    seed_configs(rt.uow, rt.contract, rt.settings, T)
    for hour in range(3):
        step(rt, T + hour * HOUR)
    streaks = diagnostics.failing_streaks(rt.engine, ["lo", "hi", "boom", "junk", "broken"], limit=10)
    assert set(streaks) == {"boom", "junk", "broken"}  # hi's failures are the scoring function's, lo succeeds
    assert streaks["boom"].rounds == 6 and streaks["boom"].since == T  # 3 round times x 2 configs
    assert streaks["boom"].reasons[0].startswith("FAILED: RuntimeError: boom at predict")
    assert diagnostics.failing_streaks(rt.engine, ["boom"], limit=4)["boom"].rounds == 4  # bounded by the limit
