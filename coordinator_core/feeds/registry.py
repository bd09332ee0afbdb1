"""Feed source registry: name -> factory(settings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coordinator_core.errors import ConfigurationError
from coordinator_core.feeds.base import FeedSource

_FACTORIES: dict[str, Callable[[Any], FeedSource]] = {}


def register_source(name: str, factory: Callable[[Any], FeedSource], replace: bool = False) -> None:
    key = name.strip().lower()
    if key in _FACTORIES and not replace:
        raise ValueError(f"feed source {key!r} is already registered")
    _FACTORIES[key] = factory


def create_source(name: str, settings: Any) -> FeedSource:
    factory = _FACTORIES.get(name.strip().lower())
    if factory is None:
        raise ConfigurationError(
            f"FEED_SOURCE: no feed source {name!r} here; available: {', '.join(sorted(_FACTORIES))}"
        )
    return factory(settings)


def _replay(settings: Any) -> FeedSource:
    from coordinator_core.feeds.replay import ReplaySource

    return ReplaySource(settings.replay_path)


def _synthetic(settings: Any) -> FeedSource:
    from coordinator_core.feeds.synthetic import SyntheticSource

    return SyntheticSource(settings.synthetic_seed, settings.synthetic_start_price)


def _binance(settings: Any) -> FeedSource:
    from coordinator_core.feeds.binance import BinanceSource

    return BinanceSource.from_settings(settings)


def _pyth(settings: Any) -> FeedSource:
    from coordinator_core.feeds.pyth import PythSource

    return PythSource.from_settings(settings)


register_source("replay", _replay)
register_source("binance", _binance)
register_source("pyth", _pyth)
register_source("synthetic", _synthetic)
