"""Dependency injection: settings, contract, clock and database sessions.

``SessionDep`` reads from ``READ_DATABASE_URL`` (a replica) when set, else ``DATABASE_URL``; the
admin actions go through the checkpoint service with ``ApiContext.uow`` (always ``DATABASE_URL``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.cache import LeaderboardCache, TtlCache
from coordinator_core.config import Settings
from coordinator_core.contract import CrunchContract
from coordinator_core.ports import UnitOfWorkFactory


@dataclass(frozen=True)
class ApiContext:
    """What ``create_app`` puts in ``app.state.context``."""

    settings: Settings
    contract: CrunchContract
    read_engine: Engine
    write_engine: Engine
    uow: UnitOfWorkFactory
    clock: Callable[[], datetime]
    api_version: str = "0.1.0"
    leaderboards: LeaderboardCache = field(default_factory=LeaderboardCache)
    totals: TtlCache = field(default_factory=TtlCache)
    documents: TtlCache = field(default_factory=lambda: TtlCache(size=256, ttl=3600.0))

    @property
    def windows(self) -> dict[str, int]:
        """Aggregation windows: name → hours, in contract order."""
        return {name: window.hours for name, window in self.contract.aggregation.windows.items()}


# Cheap dependencies are ``async`` so that they run on the event loop: a sync dependency costs a
# hop to the thread pool and back, which dominates a cheap request on a busy machine. Creating a
# Session does no I/O (the connection is taken on first use, in the endpoint's worker thread);
# closing it returns the connection to the pool.


async def get_context(request: Request) -> ApiContext:
    return request.app.state.context


async def get_settings(request: Request) -> Settings:
    return request.app.state.context.settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    session = Session(request.app.state.context.read_engine)
    try:
        yield session
    finally:
        session.close()


ContextDep = Annotated[ApiContext, Depends(get_context)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
