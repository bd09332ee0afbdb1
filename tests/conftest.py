"""Shared fixtures.

* ``db_url`` runs a test on SQLite (a fresh file) and on Postgres: a database of this test
  process's own on the server of ``COORDINATOR_TEST_POSTGRES_URL`` (see ``tests.pg``), emptied
  before each test and dropped at exit. Postgres tests skip when the server is down, unless
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
from tests import pg  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXAMPLE_MODELS = PROJECT_DIR / "examples" / "models"
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

_postgres_url: list[str] = []


def _postgres() -> str:
    """This process's own migrated Postgres database (``tests.pg``), emptied before each test."""
    if not _postgres_url:
        url = pg.create_database("suite")
        upgrade(url)
        _postgres_url.append(url)
    with get_engine(_postgres_url[0]).begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return _postgres_url[0]


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
    from coordinator_core.bootstrap import build_runtime

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
