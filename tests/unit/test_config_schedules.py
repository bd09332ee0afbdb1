"""Scheduled prediction configs refuse unknown keys, naming the key, the scope_key and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError as PydanticValidationError

from coordinator_core.contract import Schedule, ScheduledPredictionConfig
from coordinator_core.errors import ConfigurationError
from coordinator_core.services.configs import load_config_file


def _entry(**extra: object) -> dict:
    return {
        "scope_key": "BTC-1h",
        "scope_template": {"subject": "BTC", "horizon_seconds": 3600, "step_seconds": 900},
        "schedule": {"prediction_interval_seconds": 3600, "resolve_after_seconds": 3600},
        **extra,
    }


def _load(tmp_path: Path, entries: list) -> str:
    path = tmp_path / "configs.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ConfigurationError) as info:
        load_config_file(str(path))
    return str(info.value)


def test_old_engines_every_seconds_is_refused_with_its_replacement(tmp_path: Path) -> None:
    entry = _entry(schedule={"every_seconds": 60})
    message = _load(tmp_path, [_entry(scope_key="BTC-4h"), entry])
    assert message == (
        f"SCHEDULED_PREDICTION_CONFIGS_PATH: {tmp_path / 'configs.json'} entry 1: config 'BTC-1h': "
        "schedule: unknown key 'every_seconds' (use 'prediction_interval_seconds' instead)"
    )


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        (
            {"resolve_horizon_seconds": 60},
            "unknown key 'resolve_horizon_seconds' (use 'resolve_after_seconds' instead)",
        ),
        ({"prediction_interval_secs": 60}, "unknown key 'prediction_interval_secs' (did you mean"),
        ({"cron": "* * * * *"}, "unknown key 'cron' (the keys are prediction_interval_seconds, resolve_after_seconds)"),
    ],
)
def test_other_unknown_schedule_keys(tmp_path: Path, schedule: dict, says: str) -> None:
    message = _load(tmp_path, [_entry(schedule=schedule)])
    assert "entry 0: config 'BTC-1h': schedule: " in message
    assert says in message


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"enabled": False}, "unknown key 'enabled' (use 'active' instead)"),
        ({"metadata": {}}, "unknown key 'metadata' (use 'meta' instead)"),
        ({"id": "CFG_1"}, "unknown key 'id' (ids derive from scope_key here, so it would be ignored: remove it)"),
        ({"scope_templat": {}}, "unknown key 'scope_templat' (did you mean 'scope_template'?; free-form data goes"),
        (
            {"zzz": "me"},
            "unknown key 'zzz' (the keys are scope_key, scope_template, schedule, active, order, meta; "
            "free-form data goes under 'meta')",
        ),
    ],
)
def test_unknown_top_level_keys(tmp_path: Path, extra: dict, says: str) -> None:
    message = _load(tmp_path, [_entry(**extra)])
    assert "SCHEDULED_PREDICTION_CONFIGS_PATH: " in message and "entry 0: config 'BTC-1h': " in message
    assert says in message


def test_every_unknown_key_of_an_entry_is_reported_at_once(tmp_path: Path) -> None:
    message = _load(tmp_path, [_entry(enabled=True, schedule={"every_seconds": 60, "resolve_after": 60})])
    assert "'enabled'" in message and "'every_seconds'" in message and "'resolve_after'" in message


def test_entry_without_scope_key_says_so(tmp_path: Path) -> None:
    entry = _entry(enabled=True)
    del entry["scope_key"]
    assert "entry 0: config without scope_key: unknown key 'enabled'" in _load(tmp_path, [entry])


def test_other_errors_name_the_scope_key_too(tmp_path: Path) -> None:
    message = _load(tmp_path, [_entry(schedule={"prediction_interval_seconds": 0})])
    assert "entry 0 (scope_key 'BTC-1h'): schedule.prediction_interval_seconds: Input should be greater" in message


def test_meta_keeps_free_form_data(tmp_path: Path) -> None:
    path = tmp_path / "configs.json"
    path.write_text(json.dumps([_entry(meta={"owner": "me", "anything": [1, {"nested": True}]})]))
    [config] = load_config_file(str(path))
    assert config.meta == {"owner": "me", "anything": [1, {"nested": True}]}


def test_the_models_refuse_unknown_keys_when_built_in_code_too() -> None:
    with pytest.raises(PydanticValidationError, match="config 'BTC-1h': schedule: unknown key 'every_seconds'"):
        ScheduledPredictionConfig(scope_key="BTC-1h", schedule={"every_seconds": 60})
    with pytest.raises(PydanticValidationError, match="unknown key 'every_seconds' \\(use 'prediction_interval"):
        Schedule.model_validate({"every_seconds": 60})
    assert Schedule(prediction_interval_seconds=60).model_dump() == {
        "prediction_interval_seconds": 60,
        "resolve_after_seconds": None,
    }


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "does not exist"),
        ("[{", "is not valid JSON"),
        ("{}", "must hold a JSON array"),
    ],
)
def test_file_problems_name_the_variable_and_the_path(tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "configs.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as info:
        load_config_file(str(path))
    assert str(info.value).startswith(f"SCHEDULED_PREDICTION_CONFIGS_PATH: {path} ")
    assert says in str(info.value)


def test_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a folder; name the JSON file of configs"):
        load_config_file(str(tmp_path))


def test_relative_path_names_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=f"configs.json \\(in {tmp_path}\\) does not exist"):
        load_config_file("configs.json")
