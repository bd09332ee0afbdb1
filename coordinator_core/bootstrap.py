"""The composition root: one place builds what the services are given.

``build_runtime()`` reads the settings (environment, ``.local.env``), loads the contract, and makes
the database engine, the unit-of-work factory, the model gateway and the feed sources (the last
two on first use, since connecting to model nodes or building a replay index costs time). The
contract's scoring rule is tried on sample inputs first (``preflight.check_scoring``). Nothing
else in the core constructs these; services receive them as arguments. A process that needs one
runtime for its lifetime (a Prefect worker's flow run) keeps it in ``tasks.context``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from coordinator_core.config import Settings, load_settings
from coordinator_core.contract import CrunchContract, load_contract
from coordinator_core.db.engine import get_engine
from coordinator_core.db.uow import sql_unit_of_work
from coordinator_core.errors import ConfigurationError
from coordinator_core.feeds.base import FeedSource
from coordinator_core.feeds.registry import create_source
from coordinator_core.gateway.base import ModelGateway
from coordinator_core.ports import UnitOfWorkFactory


def create_gateway(settings: Settings, contract: CrunchContract) -> ModelGateway:
    """The backend named by ``MODEL_GATEWAY``, calling models as ``contract.calls`` says."""
    if settings.model_gateway == "local":
        from coordinator_core.gateway.local import LocalGateway

        return LocalGateway(
            settings.models_path,
            settings.model_base_classname,
            settings.local_model_timeout_seconds,
            calls=contract.calls,
            workers=settings.local_model_workers,
        )
    if settings.model_gateway == "model_runner":
        from coordinator_core.gateway.model_runner import ModelRunnerGateway

        return ModelRunnerGateway.from_settings(settings, contract.calls)
    raise ConfigurationError(
        f"MODEL_GATEWAY: unknown backend {settings.model_gateway!r}; use 'local' or 'model_runner'"
    )


@dataclass
class Runtime:
    """Settings, contract, engine and unit-of-work factory, plus the gateway and the feed sources."""

    settings: Settings
    contract: CrunchContract
    engine: Engine
    uow: UnitOfWorkFactory
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
                self._gateway = create_gateway(self.settings, self.contract)
            return self._gateway

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()


def build_runtime(settings: Settings | None = None, **overrides: Any) -> Runtime:
    """A new runtime; validates settings and the contract (errors name the variable to fix)."""
    from coordinator_core.preflight import check_scoring

    settings = settings or load_settings(**overrides)
    contract = load_contract(settings)
    check_scoring(contract, settings)  # a stub scoring rule is refused before anything runs
    engine = get_engine(settings.database_url)
    return Runtime(settings=settings, contract=contract, engine=engine, uow=sql_unit_of_work(engine))
