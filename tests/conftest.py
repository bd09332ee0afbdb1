"""Shared fixtures.

* ``db_url`` runs a test on SQLite (a fresh file) and on the Postgres at 127.0.0.1:5432 (database
  ``test``, tables truncated). Postgres tests skip when the server is down, unless
  ``COORDINATOR_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which makes them fail instead.
* ``prefect_api`` is one Prefect API per test session (the stock harness, heartbeats off); only
  tests that run flows ask for it, so pure tests start no server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from coordinator_core.prefect_env import apply_defaults  # noqa: E402

apply_defaults()

import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402

from coordinator_core.db.engine import get_engine  # noqa: E402
from coordinator_core.db.migrate import upgrade  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXAMPLE_MODELS = PROJECT_DIR / "examples" / "models"
POSTGRES_URL = os.environ.get("COORDINATOR_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TABLES = (
    "scores",
    "predictions",
    "inputs",
    "snapshots",
    "checkpoints",
    "leaderboards",
    "models",
    "scheduled_prediction_configs",
    "feed_records",
    "feed_ingestion_state",
)

_postgres_ready: bool | None = None


def _postgres() -> str:
    global _postgres_ready
    if _postgres_ready is None:
        try:
            with get_engine(POSTGRES_URL).connect() as connection:
                connection.execute(text("SELECT 1"))
            with get_engine(POSTGRES_URL).begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            upgrade(POSTGRES_URL)
            _postgres_ready = True
        except Exception as exc:  # the reason is shown in the skip / failure message
            _postgres_ready = False
            _postgres_error[0] = f"{type(exc).__name__}: {exc}"
    if not _postgres_ready:
        message = f"Postgres at {POSTGRES_URL} unavailable ({_postgres_error[0]})"
        if os.environ.get("COORDINATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with get_engine(POSTGRES_URL).begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return POSTGRES_URL


_postgres_error = [""]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite file or Postgres ``test``."""
    if request.param == "postgres":
        return _postgres()
    url = f"sqlite:///{tmp_path / 'coordinator.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'coordinator.db'}"
    upgrade(url)
    return url


@pytest.fixture
def make_runtime(db_url: str) -> Iterator:
    """Factory: ``make_runtime(**settings_overrides)`` → Runtime on ``db_url`` with the example models."""
    from coordinator_core.runtime import build_runtime

    built = []

    def factory(**overrides: object):
        overrides.setdefault("database_url", db_url)
        overrides.setdefault("models_dir", str(EXAMPLE_MODELS))
        runtime = build_runtime(**overrides)
        built.append(runtime)
        return runtime

    yield factory
    for runtime in built:
        runtime.close()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One Prefect API for the session: ``PREFECT_API_URL`` if set, else the stock test harness."""
    from prefect.settings import temporary_settings

    no_heartbeat = temporary_settings(updates={"flows.heartbeat_frequency": None})
    if os.environ.get("PREFECT_API_URL"):
        with no_heartbeat:
            yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180), no_heartbeat:
        yield
