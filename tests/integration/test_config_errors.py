"""Configuration mistakes stop the ``coordinator`` command at start (exit 2) with a message naming
the variable and what to do; run as a user would, in a subprocess, without a Prefect server.

Every command here fails (or finishes) before Prefect is imported."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

from coordinator_core.config import Settings
from coordinator_core.db.migrate import head, upgrade
from tests import pg
from tests.conftest import EXAMPLE_MODELS

COORDINATOR = [sys.executable, "-m", "coordinator_cli.main"]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in ``cwd`` with no coordinator setting from the outer environment but ``env``."""
    environment = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    environment.update({"DATABASE_URL": f"sqlite:///{cwd / 'cli.db'}", "MODELS_DIR": str(EXAMPLE_MODELS)})
    environment.update({"COLUMNS": "400", **env})
    return subprocess.run(COORDINATOR + args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def fails(args: list[str], cwd: Path, **env: str) -> str:
    """The message of a command that must exit 2, on one line (rich wraps long lines)."""
    result = run(args, cwd, **env)
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return " ".join(result.stdout.split())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- 1. DATABASE_URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgres://alice@db:5432/coordinator", "write postgresql+psycopg2://alice@db:5432/coordinator"),
        ("postgresql+asyncpg://alice@db:5432/coordinator", "write postgresql+psycopg2://alice@db:5432/coordinator"),
        ("mysql://alice@db/coordinator", "mysql is not supported"),
        ("garbage", "'garbage' is not a database URL; write sqlite:///./coordinator.db"),
        ("sqlite:///./no/such/folder/c.db", "the folder no/such/folder of the SQLite file c.db does not exist"),
    ],
    ids=["postgres-alias", "asyncpg", "mysql", "garbage", "sqlite-missing-folder"],
)
def test_unusable_database_url(tmp_path: Path, url: str, says: str) -> None:
    message = fails(["leaderboard"], tmp_path, DATABASE_URL=url)
    assert "error: invalid configuration: DATABASE_URL: " in message
    assert says in message


def test_unusable_read_database_url(tmp_path: Path) -> None:
    message = fails(["db", "upgrade"], tmp_path, READ_DATABASE_URL="postgres://alice@replica/coordinator")
    assert "READ_DATABASE_URL: " in message and "write postgresql+psycopg2://alice@replica/coordinator" in message


def test_unreachable_postgres_server_names_host_and_port(tmp_path: Path) -> None:
    port = closed_port()
    message = fails(["leaderboard"], tmp_path, DATABASE_URL=f"postgresql+psycopg2://127.0.0.1:{port}/coordinator")
    assert f"error: DATABASE_URL: cannot reach the Postgres server at 127.0.0.1:{port} (Connection refused)" in message


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["db", "upgrade"], ["leaderboard"]])
def test_missing_postgres_database_says_createdb_then_upgrade(tmp_path: Path, command: list[str]) -> None:
    pg.require()
    name = f"coordtest_missing_{secrets.token_hex(4)}"
    url = make_url(pg.ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    message = fails(command, tmp_path, DATABASE_URL=url)
    assert f"error: DATABASE_URL: the database '{name}' does not exist on the Postgres server at" in message
    assert f"create it (createdb {name}" in message and "then run `coordinator db upgrade`" in message


@pytest.mark.postgres
def test_postgres_database_without_schema_says_db_upgrade(tmp_path: Path) -> None:
    url = pg.create_database("cli")
    message = fails(["leaderboard"], tmp_path, DATABASE_URL=url)
    assert "has no coordinator schema yet: run `coordinator db upgrade`" in message
    assert run(["db", "upgrade"], tmp_path, DATABASE_URL=url).returncode == 0
    assert run(["leaderboard"], tmp_path, DATABASE_URL=url).returncode == 0
    pg.drop_database(url)


def test_missing_sqlite_file_says_db_upgrade(tmp_path: Path) -> None:
    message = fails(["leaderboard"], tmp_path)
    assert f"error: DATABASE_URL: the SQLite file {tmp_path / 'cli.db'} does not exist yet" in message
    assert "run `coordinator db upgrade` to create it" in message
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.parametrize("command", [["score"], ["checkpoint"], ["feeds", "gaps"], ["ingest"], ["predict"], ["api"]])
def test_commands_that_read_the_database_need_the_schema(tmp_path: Path, command: list[str]) -> None:
    sqlite3.connect(tmp_path / "cli.db").close()
    message = fails(command, tmp_path)
    assert "has no coordinator schema yet: run `coordinator db upgrade`" in message


def test_older_schema_revision_says_db_upgrade(tmp_path: Path) -> None:
    upgrade(f"sqlite:///{tmp_path / 'cli.db'}", "0001")
    message = fails(["leaderboard"], tmp_path)
    assert f"is at schema revision 0001, this code needs {head()}: run `coordinator db upgrade`" in message
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    assert run(["leaderboard"], tmp_path).returncode == 0


# -- 2. scheduled prediction configs -----------------------------------------------------------------


def test_old_engines_schedule_key_is_refused(tmp_path: Path) -> None:
    configs = [{"scope_key": "BTC-60", "scope_template": {"subject": "BTC"}, "schedule": {"every_seconds": 60}}]
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    message = fails(["predict"], tmp_path, SCHEDULED_PREDICTION_CONFIGS_PATH="configs.json")
    assert (
        f"error: SCHEDULED_PREDICTION_CONFIGS_PATH: configs.json (in {tmp_path}) entry 0: config 'BTC-60': "
        "schedule: unknown key 'every_seconds' (use 'prediction_interval_seconds' instead)" in message
    )


def test_unknown_top_level_config_key_is_refused(tmp_path: Path) -> None:
    configs = [{"scope_key": "BTC-60"}, {"scope_key": "BTC-300", "enabled": True}]
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    message = fails(["backtest"], tmp_path, SCHEDULED_PREDICTION_CONFIGS_PATH=str(tmp_path / "configs.json"))
    assert "entry 1: config 'BTC-300': unknown key 'enabled' (use 'active' instead)" in message


# -- 3. empty values ---------------------------------------------------------------------------------


def test_empty_feed_subjects_is_an_error(tmp_path: Path) -> None:
    message = fails(["db", "upgrade"], tmp_path, FEED_SUBJECTS="")
    assert "error: invalid configuration: FEED_SUBJECTS: " in message
    assert "an empty FEED_SUBJECTS means nothing" in message and "the default 'BTC'" in message


def test_empty_value_in_local_env_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".local.env").write_text("FEED_GRANULARITY=\n")
    assert "FEED_GRANULARITY: " in fails(["db", "upgrade"], tmp_path)


