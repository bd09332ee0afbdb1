"""Shared data and helpers of the report API tests (``tests/test_api_*.py``), and tests of the
API's pure helpers (cursor codec, key tiers, integer splits).

The data is produced by the real services: a backtest (``coordinator_core.services.backtest``)
over 2019-10-01 .. 2019-10-10 of the shipped replay data, one step every 3 virtual hours, with five
of the example models (``momentum`` and ``mean_reversion`` of participant alice, ``noisy``,
``flaky`` that raises, ``sloppy`` that answers garbage). It holds 730 predictions of every status
but ABSENT, scores, snapshots, leaderboards and the checkpoint of Monday 2019-10-07.

It is built once per backend per test process (``dataset``), and each API test module asks for it
through its own module-scoped ``api_db`` fixture (``from tests.integration.test_api_support import api_db``):

* SQLite: a file in a temporary directory;
* Postgres: a database of its own on the server of ``COORDINATOR_TEST_POSTGRES_URL``
  (``tests.pg``), dropped at exit. When the server is down the Postgres half is skipped, or fails
  with ``COORDINATOR_REQUIRE_POSTGRES=1`` (as ``.ci/run`` sets), like ``conftest.db_url``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from coordinator_core.bootstrap import build_runtime
from coordinator_core.config import load_settings
from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import upgrade
from coordinator_core.services import backtest
from tests import pg

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLE_MODELS = PROJECT_DIR / "examples" / "models"
MODELS = ("momentum", "mean_reversion", "noisy", "flaky", "sloppy")
START = datetime(2019, 10, 1, tzinfo=UTC)
END = datetime(2019, 10, 10, tzinfo=UTC)
STEP_SECONDS = 3 * 3600
CHECKPOINT_ID = "CKP_20191007_000000"
NOW = datetime(2019, 10, 12, 12, tzinfo=UTC)  # the API's clock in tests


@dataclass(frozen=True)
class Dataset:
    backend: str
    url: str
    models_dir: str

    @property
    def engine(self) -> Any:
        return get_engine(self.url)


_cleanups: list[Any] = []


@atexit.register
def _cleanup() -> None:
    for cleanup in reversed(_cleanups):
        try:
            cleanup()
        except Exception:  # best effort at exit
            pass


def _models_dir() -> str:
    root = Path(tempfile.mkdtemp(prefix="api_test_models_"))
    _cleanups.append(lambda: shutil.rmtree(root, ignore_errors=True))
    for name in MODELS:
        shutil.copytree(EXAMPLE_MODELS / name, root / name)
    return str(root)


def _sqlite_url() -> str:
    root = Path(tempfile.mkdtemp(prefix="api_test_db_"))
    _cleanups.append(lambda: shutil.rmtree(root, ignore_errors=True))
    return f"sqlite:///{root / 'coordinator.db'}"


def _postgres_url() -> str:
    """A fresh database of this process's own on the test server (``tests.pg``)."""
    return pg.create_database("api")


@functools.cache
def dataset(backend: str) -> Dataset:
    """Migrate a fresh database and run the backtest into it (once per backend per process)."""
    url = _sqlite_url() if backend == "sqlite" else _postgres_url()
    upgrade(url)
    models_dir = _models_dir()
    runtime = build_runtime(database_url=url, models_dir=models_dir)
    try:
        backtest.prepare(runtime, START)
        totals = backtest.run_steps(runtime, list(backtest.virtual_times(START, END, STEP_SECONDS)))
    finally:
        runtime.close()
    assert totals["checkpoints"] == 1 and totals["predictions"] == 730, totals
    return Dataset(backend, url, models_dir)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_db(request: pytest.FixtureRequest) -> Dataset:
    """The backtest data on SQLite and on Postgres (built once per backend per process)."""
    if request.param == "postgres":
        pg.require()
    return dataset(request.param)


def make_client(data: Dataset, *, clock: Any = None, **overrides: Any) -> TestClient:
    """A TestClient of ``create_app`` on ``data``; API keys and CORS are explicit (never from the
    environment or a ``.local.env``) so the tests do not depend on the machine."""
    from api.app import create_app

    settings: dict[str, Any] = {
        "database_url": data.url,
        "models_dir": data.models_dir,
        "read_database_url": None,
        "api_public_keys": None,
        "api_read_keys": None,
        "api_admin_keys": None,
        "api_cors_origins": "",
        "crunch_contract": None,
    }
    settings.update(overrides)
    return TestClient(create_app(load_settings(**settings), clock=clock or (lambda: NOW)))


@pytest.fixture(scope="module")
def client(api_db: Dataset) -> Iterator[TestClient]:
    """An open API (no keys) on the backtest data."""
    with make_client(api_db) as test_client:
        yield test_client


def walk(
    test_client: TestClient,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    max_pages: int = 10_000,
) -> list[Any]:
    """Every page of a list route, following ``X-Next-Cursor``; returns the pages' JSON bodies."""
    params = dict(params or {})
    pages = []
    for _ in range(max_pages):
        response = test_client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            return pages
        assert response.headers["Link"].endswith('; rel="next"') and f"cursor={cursor}" in response.headers["Link"]
        params["cursor"] = cursor
    raise AssertionError("pagination did not end")


def parse_ts(value: str) -> datetime:
    """A payload timestamp: ISO-8601 with an explicit UTC offset."""
    assert value.endswith("Z") or value.endswith("+00:00"), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0)
    return parsed


# -- tests of the pure helpers ----------------------------------------------------------------------
def test_cursor_round_trip_and_rejections() -> None:
    from fastapi.exceptions import RequestValidationError

    from api.pagination import decode_cursor, encode_cursor

    key = (datetime(2019, 10, 1, 12, 30, 0, 123456, tzinfo=UTC), "PRE_x")
    cursor = encode_cursor("predictions-desc", key)
    assert decode_cursor("predictions-desc", cursor, (datetime, str)) == key
    assert decode_cursor("predictions-desc", None, (datetime, str)) is None
    for bad_route, bad_cursor in (
        ("predictions-asc", cursor),
        ("predictions-desc", "!!!"),
        ("predictions-desc", cursor[:-3]),
        ("predictions-desc", encode_cursor("predictions-desc", (1, 2))),
    ):
        with pytest.raises(RequestValidationError) as caught:
            decode_cursor(bad_route, bad_cursor, (datetime, str))
        assert caught.value.errors()[0]["loc"] == ("query", "cursor")


def test_key_tiers() -> None:
    from api.security import Tier, required_keys

    def keys(public: str | None = None, read: str | None = None, admin: str | None = None) -> Any:
        return load_settings(database_url="sqlite://", api_public_keys=public, api_read_keys=read, api_admin_keys=admin)

    open_all = keys()
    assert required_keys(open_all, Tier.PUBLIC) is None and required_keys(open_all, Tier.PRIVATE) is None
    assert required_keys(open_all, Tier.ADMIN) == frozenset()  # nobody
    every = keys("p1,p2", "r", "a")
    assert required_keys(every, Tier.PUBLIC) == {"p1", "p2", "r", "a"}
    assert required_keys(every, Tier.PRIVATE) == {"r", "a"}
    assert required_keys(every, Tier.ADMIN) == {"a"}
    only_public = keys(public="p")
    assert required_keys(only_public, Tier.PRIVATE) == {"p"}  # never more open than public
    only_admin = keys(admin="a")
    assert required_keys(only_admin, Tier.PUBLIC) is None and required_keys(only_admin, Tier.PRIVATE) == {"a"}
