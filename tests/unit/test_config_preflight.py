"""Start-up checks: the paths a command needs, and variables that look like settings but are none."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from coordinator_core.config import PROJECT_DIR, Settings, load_settings
from coordinator_core.errors import ConfigurationError
from coordinator_core.preflight import (
    KNOWN_VARIABLES,
    check_paths,
    project_prefixes,
    unknown_variables,
    warn_unknown_variables,
)

ALL = {"models", "configs", "replay"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _problem(needs: set[str], **settings: object) -> str:
    with pytest.raises(ConfigurationError) as info:
        check_paths(load_settings(**settings), needs=needs)
    return str(info.value)


def test_the_defaults_pass_every_check() -> None:
    check_paths(load_settings(), needs=ALL)


def test_only_what_is_needed_is_checked(tmp_path: Path) -> None:
    check_paths(load_settings(models_dir=str(tmp_path / "nope")), needs={"configs", "replay"})
    check_paths(load_settings(models_dir=str(tmp_path / "nope")), needs=set())
    with pytest.raises(ValueError, match="unknown needs"):
        check_paths(load_settings(), needs={"model"})


# -- MODELS_DIR -----------------------------------------------------------------------------------


def test_missing_models_dir_names_every_place_looked(tmp_path: Path) -> None:
    message = _problem({"models"}, models_dir="no_models")
    assert message == (
        f"MODELS_DIR: no_models does not exist (looked for {tmp_path / 'no_models'} and {PROJECT_DIR / 'no_models'})"
    )


def test_models_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "models").write_text("")
    assert f"MODELS_DIR: {tmp_path / 'models'} is a file" in _problem({"models"}, models_dir=str(tmp_path / "models"))


def test_models_dir_without_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "models" / "not_a_model").mkdir(parents=True)  # no main.py
    message = _problem({"models"}, models_dir=str(tmp_path / "models"))
    assert f"MODELS_DIR: {tmp_path / 'models'} holds no model folder" in message
    assert "each model is a folder with a main.py" in message


def test_models_dir_is_not_checked_for_the_model_runner_gateway(tmp_path: Path) -> None:
    check_paths(load_settings(models_dir=str(tmp_path / "nope"), model_gateway="model_runner"), needs={"models"})


# -- SCHEDULED_PREDICTION_CONFIGS_PATH ------------------------------------------------------------


def test_missing_configs_file(tmp_path: Path) -> None:
    message = _problem({"configs"}, scheduled_prediction_configs_path=str(tmp_path / "configs.json"))
    assert message == f"SCHEDULED_PREDICTION_CONFIGS_PATH: {tmp_path / 'configs.json'} does not exist"


def test_configs_file_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "configs.json").write_text("[{")
    message = _problem({"configs"}, scheduled_prediction_configs_path="configs.json")
    assert f"SCHEDULED_PREDICTION_CONFIGS_PATH: configs.json (in {tmp_path}) is not valid JSON" in message


def test_configs_file_with_an_unknown_key_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps([{"scope_key": "BTC-60", "schedule": {"every_seconds": 60}}]))
    message = _problem({"configs"}, scheduled_prediction_configs_path=str(tmp_path / "c.json"))
    assert "entry 0: config 'BTC-60': schedule: unknown key 'every_seconds'" in message


# -- REPLAY_PATH ----------------------------------------------------------------------------------


def test_missing_replay_file(tmp_path: Path) -> None:
    message = _problem({"replay"}, replay_path=str(tmp_path / "btc.csv"))
    assert message == f"REPLAY_PATH: {tmp_path / 'btc.csv'} does not exist"


def test_replay_is_checked_only_for_the_replay_source(tmp_path: Path) -> None:
    check_paths(load_settings(replay_path=str(tmp_path / "btc.csv"), feed_source="synthetic"), needs={"replay"})
    assert "REPLAY_PATH" in _problem({"replay"}, replay_path=str(tmp_path / "x.csv"), feed_source="binance,replay")


def test_replay_template_is_checked_per_subject(tmp_path: Path) -> None:
    (tmp_path / "BTC.csv").write_text("ts,open,high,low,close,volume\n")
    message = _problem({"replay"}, replay_path="{subject}.csv", feed_subjects="BTC,ETH,SOL")
    assert "BTC.csv" not in message
    for subject in ("ETH", "SOL"):
        assert (
            f"REPLAY_PATH: {subject}.csv (in {tmp_path}) does not exist "
            f"(subject {subject}, from REPLAY_PATH='{{subject}}.csv')" in message
        )


def test_the_shipped_dataset_serves_btc_only() -> None:
    message = _problem({"replay"}, feed_subjects="BTC,ETH")
    assert "REPLAY_PATH: the shipped dataset is BTC only and FEED_SUBJECTS lists ETH" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = _problem(ALL, models_dir=str(tmp_path / "m"), replay_path=str(tmp_path / "r.csv"))
    assert "MODELS_DIR" in message and "REPLAY_PATH" in message


# -- variables no setting reads --------------------------------------------------------------------


def test_prefixes_derive_from_the_settings_names() -> None:
    prefixes = project_prefixes()
    for prefix in ("FEED_", "MODEL_", "API_", "CHECKPOINT_", "SCORE_", "CRUNCH_", "PYTH_", "BINANCE_"):
        assert prefix in prefixes
    for prefix in ("REPLAY_", "SYNTHETIC_", "LOCAL_MODEL_", "COORDINATOR_"):
        assert prefix in prefixes
    # a word too common to claim on its own: only its two-word form
    assert "LOCAL_" not in prefixes and "DATA_" not in prefixes and "READ_" not in prefixes
    uncovered = {name.upper() for name in Settings.model_fields if not name.upper().startswith(prefixes)}
    assert uncovered == {"NETWORK", "DATABASE_URL"}  # one word, or a generic first word and nothing after


@pytest.mark.parametrize(
    ("variable", "nearest"),
    [
        ("FEED_GRANULARITIES", "FEED_GRANULARITY"),
        ("MODEL_DIR", "MODELS_DIR"),
        ("FEED_SUBJECT", "FEED_SUBJECTS"),
        ("API_CORS_ORIGIN", "API_CORS_ORIGINS"),
        ("CHECKPOINT_INTERVAL", "CHECKPOINT_INTERVAL_SECONDS"),
        ("SCORE_INTERVAL", "SCORE_INTERVAL_SECONDS"),
        ("LOCAL_MODEL_TIMEOUT", "LOCAL_MODEL_TIMEOUT_SECONDS"),
        ("PYTH_API_KEYS", "PYTH_API_KEY"),
        ("COORDINATOR_HOEM", "COORDINATOR_HOME"),
    ],
)
def test_misspelled_variable_names_the_nearest_setting(variable: str, nearest: str) -> None:
    assert unknown_variables({variable: "x"}, env_files=()) == [f"{variable} is not a setting; did you mean {nearest}?"]


def test_settings_known_variables_and_foreign_ones_are_not_reported() -> None:
    environ = {name.upper(): "x" for name in Settings.model_fields}
    environ.update({name: "x" for name in KNOWN_VARIABLES})
    environ.update({"HOME": "/root", "PATH": "/bin", "PREFECT_API_URL": "x", "DATA_DIR": "x", "LOCAL_USER": "x"})
    assert unknown_variables(environ, env_files=()) == []


def test_a_variable_nothing_is_close_to() -> None:
    [message] = unknown_variables({"FEED_ZZZZZZZZZZZZZZZZZZZZ": "x"}, env_files=())
    assert message.startswith("FEED_ZZZZZZZZZZZZZZZZZZZZ is not a setting; no setting is close")


def test_env_files_are_read_too(tmp_path: Path) -> None:
    (tmp_path / ".local.env").write_text("FEED_GRANULARITIES=1m\nFEED_GRANULARITY=1m\n")
    assert unknown_variables({}) == [
        "FEED_GRANULARITIES (in .local.env) is not a setting; did you mean FEED_GRANULARITY?"
    ]


def test_warnings_are_logged_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"FEED_GRANULARITIEZ": "1m"}
    with caplog.at_level(logging.WARNING, logger="coordinator_core.config"):
        first = warn_unknown_variables(environ=environ, env_files=())
        again = warn_unknown_variables(environ=environ, env_files=())
    assert first == ["FEED_GRANULARITIEZ is not a setting; did you mean FEED_GRANULARITY?"]
    assert again == []
    assert [r.getMessage() for r in caplog.records] == first