def test_documented_empty_values_are_accepted(tmp_path: Path) -> None:
    result = run(
        ["db", "upgrade"], tmp_path, API_CORS_ORIGINS="", API_PUBLIC_KEYS="", REPLAY_PATH="", CRUNCH_CONTRACT=""
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- 4. paths ------------------------------------------------------------------------------------------


def test_missing_models_dir(tmp_path: Path) -> None:
    message = fails(["predict"], tmp_path, MODELS_DIR="my_models")
    assert f"error: MODELS_DIR: my_models does not exist (looked for {tmp_path / 'my_models'} and" in message


def test_models_dir_without_models(tmp_path: Path) -> None:
    (tmp_path / "models" / "empty").mkdir(parents=True)
    message = fails(["models", "list"], tmp_path, MODELS_DIR=str(tmp_path / "models"))
    assert f"error: MODELS_DIR: {tmp_path / 'models'} holds no model folder" in message


def test_missing_configs_file(tmp_path: Path) -> None:
    message = fails(["demo"], tmp_path, SCHEDULED_PREDICTION_CONFIGS_PATH=str(tmp_path / "configs.json"))
    assert f"error: SCHEDULED_PREDICTION_CONFIGS_PATH: {tmp_path / 'configs.json'} does not exist" in message


def test_configs_file_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "configs.json").write_text("[{")
    message = fails(["predict"], tmp_path, SCHEDULED_PREDICTION_CONFIGS_PATH=str(tmp_path / "configs.json"))
    assert f"SCHEDULED_PREDICTION_CONFIGS_PATH: {tmp_path / 'configs.json'} is not valid JSON" in message


def test_missing_replay_file(tmp_path: Path) -> None:
    message = fails(["ingest"], tmp_path, REPLAY_PATH="data/btc.csv")
    assert f"error: REPLAY_PATH: data/btc.csv (in {tmp_path}) does not exist" in message


def test_missing_replay_file_of_one_subject(tmp_path: Path) -> None:
    (tmp_path / "BTC.csv").write_text("ts,open,high,low,close,volume\n")
    message = fails(
        ["backfill", "--start", "2019-10-01"], tmp_path, REPLAY_PATH="{subject}.csv", FEED_SUBJECTS="BTC,ETH"
    )
    assert (
        f"error: REPLAY_PATH: ETH.csv (in {tmp_path}) does not exist (subject ETH, from REPLAY_PATH='{{subject}}.csv')"
        in message
    )
    assert "BTC.csv" not in message.replace("'{subject}.csv'", "")


# -- 5. variables no setting reads --------------------------------------------------------------------


def test_misspelled_variable_is_warned_about_once(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path, FEED_GRANULARITIES="1m", COORDINATOR_HOME=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    warning = "FEED_GRANULARITIES is not a setting; did you mean FEED_GRANULARITY?"
    assert result.stderr.count(warning) == 1
    assert "COORDINATOR_HOME" not in result.stderr


def test_misspelled_variable_in_local_env_is_warned_about(tmp_path: Path) -> None:
    (tmp_path / ".local.env").write_text("MODEL_DIR=examples/models\n")
    result = run(["db", "upgrade"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MODEL_DIR (in .local.env) is not a setting; did you mean MODELS_DIR?" in result.stderr


def test_a_clean_environment_warns_about_nothing(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path)
    assert result.returncode == 0 and "is not a setting" not in result.stderr, result.stderr
