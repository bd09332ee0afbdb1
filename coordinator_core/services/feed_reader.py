"""Stored feed records as the models and the ground-truth rule see them (pure conversions).

A record is *observed* at ``ts_event`` for a tick and at ``ts_event + granularity`` for a candle
(its close); see ``coordinator_core.feeds.base.observe_delay``.
"""

from __future__ import annotations

from typing import Any

from coordinator_core.feeds.base import FeedScope, observe_delay
from coordinator_core.ports import StoredRecord


def price_point(record: StoredRecord, scope: FeedScope) -> dict[str, Any]:
    """``{"ts": observed time, "price", "record_ts", "values"}`` for the ground-truth rule."""
    values = record.values
    price = values.get("close", values.get("price"))
    observed = record.ts_event + observe_delay(scope)
    return {
        "ts": observed.isoformat(),
        "price": price,
        "record_ts": record.ts_event.isoformat(),
        "values": dict(values),
    }


def as_candle(record: StoredRecord) -> dict[str, Any]:
    """A candle of the model input: ``{"ts": open time in epoch seconds, OHLCV}`` (a tick is a flat candle)."""
    values = record.values
    ts = int(record.ts_event.timestamp())
    if "close" in values:
        return {"ts": ts, **{k: values.get(k) for k in ("open", "high", "low", "close", "volume")}}
    price = values.get("price")
    return {"ts": ts, "open": price, "high": price, "low": price, "close": price, "volume": 0.0}
