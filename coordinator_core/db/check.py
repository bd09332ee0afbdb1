"""``check_database``: one connection at start, and a message that says what to do.

Every entry point that needs the database calls it first (the CLI's commands, the flows'
bootstrap), so a wrong ``DATABASE_URL`` fails at once with a ``ConfigurationError`` instead of a
traceback or a retried "database temporarily unavailable":

* a URL the coordinator cannot use (``postgres://``, ``mysql://``, a SQLite file in a folder that
  does not exist): what to write instead (the same rules as the settings);
* a Postgres database that does not exist: create it (``createdb NAME``), then run
  ``coordinator db upgrade``;
* a server that does not answer: its host and port, and libpq's reason;
* a refused login: the user, and what to fix;
* a reachable database without the schema, or at an older revision: run ``coordinator db upgrade``
  (skipped with ``require_schema=False``, for the commands that create the schema themselves).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from coordinator_core.config import sqlite_path, validate_database_url
from coordinator_core.errors import ConfigurationError

CONNECT_TIMEOUT_SECONDS = 10
UPGRADE = "run `coordinator db upgrade`"

_UNREACHABLE = (
    "connection refused",
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "timeout expired",
    "no route to host",
    "network is unreachable",
    "could not connect to server",
    "server closed the connection unexpectedly",
    "no such file or directory",  # a Unix socket that is not there
    "connection timed out",
)
_LOGIN = re.compile(
    r"password authentication failed|no password supplied|role \"[^\"]*\" does not exist|pg_hba\.conf|"
    r"authentication failed",
    re.IGNORECASE,
)
_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')


def check_database(url: str, *, require_schema: bool = True, variable: str = "DATABASE_URL") -> None:
    """Connect once to ``url``; raise ``ConfigurationError`` naming ``variable`` and what to do.

    ``require_schema``: the database must also hold the coordinator's schema at the newest
    revision (``coordinator db upgrade`` passes ``False``: it creates the schema).
    """
    try:
        validate_database_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"{variable}: {exc}") from None
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite(url, require_schema, variable)
    else:
        _check_postgres(parsed, require_schema, variable)


# -- SQLite ---------------------------------------------------------------------------------------


def _check_sqlite(url: str, require_schema: bool, variable: str) -> None:
    path = sqlite_path(url)
    if path is None:
        if require_schema:
            raise ConfigurationError(
                f"{variable}: {url} is an in-memory SQLite database, empty in every process; "
                "use a file (sqlite:///./coordinator.db) and run `coordinator db upgrade`"
            )
        return
    file = Path(path)
    shown = str(file) if file.is_absolute() else f"{file} (in {Path.cwd()})"
    if not file.exists():
        if require_schema:
            raise ConfigurationError(
                f"{variable}: the SQLite file {shown} does not exist yet: {UPGRADE} to create it and its schema"
            )
        return  # `db upgrade` creates it
    # read-only, and never creating the file: a check must not leave anything behind
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True), poolclass=NullPool
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM sqlite_master"))
            _check_schema(connection, url, require_schema, variable, f"the SQLite file {shown}")
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise ConfigurationError(
            f"{variable}: cannot use the SQLite file {shown} ({reason}); point {variable} at another file, "
            f"or move this one away and {UPGRADE}"
        ) from None
    finally:
        engine.dispose()


# -- Postgres -------------------------------------------------------------------------------------


def _check_postgres(parsed: URL, require_schema: bool, variable: str) -> None:
    host = parsed.host or "localhost (Unix socket)"
    where = f"{host}:{parsed.port or 5432}"
    name = parsed.database or parsed.username or "(the user's name)"
    engine = create_engine(
        parsed.set(drivername="postgresql+psycopg2"),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            raise _connect_error(exc, variable, parsed, where, name) from None
        with connection:
            _check_schema(
                connection, parsed.render_as_string(), require_schema, variable, f"the database {name!r} at {where}"
            )
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise ConfigurationError(f"{variable}: the database {name!r} at {where} cannot be read ({reason})") from None
    finally:
        engine.dispose()


def _connect_error(exc: DBAPIError, variable: str, parsed: URL, where: str, name: str) -> ConfigurationError:
    message = str(exc.orig).strip()
    reason = _reason(message)
    missing = _MISSING_DATABASE.search(message)
    if missing:
        name = missing.group(1)
        flags = _createdb_flags(parsed)
        return ConfigurationError(
            f"{variable}: the database {name!r} does not exist on the Postgres server at {where}: "
            f"create it (createdb {name}{f', adding {flags} where that is not the default server' if flags else ''}) "
            f"then {UPGRADE}"
        )
    if _LOGIN.search(message):
        return ConfigurationError(
            f"{variable}: the Postgres server at {where} refused the login of {parsed.username or 'the default user'!r} "
            f"({reason}); fix the user or password in {variable}, or the server's pg_hba.conf"
        )
    if any(marker in message.lower() for marker in _UNREACHABLE):
        return ConfigurationError(
            f"{variable}: cannot reach the Postgres server at {where} ({reason}); start it, or fix the host "
            f"and port in {variable} ({parsed.render_as_string()})"
        )
    return ConfigurationError(f"{variable}: cannot connect to the database {name!r} at {where} ({reason})")


def _createdb_flags(parsed: URL) -> str:
    flags = []
    if parsed.host:
        flags.append(f"-h {parsed.host}")
    if parsed.port:
        flags.append(f"-p {parsed.port}")
    if parsed.username:
        flags.append(f"-U {parsed.username}")
    return " ".join(flags)


def _reason(message: str) -> str:
    """libpq's reason without its preamble ('connection to server at "h", port 5432 failed: ')."""
    if "FATAL:" in message:
        return message.split("FATAL:", 1)[1].strip().splitlines()[0].strip()
    first = next((line.strip() for line in message.splitlines() if line.strip()), message)
    return first.split(" failed: ", 1)[-1] if " failed: " in first else first


# -- schema ---------------------------------------------------------------------------------------


def _check_schema(connection: Connection, url: str, require_schema: bool, variable: str, what: str) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from coordinator_core.db.migrate import alembic_config

    current = MigrationContext.configure(connection).get_current_revision()
    scripts = ScriptDirectory.from_config(alembic_config(url))
    heads = set(scripts.get_heads())
    if current in heads:
        return
    if current is not None and not _known(scripts, current):
        raise ConfigurationError(
            f"{variable}: {what} is at schema revision {current}, which this code does not know (written by a newer "
            f"version?); update this clone, or point {variable} at a database of this version"
        )
    if not require_schema:
        return
    head = ", ".join(sorted(heads))
    if current is None:
        raise ConfigurationError(f"{variable}: {what} has no coordinator schema yet: {UPGRADE}")
    raise ConfigurationError(f"{variable}: {what} is at schema revision {current}, this code needs {head}: {UPGRADE}")


def _known(scripts: Any, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic's ResolutionError / CommandError for a revision it has no script of
        return False
