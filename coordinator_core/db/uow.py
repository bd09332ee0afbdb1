"""The SQL unit of work: one connection, one transaction, and the repositories over it.

::

    with SqlUnitOfWork(engine) as uow:
        uow.lock("coordinator:score-and-checkpoint")
        ...                                  # repositories: uow.rounds, uow.scores, ...
        uow.commit()                         # without it, everything is rolled back

    with SqlUnitOfWork(engine, read_only=True) as uow:   # reads only: no transaction
        ...

A read-only unit cannot commit or lock, so nothing it does can write. On Postgres it runs each
statement in autocommit (no BEGIN, and no ROLLBACK round trip at its end; each read sees the data
committed when it runs, as in READ COMMITTED), by the driver's own ``autocommit`` switch, which
costs no round trip (SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` sends a ``SET`` each time);
the switch is off again before the connection goes back to the pool, and the pool's checkout
turns it off for any connection that kept it (``db.engine``).

Lock conflicts and lost connections surface as ``TransientError`` (retried by Prefect).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from coordinator_core.db.repositories import (
    SqlCheckpointRepository,
    SqlConfigRepository,
    SqlFeedRepository,
    SqlLeaderboardRepository,
    SqlModelRepository,
    SqlRoundRepository,
    SqlScoreRepository,
)
from coordinator_core.errors import TransientError


class SqlUnitOfWork:
    connection: Connection
    feeds: SqlFeedRepository
    configs: SqlConfigRepository
    models: SqlModelRepository
    rounds: SqlRoundRepository
    scores: SqlScoreRepository
    leaderboards: SqlLeaderboardRepository
    checkpoints: SqlCheckpointRepository
    _autocommit: Any  # the driver connection a read-only unit switched to autocommit

    def __init__(self, engine: Engine, read_only: bool = False) -> None:
        self.engine = engine
        self.read_only = read_only

    def __enter__(self) -> SqlUnitOfWork:
        self.connection = self.engine.connect()
        self._autocommit = None
        if self.read_only:
            self.transaction = None
            if self.engine.dialect.name == "postgresql":
                self._autocommit = self.connection.connection.dbapi_connection
                self._autocommit.autocommit = True
        else:
            self.transaction = self.connection.begin()
        db = self.connection
        self.feeds = SqlFeedRepository(db)
        self.configs = SqlConfigRepository(db)
        self.models = SqlModelRepository(db)
        self.rounds = SqlRoundRepository(db)
        self.scores = SqlScoreRepository(db)
        self.leaderboards = SqlLeaderboardRepository(db)
        self.checkpoints = SqlCheckpointRepository(db)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if self.transaction is not None and self.transaction.is_active:  # not committed: roll back
                self.transaction.rollback()
            if self._autocommit is not None:
                try:
                    self._autocommit.autocommit = False
                except Exception:  # a dead connection: never pooled again
                    self.connection.invalidate()
        finally:
            self.connection.close()
        if isinstance(error, OperationalError):
            raise TransientError(f"database temporarily unavailable: {error.orig}") from error

    def lock(self, name: str) -> None:
        """Serialise writers named ``name`` across processes for the rest of the transaction:
        ``pg_advisory_xact_lock`` on Postgres; SQLite already admits one writer at a time."""
        self._writable("lock")
        if self.engine.dialect.name == "postgresql":
            self._run(
                lambda: self.connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
            )

    def commit(self) -> None:
        self._writable("commit")
        assert self.transaction is not None
        self._run(self.transaction.commit)

    def _writable(self, action: str) -> None:
        if self.read_only:
            raise RuntimeError(f"a read-only unit of work cannot {action}: open it with read_only=False")

    def _run(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OperationalError as exc:
            raise TransientError(f"database temporarily unavailable: {exc.orig}") from exc


def sql_unit_of_work(engine: Engine) -> Callable[..., SqlUnitOfWork]:
    """The factory services take: each call is a new unit of work on ``engine`` (``read_only=True``:
    reads only; see the module)."""
    return lambda read_only=False: SqlUnitOfWork(engine, read_only)
