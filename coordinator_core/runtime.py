"""The process-wide runtime: settings, contract, database engine, feed source and model gateway.

Built once per process from the environment (tasks take only ids and timestamps, and get what
they need from here). ``reset_runtime()`` forgets it, for tests that change the environment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from coordinator_core.config import Settings, load_settings
from coordinator_core.contract import CrunchContract, load_contract
from coordinator_core.db.engine import get_engine
from coordinator_core.feeds.base import FeedSource
from coordinator_core.feeds.registry import create_source
from coordinator_core.gateway.base import ModelGateway, create_gateway


@dataclass
class Runtime:
    settings: Settings
    contract: CrunchContract
    engine: Engine
    _sources: dict[str, FeedSource] = field(default_factory=dict, repr=False)
    _gateway: ModelGateway | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def source_for(self, name: str) -> FeedSource:
        with self._lock:
            if name not in self._sources:
                self._sources[name] = create_source(name, self.settings)
            return self._sources[name]

    @property
    def sources(self) -> dict[str, FeedSource]:
        """Every configured source, in priority order."""
        return {name: self.source_for(name) for name in self.settings.sources}

    @property
    def source(self) -> FeedSource:
        """The primary (first) source."""
        return self.source_for(self.settings.sources[0])

    @property
    def gateway(self) -> ModelGateway:
        with self._lock:
            if self._gateway is None:
                self._gateway = create_gateway(self.settings)
            return self._gateway

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()


_RUNTIME: Runtime | None = None
_RUNTIME_LOCK = threading.Lock()


def build_runtime(settings: Settings | None = None, **overrides: Any) -> Runtime:
    """A new runtime; validates settings and the contract (errors name the variable to fix)."""
    settings = settings or load_settings(**overrides)
    return Runtime(settings=settings, contract=load_contract(settings), engine=get_engine(settings.database_url))


def get_runtime() -> Runtime:
    global _RUNTIME
    with _RUNTIME_LOCK:
        if _RUNTIME is None:
            _RUNTIME = build_runtime()
        return _RUNTIME


def reset_runtime() -> None:
    global _RUNTIME
    with _RUNTIME_LOCK:
        if _RUNTIME is not None:
            _RUNTIME.close()
        _RUNTIME = None
