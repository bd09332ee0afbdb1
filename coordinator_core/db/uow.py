"""The SQL unit of work: one connection, one transaction, and the repositories over it.

::

    with SqlUnitOfWork(engine) as uow:
        uow.lock("coordinator:score-and-checkpoint")
        ...                                  # repositories: uow.rounds, uow.scores, ...
        uow.commit()                         # without it, everything is rolled back

Lock conflicts and lost connections surface as ``TransientError`` (retried by Prefect).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> SqlUnitOfWork:
        self.connection = self.engine.connect()
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
            if self.transaction.is_active:  # not committed: roll back
                self.transaction.rollback()
        finally:
            self.connection.close()
        if isinstance(error, OperationalError):
            raise TransientError(f"database temporarily unavailable: {error.orig}") from error

    def lock(self, name: str) -> None:
        """Serialise writers named ``name`` across processes for the rest of the transaction:
        ``pg_advisory_xact_lock`` on Postgres; SQLite already admits one writer at a time."""
        if self.engine.dialect.name == "postgresql":
            self._run(
                lambda: self.connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
            )

    def commit(self) -> None:
        self._run(self.transaction.commit)

    def _run(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OperationalError as exc:
            raise TransientError(f"database temporarily unavailable: {exc.orig}") from exc


def sql_unit_of_work(engine: Engine) -> Callable[[], SqlUnitOfWork]:
    """The factory services take: each call is a new unit of work on ``engine``."""
    return lambda: SqlUnitOfWork(engine)
