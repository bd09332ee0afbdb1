"""Postgres databases of the test run's own.

``COORDINATOR_TEST_POSTGRES_URL`` names a database on the server the suite may connect to
(default ``postgresql+psycopg2://127.0.0.1:5432/test``: the libpq default user, trust auth). The
suite never writes into that database: every test process creates the databases it needs, named
``coordtest_<purpose>_<pid>_<random>``, and drops exactly those at exit. Two suites can therefore
run at once on one server, and nothing hard-codes a database or user name.

When the server is down the Postgres tests skip, or fail with ``COORDINATOR_REQUIRE_POSTGRES=1``
(which ``.ci/run`` sets).
"""

from __future__ import annotations

import atexit
import os
import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from coordinator_core.db.engine import get_engine

ADMIN_URL = os.environ.get("COORDINATOR_TEST_POSTGRES_URL", "postgresql+psycopg2://127.0.0.1:5432/test")
_created: list[str] = []
_problem: list[str] = []


def available() -> str | None:
    """``None`` when the server answers, else the reason."""
    if not _problem:
        try:
            with get_engine(ADMIN_URL).connect() as connection:
                connection.execute(text("SELECT 1"))
            _problem.append("")
        except Exception as exc:  # the reason goes into the skip / failure message
            _problem.append(f"{type(exc).__name__}: {exc}")
    return _problem[0] or None


def require() -> None:
    """Skip (or fail under ``COORDINATOR_REQUIRE_POSTGRES=1``) when the server is down."""
    problem = available()
    if problem:
        message = f"Postgres at {ADMIN_URL} unavailable ({problem})"
        if os.environ.get("COORDINATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)


def create_database(purpose: str, driver: str = "postgresql+psycopg2") -> str:
    """A new empty database on the test server; returns its URL (dropped at exit)."""
    require()
    name = f"coordtest_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"
    with get_engine(ADMIN_URL).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    _created.append(name)
    return make_url(ADMIN_URL).set(drivername=driver, database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database this process created (and only such a one)."""
    name = make_url(url).database
    if name not in _created:
        raise ValueError(f"refusing to drop {name!r}: this test process did not create it")
    get_engine(make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)).dispose()
    with get_engine(ADMIN_URL).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _created.remove(name)


@atexit.register
def _drop_all() -> None:
    for name in list(_created):
        try:
            drop_database(make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False))
        except Exception:  # best effort at exit; the name says which run left it
            pass
