"""Scheduled prediction configs: seeding, stable ids, deactivation, and the errors of a bad file."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from coordinator_core.db.tables import Input, Prediction, ScheduledPredictionConfigRow
from coordinator_core.errors import ConfigurationError
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import predict_round
from tests._svc_helpers import HOUR, rows, utc, write_model

T = utc(2019, 9, 1, 12)


def _config(scope_key: str, horizon: int, order: int = 0, **extra: object) -> dict:
    return {
        "scope_key": scope_key,
        "scope_template": {"subject": "BTC", "horizon_seconds": horizon, "step_seconds": 900},
        "schedule": {"prediction_interval_seconds": 3600, "resolve_after_seconds": horizon},
        "order": order,
        **extra,
    }


def _write(path: Path, data: object) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _seed(rt):
    return seed_configs(rt.uow, rt.contract, rt.settings, T)


def _by_scope(engine):
    return {r["scope_key"]: r for r in rows(engine, ScheduledPredictionConfigRow)}


@pytest.fixture
def fast_models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model(root, "one", 'return {"value": 0.001}')
    write_model(root, "two", 'return {"value": -0.001}')
    return root


def test_seeding_twice_never_fails_and_keeps_ids(make_runtime):
    rt = make_runtime()
    first = _seed(rt)
    table_before = rows(rt.engine, ScheduledPredictionConfigRow)

    second = seed_configs(rt.uow, rt.contract, rt.settings, T + HOUR)

    assert first == second == ["CFG_BTC-3600", "CFG_BTC-14400"]
    table_after = rows(rt.engine, ScheduledPredictionConfigRow)
    assert table_after == table_before  # nothing changed, nothing rewritten
    configs = {r["scope_key"]: r for r in table_after}
    assert configs["BTC-3600"]["scope_template_jsonb"]["horizon_seconds"] == 3600
    assert configs["BTC-3600"]["schedule_jsonb"]["prediction_interval_seconds"] == 3600
    assert configs["BTC-14400"]["scope_template_jsonb"]["horizon_seconds"] == 14400
    assert configs["BTC-14400"]["schedule_jsonb"]["prediction_interval_seconds"] == 3600
    assert configs["BTC-14400"]["schedule_jsonb"]["resolve_after_seconds"] == 14400
    assert all(r["active"] for r in table_after)


def test_reordering_and_removing_configs_keeps_ids_and_history(make_runtime, tmp_path, fast_models):
    path = tmp_path / "configs.json"
    _write(
        path, [_config("BTC-1h", 3600, order=1), _config("BTC-2h", 7200, order=2), _config("BTC-4h", 14400, order=3)]
    )
    rt = make_runtime(scheduled_prediction_configs_path=str(path), models_dir=str(fast_models))
    ids = _seed(rt)
    assert ids == ["CFG_BTC-1h", "CFG_BTC-2h", "CFG_BTC-4h"]
    ingest(rt.uow, rt.sources, rt.settings, T)
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T)
    preds_before = rows(rt.engine, Prediction)
    assert {p["prediction_config_id"] for p in preds_before} == set(ids)

    # reorder (4h first), drop 2h, change 1h's order: ids follow scope_key, not list position
    _write(path, [_config("BTC-4h", 14400, order=1), _config("BTC-1h", 3600, order=5)])
    active = _seed(rt)

    assert active == ["CFG_BTC-4h", "CFG_BTC-1h"]
    configs = _by_scope(rt.engine)
    assert {k: v["id"] for k, v in configs.items()} == {
        "BTC-1h": "CFG_BTC-1h",
        "BTC-2h": "CFG_BTC-2h",
        "BTC-4h": "CFG_BTC-4h",
    }
    assert configs["BTC-2h"]["active"] is False
    assert configs["BTC-1h"]["active"] is True and configs["BTC-4h"]["active"] is True
    assert configs["BTC-1h"]["order"] == 5 and configs["BTC-4h"]["order"] == 1
    assert configs["BTC-4h"]["scope_template_jsonb"]["horizon_seconds"] == 14400  # not relinked to another config
    # history keeps its link, and each prediction still points at a config with its own scope_key
    assert rows(rt.engine, Prediction) == preds_before
    for p in preds_before:
        assert configs[p["scope_key"]]["id"] == p["prediction_config_id"]

    ingest(rt.uow, rt.sources, rt.settings, T + HOUR)
    result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, T + HOUR)
    assert sorted(result.inputs) == ["INP_BTC-1h_20190901T130000", "INP_BTC-4h_20190901T130000"]
    new_inputs = [i for i in rows(rt.engine, Input) if i["round_at"] == T + HOUR]
    assert {i["prediction_config_id"] for i in new_inputs} == {"CFG_BTC-1h", "CFG_BTC-4h"}

    # listing it again reactivates the same row
    _write(path, [_config("BTC-2h", 7200, order=2)])
    assert _seed(rt) == ["CFG_BTC-2h"]
    configs = _by_scope(rt.engine)
    assert configs["BTC-2h"]["active"] is True and configs["BTC-2h"]["id"] == "CFG_BTC-2h"
    assert configs["BTC-1h"]["active"] is False and configs["BTC-4h"]["active"] is False


def test_config_listed_inactive_is_stored_inactive(make_runtime, tmp_path):
    path = _write(tmp_path / "c.json", [_config("BTC-1h", 3600), _config("BTC-4h", 14400, active=False)])
    rt = make_runtime(scheduled_prediction_configs_path=path)
    assert _seed(rt) == ["CFG_BTC-1h"]
    assert _by_scope(rt.engine)["BTC-4h"]["active"] is False


@pytest.mark.parametrize(
    ("template", "used", "named"),
    [
        (
            {"asset": "BTC", "horizon": 3600, "step": 900},
            ["asset", "horizon", "step"],
            ["subject", "horizon_seconds", "step_seconds"],
        ),
        ({"subject": "BTC", "horizon": 3600, "step_seconds": 900}, ["horizon"], ["horizon_seconds"]),
    ],
)
def test_old_engine_keys_raise_configuration_error(make_runtime, tmp_path, template, used, named):
    path = _write(tmp_path / "c.json", [{"scope_key": "legacy", "scope_template": template}])
    rt = make_runtime(scheduled_prediction_configs_path=path)
    with pytest.raises(ConfigurationError) as info:
        _seed(rt)
    message = str(info.value)
    assert "'legacy'" in message
    found = re.search(r"uses (\[.*?\]); write (\[.*?\]) instead", message)
    assert found, message
    assert ast.literal_eval(found.group(1)) == used
    assert ast.literal_eval(found.group(2)) == named
    assert rows(rt.engine, ScheduledPredictionConfigRow) == []


def test_subject_outside_feed_subjects_raises(make_runtime, tmp_path):
    path = _write(
        tmp_path / "c.json", [_config("BTC-1h", 3600), {"scope_key": "ETH-1h", "scope_template": {"subject": "ETH"}}]
    )
    rt = make_runtime(scheduled_prediction_configs_path=path)
    with pytest.raises(ConfigurationError) as info:
        _seed(rt)
    assert "'ETH'" in str(info.value) and "FEED_SUBJECTS" in str(info.value) and "ETH-1h" in str(info.value)
    assert rows(rt.engine, ScheduledPredictionConfigRow) == []  # nothing half-seeded


def test_bad_file_does_not_deactivate_existing_configs(make_runtime, tmp_path):
    rt = make_runtime()
    _seed(rt)
    before = rows(rt.engine, ScheduledPredictionConfigRow)
    bad = make_runtime(scheduled_prediction_configs_path=_write(tmp_path / "c.json", "[{"))
    with pytest.raises(ConfigurationError):
        seed_configs(bad.uow, bad.contract, bad.settings, T)
    assert rows(rt.engine, ScheduledPredictionConfigRow) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[{", "is not valid JSON"),
        ("", "is not valid JSON"),
        ('{"scope_key": "BTC-1h"}', "must hold a JSON array"),
        ('"BTC-1h"', "must hold a JSON array"),
        ('[{"scope_template": {"subject": "BTC"}}]', "entry 0: scope_key"),
        ('[{"scope_key": "a"}, {"scope_key": "b", "schedule": {"prediction_interval_seconds": 0}}]', "entry 1"),
    ],
)
def test_malformed_file_raises_naming_the_variable(make_runtime, tmp_path, content, expected):
    path = _write(tmp_path / "c.json", content)
    rt = make_runtime(scheduled_prediction_configs_path=path)
    with pytest.raises(ConfigurationError) as info:
        _seed(rt)
    assert "SCHEDULED_PREDICTION_CONFIGS_PATH" in str(info.value)
    assert expected in str(info.value)
    assert path in str(info.value)


def test_missing_file_raises_naming_the_variable(make_runtime, tmp_path):
    rt = make_runtime(scheduled_prediction_configs_path=str(tmp_path / "nope.json"))
    with pytest.raises(ConfigurationError, match="SCHEDULED_PREDICTION_CONFIGS_PATH.*does not exist"):
        _seed(rt)


def test_duplicate_scope_key_raises(make_runtime, tmp_path):
    path = _write(tmp_path / "c.json", [_config("BTC-1h", 3600), _config("BTC-1h", 7200)])
    rt = make_runtime(scheduled_prediction_configs_path=path)
    with pytest.raises(ConfigurationError, match="appears twice"):
        _seed(rt)


def test_scope_keys_that_differ_only_in_unsafe_characters_get_distinct_ids(make_runtime, tmp_path):
    path = tmp_path / "c.json"
    _write(path, [_config("BTC 1h", 3600)])
    rt = make_runtime(scheduled_prediction_configs_path=str(path))
    [old_id] = _seed(rt)
    assert _seed(rt) == [old_id]  # derived from the scope_key: stable

    _write(path, [_config("BTC_1h", 3600)])  # a rename: a different scope_key, a different config
    try:
        [new_id] = _seed(rt)
    except ConfigurationError:
        return  # refusing the ambiguous key with a clear message would be acceptable too
    configs = _by_scope(rt.engine)
    assert new_id != old_id
    assert (configs["BTC 1h"]["id"], configs["BTC_1h"]["id"]) == (old_id, new_id)
    assert configs["BTC 1h"]["active"] is False and configs["BTC_1h"]["active"] is True

    _write(path, [_config("BTC 1h", 3600), _config("BTC_1h", 3600), _config("BTC/1h", 3600)])
    ids = _seed(rt)
    assert len(set(ids)) == 3 and ids[:2] == [old_id, new_id]


def test_a_config_that_can_never_resolve_gets_a_warning_at_start(make_runtime, caplog) -> None:
    rt = make_runtime(resolve_give_up_seconds=120, ingest_interval_seconds=60)  # 1 h candles: known 3,660 s after
    import logging

    with caplog.at_level(logging.WARNING, logger="coordinator_core.services.configs"):
        seed_configs(rt.uow, rt.contract, rt.settings, utc(2019, 9, 1))
    assert "can never resolve" in caplog.text and "RESOLVE_GIVE_UP_SECONDS=120" in caplog.text
    caplog.clear()
    rt = make_runtime()
    with caplog.at_level(logging.WARNING, logger="coordinator_core.services.configs"):
        seed_configs(rt.uow, rt.contract, rt.settings, utc(2019, 9, 1))
    assert "can never resolve" not in caplog.text
