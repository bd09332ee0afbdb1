"""Prediction rounds against a custom MODELS_DIR of tiny models (SQLite and Postgres)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from coordinator_core.db.tables import Input, Model, Prediction
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import predict_round
from tests._svc_helpers import HOUR, candles, rows, utc, write_model

T = utc(2019, 9, 1, 12)
CONFIGS = ("CFG_BTC-3600", "CFG_BTC-14400")


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model(
        root,
        "good",
        'return {"value": 0.001}',
        model_json={"name": "Good one", "player_id": "player-g", "player_name": "Gina"},
    )
    write_model(root, "dozy", 'time.sleep(0.12)\nreturn {"value": -0.002}', header="import time\n")
    write_model(
        root,
        "boom",
        'raise RuntimeError("kaboom 42")',
        model_json={"name": "Boom", "player_id": "player-b", "player_name": "Bo"},
    )
    write_model(root, "badvalue", 'return {"value": "abc"}')
    write_model(root, "notdict", "return [0.001]")
    write_model(root, "sleepy", 'time.sleep(1.5)\nreturn {"value": 0.0}', header="import time\n")
    write_model(root, "broken", "", source="from tracker import TrackerBase\n\nclass Broken(TrackerBase:\n    pass\n")
    (root / "not_a_model").mkdir()  # no main.py: not a model
    return root


@pytest.fixture
def rt(make_runtime, models_dir):
    runtime = make_runtime(models_dir=str(models_dir), local_model_timeout_seconds=0.3)
    seed_configs(runtime.uow, runtime.contract, runtime.settings, T)
    ingest(runtime.uow, runtime.sources, runtime.settings, T - 48 * HOUR)
    ingest(runtime.uow, runtime.sources, runtime.settings, T)  # the table now holds T-169h .. T-1h
    return runtime


def _predictions(engine):
    return {(p["prediction_config_id"], p["model_id"]): p for p in rows(engine, Prediction)}


MODELS = {"good", "dozy", "boom", "badvalue", "notdict", "sleepy", "broken"}


def test_one_prediction_per_config_and_model_with_the_right_status(rt):
    result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T)

    assert sorted(result.inputs) == ["INP_BTC-14400_20190901T120000", "INP_BTC-3600_20190901T120000"]
    preds = rows(rt.engine, Prediction)
    assert len(preds) == len(CONFIGS) * len(MODELS)
    assert {(p["prediction_config_id"], p["model_id"]) for p in preds} == {(c, m) for c in CONFIGS for m in MODELS}
    by_key = _predictions(rt.engine)
    inputs = {i["prediction_config_id"]: i for i in rows(rt.engine, Input)}
    for config in CONFIGS:
        p = {m: by_key[(config, m)] for m in MODELS}
        assert all(x["input_id"] == inputs[config]["id"] for x in p.values())

        assert p["good"]["status"] == "PENDING" and p["good"]["failed_reason"] is None
        assert p["good"]["inference_output_jsonb"] == {"value": 0.001}
        assert p["dozy"]["status"] == "PENDING"

        assert p["boom"]["status"] == "FAILED"
        assert "kaboom 42" in p["boom"]["failed_reason"]
        assert "RuntimeError" in p["boom"]["failed_reason"]

        assert p["badvalue"]["status"] == "FAILED"
        assert "invalid output" in p["badvalue"]["failed_reason"] and "value" in p["badvalue"]["failed_reason"]
        assert p["badvalue"]["inference_output_jsonb"] == {"raw_output": {"value": "abc"}}  # kept, never coerced

        assert p["notdict"]["status"] == "FAILED"
        assert "invalid output" in p["notdict"]["failed_reason"]
        assert "list" in p["notdict"]["failed_reason"]

        assert p["sleepy"]["status"] == "FAILED"
        assert "TIMEOUT" in p["sleepy"]["failed_reason"]

        assert p["broken"]["status"] == "ABSENT"
        assert "failed to load" in p["broken"]["failed_reason"]
        assert "SyntaxError" in p["broken"]["failed_reason"]
    assert result.statuses == {"PENDING": 4, "FAILED": 8, "ABSENT": 2}


def test_exec_time_is_in_milliseconds(rt):
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T)
    by_key = _predictions(rt.engine)

    # the first predict call of the round (BTC-3600, lowest order) hits the 0.3 s deadline
    assert 290 <= by_key[("CFG_BTC-3600", "sleepy")]["exec_time_ms"] <= 1_000
    for config in CONFIGS:
        assert 100 <= by_key[(config, "dozy")]["exec_time_ms"] < 300  # a measured 0.12 s sleep
        assert 0 <= by_key[(config, "good")]["exec_time_ms"] < 100
        assert by_key[(config, "broken")]["exec_time_ms"] == 0


def test_input_holds_the_newest_closed_candles(rt):
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T)

    inputs = rows(rt.engine, Input)
    assert len(inputs) == 2
    window = rt.settings.feed_candles_window
    for inp in inputs:
        assert inp["round_at"] == T and inp["received_at"] == T and inp["status"] == "RECEIVED"
        data = inp["raw_data_jsonb"]
        assert data["subject"] == "BTC" and data["asof_ts"] == int(T.timestamp())
        ts = [c["ts"] for c in data["candles"]]
        assert len(ts) == window
        assert ts == sorted(ts)
        assert ts[-1] == int((T - HOUR).timestamp())  # newest closed candle, not the oldest in the table
        assert ts[0] == int((T - window * HOUR).timestamp())
        for candle in data["candles"]:
            opened = utc(1970, 1, 1) + timedelta(seconds=candle["ts"])
            assert candle["close"] == candles()[opened]["close"]
    horizons = {i["scope_key"]: i["resolvable_at"] - T for i in inputs}
    assert horizons == {"BTC-3600": HOUR, "BTC-14400": 4 * HOUR}


def test_predicting_again_for_the_same_time_writes_nothing(rt):
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T)
    before_inputs, before_preds = rows(rt.engine, Input), rows(rt.engine, Prediction)

    for again in (T, T + timedelta(minutes=20)):  # the same hourly slot
        result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, again)
        assert result.inputs == [] and sum(result.statuses.values()) == 0

    assert rows(rt.engine, Input) == before_inputs
    assert rows(rt.engine, Prediction) == before_preds


def test_next_slot_is_a_new_round(rt):
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T)
    ingest(rt.uow, rt.sources, rt.settings, T + HOUR)
    result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T + HOUR)
    assert sorted(result.inputs) == ["INP_BTC-14400_20190901T130000", "INP_BTC-3600_20190901T130000"]
    assert len(rows(rt.engine, Prediction)) == 2 * len(CONFIGS) * len(MODELS)


def test_stale_feed_skips_the_round(rt):
    later = T + 5 * HOUR  # nothing ingested after T: the newest close is 5 h old
    result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, later)

    assert result.inputs == []
    assert set(result.skipped) == {"BTC-3600", "BTC-14400"}
    assert all("no feed data" in reason and "replay:BTC:candle:1h" in reason for reason in result.skipped.values())
    assert rows(rt.engine, Input) == []
    assert rows(rt.engine, Prediction) == []


def test_empty_feed_skips_the_round(make_runtime, models_dir):
    runtime = make_runtime(models_dir=str(models_dir), local_model_timeout_seconds=0.3)
    seed_configs(runtime.uow, runtime.contract, runtime.settings, T)
    result = predict_round(runtime.uow, runtime.gateway, runtime.contract, runtime.settings, T)
    assert result.inputs == [] and set(result.skipped) == {"BTC-3600", "BTC-14400"}
    assert rows(runtime.engine, Input) == [] and rows(runtime.engine, Prediction) == []


def test_models_table_holds_the_registry(rt):
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T)

    models = {m["id"]: m for m in rows(rt.engine, Model)}
    assert set(models) == MODELS
    assert (models["good"]["name"], models["good"]["player_id"], models["good"]["player_name"]) == (
        "Good one",
        "player-g",
        "Gina",
    )
    assert models["boom"]["player_id"] == "player-b"
    for name in MODELS - {"good", "boom"}:  # no model.json: the folder name
        assert models[name]["player_id"] == name and models[name]["name"] == name
    assert all(m["first_seen_at"] == T for m in models.values())
    assert models["boom"]["last_failure_code"] == "FAILED"
    assert models["sleepy"]["last_failure_code"] == "TIMEOUT"
    assert models["good"]["last_failure_code"] is None


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        ('return {"value": float("nan")}', "finite"),
        ('raise RuntimeError("bad\\x00byte")', "RuntimeError"),
    ],
    ids=["nan-output", "nul-in-error"],
)
def test_hostile_model_text_fails_only_that_model(make_runtime, tmp_path, body, reason_part):
    root = tmp_path / "models"
    write_model(root, "good", 'return {"value": 0.001}')
    write_model(root, "hostile", body)
    runtime = make_runtime(models_dir=str(root))
    seed_configs(runtime.uow, runtime.contract, runtime.settings, T)
    ingest(runtime.uow, runtime.sources, runtime.settings, T)

    result = predict_round(runtime.uow, runtime.gateway, runtime.contract, runtime.settings, T)

    assert len(result.inputs) == 2
    by_key = _predictions(runtime.engine)
    for config in CONFIGS:
        assert by_key[(config, "good")]["status"] == "PENDING"
        assert by_key[(config, "hostile")]["status"] == "FAILED"
        assert reason_part in by_key[(config, "hostile")]["failed_reason"]
