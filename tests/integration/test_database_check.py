"""``check_database``: one connection, and a ``ConfigurationError`` that says what to do."""

from __future__ import annotations

import secrets
import socket
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import make_url

from coordinator_core.db.check import check_database
from coordinator_core.db.migrate import head, upgrade
from coordinator_core.errors import ConfigurationError
from tests import pg


def _fails(url: str, **kwargs: object) -> str:
    with pytest.raises(ConfigurationError) as info:
        check_database(url, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- SQLite ---------------------------------------------------------------------------------------


def test_migrated_sqlite_file_passes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    check_database(url)
    check_database(url, require_schema=False)


def test_missing_sqlite_file_says_run_db_upgrade_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    message = _fails(url)
    assert message.startswith("DATABASE_URL: ")
    assert f"the SQLite file {tmp_path / 'c.db'} does not exist yet" in message
    assert "run `coordinator db upgrade`" in message
    check_database(url, require_schema=False)  # db upgrade will create it
    assert not (tmp_path / "c.db").exists()


def test_sqlite_file_without_the_schema_says_run_db_upgrade(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "c.db").close()
    message = _fails(f"sqlite:///{tmp_path / 'c.db'}")
    assert "has no coordinator schema yet: run `coordinator db upgrade`" in message
    check_database(f"sqlite:///{tmp_path / 'c.db'}", require_schema=False)


def test_sqlite_file_at_an_older_revision_says_run_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url, "0001")
    message = _fails(url)
    assert f"is at schema revision 0001, this code needs {head()}: run `coordinator db upgrade`" in message
    check_database(url, require_schema=False)


def test_sqlite_file_at_an_unknown_revision_is_refused_even_for_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    with sqlite3.connect(tmp_path / "c.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
    for require in (True, False):
        assert "revision 0999, which this code does not know" in _fails(url, require_schema=require)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "c.db").write_text("not a database " * 100)
    message = _fails(f"sqlite:///{tmp_path / 'c.db'}")
    assert "cannot use the SQLite file" in message and "file is not a database" in message


def test_the_url_rules_of_the_settings_apply(tmp_path: Path) -> None:
    assert "write postgresql+psycopg2://u@h/d" in _fails("postgres://u@h/d")
    assert f"the folder {tmp_path / 'nope'} of the SQLite file" in _fails(f"sqlite:///{tmp_path}/nope/c.db")
    assert _fails("mysql://u@h/d", variable="READ_DATABASE_URL").startswith("READ_DATABASE_URL: mysql is not supported")


def test_in_memory_sqlite_cannot_hold_the_schema() -> None:
    assert "in-memory SQLite database" in _fails("sqlite://")
    check_database("sqlite://", require_schema=False)


# -- Postgres -------------------------------------------------------------------------------------


def test_unreachable_server_names_host_and_port() -> None:
    port = closed_port()
    message = _fails(f"postgresql+psycopg2://127.0.0.1:{port}/coordinator")
    assert f"cannot reach the Postgres server at 127.0.0.1:{port}" in message
    assert "Connection refused" in message


def test_unknown_host_names_host_and_port() -> None:
    message = _fails("postgresql+psycopg2://no-such-host.invalid:6543/coordinator")
    assert "cannot reach the Postgres server at no-such-host.invalid:6543" in message


@pytest.mark.postgres
def test_missing_postgres_database_says_createdb_then_upgrade() -> None:
    pg.require()
    name = f"coordtest_missing_{secrets.token_hex(4)}"
    url = make_url(pg.ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    for require in (True, False):  # db upgrade cannot create a database either
        message = _fails(url, require_schema=require)
        assert f"the database {name!r} does not exist on the Postgres server at" in message
        assert f"create it (createdb {name}" in message
        assert "then run `coordinator db upgrade`" in message


@pytest.mark.postgres
def test_unknown_postgres_role_says_fix_the_user() -> None:
    pg.require()
    url = make_url(pg.ADMIN_URL).set(username=f"nobody_{secrets.token_hex(3)}", password="x")
    message = _fails(url.render_as_string(hide_password=False))
    assert "refused the login of 'nobody_" in message and "fix the user or password" in message
    assert ":x@" not in message


@pytest.mark.postgres
def test_postgres_database_without_schema_then_migrated() -> None:
    url = pg.create_database("check")
    message = _fails(url)
    assert "has no coordinator schema yet: run `coordinator db upgrade`" in message
    check_database(url, require_schema=False)
    upgrade(url, "0001")
    assert f"is at schema revision 0001, this code needs {head()}" in _fails(url)
    upgrade(url)
    check_database(url)
    pg.drop_database(url)
