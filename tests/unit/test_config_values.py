"""Settings-time checks: database URLs and empty values fail at start, saying what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator_core.config import EMPTY_MEANS_DEFAULT, Settings, hide_password, load_settings
from coordinator_core.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the outer environment or from a ``.env`` in the working directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    return str(info.value)


# -- DATABASE_URL / READ_DATABASE_URL ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgres://alice@db:5432/coordinator", "write postgresql+psycopg2://alice@db:5432/coordinator"),
        ("postgresql+asyncpg://alice@db/coordinator", "write postgresql+psycopg2://alice@db/coordinator"),
        ("postgresql+psycopg://alice@db/coordinator", "write postgresql+psycopg2://alice@db/coordinator"),
        ("mysql://alice@db/coordinator", "mysql is not supported"),
        ("mysql+pymysql://alice@db/coordinator", "mysql is not supported"),
        ("garbage", "'garbage' is not a database URL; write sqlite:///./coordinator.db"),
        ("coordinator.db", "write sqlite:///coordinator.db for that file"),
        ("sqlite://coordinator.db", "write sqlite:///coordinator.db (three slashes"),
        ("oracle2://x/y", "unknown database kind 'oracle2'"),
        ("postgresql://db:port/coordinator", "cannot parse"),
    ],
)
@pytest.mark.parametrize("variable", ["DATABASE_URL", "READ_DATABASE_URL"])
def test_unusable_database_url_says_what_to_write(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str, says: str
) -> None:
    message = _error(monkeypatch, **{variable: url})
    assert f"{variable}: " in message
    assert says in message, message


def test_asyncpg_url_names_the_prefect_variable_it_belongs_to(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, DATABASE_URL="postgresql+asyncpg://prefect@db:5432/prefect")
    assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" in message


def test_a_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, DATABASE_URL="postgres://alice:s3cret@db:5432/coordinator")
    assert "s3cret" not in message
    assert "postgresql+psycopg2://alice:***@db:5432/coordinator" in message
    assert hide_password("x postgresql://u:p@h/d y") == "x postgresql://u:***@h/d y"


def test_sqlite_file_in_a_missing_folder_names_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    message = _error(monkeypatch, DATABASE_URL=f"sqlite:///{tmp_path}/no/such/folder/coordinator.db")
    assert f"the folder {tmp_path}/no/such/folder of the SQLite file coordinator.db does not exist" in message
    assert f"mkdir -p {tmp_path}/no/such/folder" in message


def test_relative_sqlite_folder_names_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    message = _error(monkeypatch, DATABASE_URL="sqlite:///./data/coordinator.db")
    assert "the folder data of the SQLite file coordinator.db does not exist" in message
    assert f"relative to the working directory {tmp_path}" in message


def test_sqlite_url_naming_a_folder_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    message = _error(monkeypatch, DATABASE_URL=f"sqlite:///{tmp_path}")
    assert f"{tmp_path} is a folder" in message and f"sqlite:///{tmp_path}/coordinator.db" in message


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///./coordinator.db",
        "sqlite:///coordinator.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://alice@db:5432/coordinator",
        "postgresql+psycopg2://alice:pw@db:5432/coordinator?sslmode=require",
        "postgresql+psycopg2:///coordinator",
    ],
)
def test_usable_database_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("READ_DATABASE_URL", url)
    settings = load_settings()
    assert settings.database_url == settings.read_database_url == url


def test_sqlite_file_in_an_existing_folder_need_not_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/new.db")
    assert load_settings().database_url.endswith("new.db")
    assert not (tmp_path / "new.db").exists()  # a settings check creates nothing


# -- empty values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "default"),
    [
        ("FEED_SUBJECTS", "'BTC'"),
        ("DATABASE_URL", "'sqlite:///./coordinator.db'"),
        ("FEED_GRANULARITY", "'1h'"),
        ("FEED_SOURCE", "'replay'"),
        ("MODELS_DIR", "'examples/models'"),
        ("SCORE_BATCH_SIZE", "500"),
        ("MODEL_RUNNER_REPORT_FAILURE", "True"),
        ("PYTH_FEED_IDS", "'BTC=0x"),
    ],
)
def test_empty_value_where_empty_means_nothing_is_an_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, default: str
) -> None:
    message = _error(monkeypatch, **{variable: ""})
    assert f"{variable}: " in message
    assert f"empty, and an empty {variable} means nothing" in message
    assert f"to get the default {default}" in message
    assert "(got '')" in message


def test_whitespace_only_is_empty_too(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "FEED_SUBJECTS: " in _error(monkeypatch, FEED_SUBJECTS="   ")


def test_empty_value_in_local_env_is_an_error_too(clean_env: Path) -> None:
    (clean_env / ".local.env").write_text("FEED_SUBJECTS=\n")
    with pytest.raises(ConfigurationError, match="FEED_SUBJECTS: .*empty.* \\(got ''\\)"):
        load_settings()


@pytest.mark.parametrize("field", sorted(EMPTY_MEANS_DEFAULT))
def test_empty_value_where_documented_means_the_default(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    monkeypatch.setenv(field.upper(), "")
    assert getattr(load_settings(), field) == Settings.model_fields[field].get_default()


def test_empty_cors_origins_means_no_cors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_CORS_ORIGINS", "")
    monkeypatch.setenv("API_PUBLIC_KEYS", "")
    settings = load_settings()
    assert settings.cors_origins == [] and settings.public_keys == frozenset()


def test_several_empty_values_are_all_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, FEED_SUBJECTS="", FEED_KIND="", API_CORS_ORIGINS="")
    assert "FEED_SUBJECTS: " in message and "FEED_KIND: " in message
    assert "API_CORS_ORIGINS" not in message


# -- REPLAY_PATH template -------------------------------------------------------------------------


def test_replay_path_with_an_unknown_placeholder_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, REPLAY_PATH="data/{asset}.csv")
    assert "REPLAY_PATH: " in message and "{subject} and {subject_lower}" in message
