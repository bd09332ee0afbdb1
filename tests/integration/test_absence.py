"""Absence on SQLite and Postgres, with real in-process models: a model that leaves the gateway
(its folder removed from MODELS_DIR, so the local gateway no longer reports it) gets ABSENT rows
after ``ABSENCE_GRACE_SECONDS``, charged by the missing-prediction policy in the scores and the
leaderboard; within the grace it gets none; after ``MODEL_DEREGISTER_AFTER_SECONDS`` without
running it is DEREGISTERED and no longer charged; back in MODELS_DIR it is registered again."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from coordinator_core.db.tables import Leaderboard, Model, Prediction, Score
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import deregister, predict_round
from coordinator_core.services.score import score_predictions
from tests._svc_helpers import HOUR, rows, utc, write_model

T = utc(2019, 9, 1, 12)
SETTINGS = {"absence_grace_seconds": 7200, "model_deregister_after_seconds": 5 * 3600}


def _models(root: Path) -> Path:
    write_model(root, "good", 'return {"value": 0.001}')
    write_model(root, "bad", 'return {"value": -0.02}')
    write_model(root, "gone", 'return {"value": 0.005}')
    return root


def _at(engine, now, model_id: str) -> list[dict]:
    return [p for p in rows(engine, Prediction) if p["model_id"] == model_id and p["performed_at"] == now]


def _state(engine, model_id: str) -> dict:
    return next(m for m in rows(engine, Model) if m["id"] == model_id)


def test_a_model_that_leaves_is_absent_after_the_grace_charged_deregistered_and_registered_again(
    make_runtime, tmp_path: Path
) -> None:
    root = _models(tmp_path / "models")
    kept = tmp_path / "kept"
    everyone = make_runtime(models_dir=str(root), **SETTINGS)
    seed_configs(everyone.uow, everyone.contract, everyone.settings, T)
    engine = everyone.engine

    def step(runtime, now):
        ingest(runtime.uow, runtime.sources, runtime.settings, now)
        return predict_round(runtime.uow, runtime.gateway, runtime.contract, runtime.settings, now)

    step(everyone, T)
    shutil.move(str(root / "gone"), str(kept / "gone"))
    two = make_runtime(models_dir=str(root), **SETTINGS)  # "gone" is no longer reported
    step(two, T + HOUR)
    assert _state(engine, "gone")["state"] == "STOPPED" and _state(engine, "gone")["running_at"] == T
    assert _at(engine, T + HOUR, "gone") == []  # within the 2 h grace
    result = step(two, T + 2 * HOUR)
    absent = _at(engine, T + 2 * HOUR, "gone")
    assert len(absent) == len(result.inputs) >= 1 and result.statuses["ABSENT"] == len(absent)
    assert {p["status"] for p in absent} == {"ABSENT"} and all(p["id"].startswith("ABS_gone_") for p in absent)
    assert all("STOPPED" in p["failed_reason"] and T.isoformat() in p["failed_reason"] for p in absent)
    count = len(rows(engine, Prediction))
    assert step(two, T + 2 * HOUR).inputs == [] and len(rows(engine, Prediction)) == count  # a re-run: 0 rows

    # charged: worst_in_round gives the ABSENT row the worst valid score of its round (bad's)
    ingest(two.uow, two.sources, two.settings, T + 4 * HOUR)  # the exit price of the 1 h round
    score_predictions(two.uow, two.contract, two.settings, T + 3 * HOUR + timedelta(seconds=1))
    scores = {s["prediction_id"]: s for s in rows(engine, Score)}
    [one_hour] = [p for p in absent if p["scope_key"] == "BTC-3600"]
    bad = next(p for p in rows(engine, Prediction) if p["input_id"] == one_hour["input_id"] and p["model_id"] == "bad")
    assert scores[one_hour["id"]]["prediction_status"] == "ABSENT" and scores[one_hour["id"]]["success"] is False
    assert (
        scores[one_hour["id"]]["value"]
        == scores[bad["id"]]["value"]
        < scores[
            next(
                p["id"]
                for p in rows(engine, Prediction)
                if p["input_id"] == one_hour["input_id"] and p["model_id"] == "good"
            )
        ]["value"]
    )
    board = max(rows(engine, Leaderboard), key=lambda b: b["created_at"])
    entry = next(e for e in board["entries_jsonb"] if e["model_id"] == "gone")
    assert entry["absent_count"] >= 1

    step(two, T + 4 * HOUR)
    assert _at(engine, T + 4 * HOUR, "gone") != []
    step(two, T + 5 * HOUR)  # 5 h without running: deregistered
    assert _state(engine, "gone")["state"] == "DEREGISTERED" and _at(engine, T + 5 * HOUR, "gone") == []
    step(two, T + 6 * HOUR)
    assert _at(engine, T + 6 * HOUR, "gone") == []

    shutil.move(str(kept / "gone"), str(root / "gone"))
    back = make_runtime(models_dir=str(root), **SETTINGS)
    step(back, T + 7 * HOUR)
    assert _state(engine, "gone")["state"] == "RUNNING" and _state(engine, "gone")["running_at"] == T + 7 * HOUR
    assert {p["status"] for p in _at(engine, T + 7 * HOUR, "gone")} == {"PENDING"}


def test_deregistered_by_hand_is_no_longer_charged(make_runtime, tmp_path: Path) -> None:
    root = _models(tmp_path / "models")
    runtime = make_runtime(models_dir=str(root), absence_grace_seconds=0)
    seed_configs(runtime.uow, runtime.contract, runtime.settings, T)
    ingest(runtime.uow, runtime.sources, runtime.settings, T + 3 * HOUR)
    predict_round(runtime.uow, runtime.gateway, runtime.contract, runtime.settings, T)
    shutil.rmtree(root / "bad")
    left = make_runtime(models_dir=str(root), absence_grace_seconds=0)
    predict_round(left.uow, left.gateway, left.contract, left.settings, T + HOUR)
    engine = runtime.engine
    assert {p["status"] for p in _at(engine, T + HOUR, "bad")} == {"ABSENT"}  # grace 0: the next round
    assert deregister(left.uow, "bad", T + HOUR) == "STOPPED"
    assert deregister(left.uow, "nobody", T + HOUR) is None
    predict_round(left.uow, left.gateway, left.contract, left.settings, T + 2 * HOUR)
    assert _state(engine, "bad")["state"] == "DEREGISTERED" and _at(engine, T + 2 * HOUR, "bad") == []
    with engine.connect() as connection:
        absent = connection.execute(
            select(func.count()).select_from(Prediction).where(Prediction.status == "ABSENT")  # type: ignore[arg-type]
        ).scalar()
    assert absent == len(_at(engine, T + HOUR, "bad"))
