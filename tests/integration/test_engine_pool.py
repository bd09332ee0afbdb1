"""The Postgres pool's liveness check (``db.engine.PING_IDLE_SECONDS``): a pooled connection that
idled past the threshold is pinged on checkout and replaced when the server has closed it; one
that was in use a moment ago is handed out without a round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from coordinator_core.db import engine as engines
from tests import pg


@pytest.fixture
def url() -> str:
    return pg.create_database("pool")


def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(pid: int) -> None:
    with engines.get_engine(pg.ADMIN_URL).connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        admin.commit()


def _pings(engine) -> list[str]:  # type: ignore[no-untyped-def]
    sent: list[str] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection):  # type: ignore[no-untyped-def]
        sent.append("ping")
        return original(dbapi_connection)

    engine.dialect.do_ping = counted
    return sent


def test_an_idle_connection_closed_by_the_server_is_replaced_on_checkout(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engines.make_engine(url)
    try:
        monkeypatch.setattr(engines, "PING_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
        pings = _pings(engine)
        first = _backend_pid(engine)
        _kill(first)
        second = _backend_pid(engine)  # no error: the ping found it dead, the pool reconnected
        assert second != first
        assert pings == ["ping"]
    finally:
        engine.dispose()


def test_a_connection_in_use_a_moment_ago_is_not_pinged(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engines.make_engine(url)
    try:
        monkeypatch.setattr(engines, "PING_IDLE_SECONDS", 3600.0)
        pings = _pings(engine)
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        first = _backend_pid(engine)  # a fresh connection: never pinged
        assert _backend_pid(engine) == first  # the same pooled connection, handed out again
        assert pings == [] and len(statements) == 2
    finally:
        engine.dispose()


def test_a_connection_closed_within_the_window_fails_as_transient_then_the_pool_recovers(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coordinator_core.db.uow import SqlUnitOfWork
    from coordinator_core.errors import TransientError

    engine = engines.make_engine(url)
    try:
        monkeypatch.setattr(engines, "PING_IDLE_SECONDS", 3600.0)
        _kill(_backend_pid(engine))
        with pytest.raises(TransientError, match="database temporarily unavailable"):
            with SqlUnitOfWork(engine) as work:
                work.connection.execute(text("SELECT 1"))
        assert _backend_pid(engine) > 0  # the dead connection was discarded: the next one works
    finally:
        engine.dispose()
