"""Reading stored feed records: newest windows for model input, price points for ground truth.

A record is *observed* at ``ts_event`` for a tick and at ``ts_event + granularity`` for a candle
(its close). Only observed, final records are used, so no price from after a decision leaks in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from coordinator_core.config import granularity_seconds
from coordinator_core.db.tables import FeedRecord
from coordinator_core.feeds.base import FeedScope


def observe_delay(scope: FeedScope) -> timedelta:
    return timedelta(seconds=granularity_seconds(scope.granularity)) if scope.kind == "candle" else timedelta(0)


def _scoped(scope: FeedScope) -> Any:
    return select(FeedRecord).where(
        FeedRecord.source == scope.source,
        FeedRecord.subject == scope.subject,
        FeedRecord.kind == scope.kind,
        FeedRecord.granularity == scope.granularity,
        col(FeedRecord.final).is_(True),
    )


def latest_records(session: Session, scope: FeedScope, as_of: datetime, limit: int) -> list[FeedRecord]:
    """The newest ``limit`` records observed at or before ``as_of``, oldest first."""
    cutoff = as_of - observe_delay(scope)
    rows = session.exec(
        _scoped(scope).where(FeedRecord.ts_event <= cutoff).order_by(col(FeedRecord.ts_event).desc()).limit(limit)
    ).all()
    return list(reversed(rows))


def price_point(record: FeedRecord, scope: FeedScope) -> dict[str, Any]:
    values = record.values_jsonb
    price = values.get("close", values.get("price"))
    observed = record.ts_event + observe_delay(scope)
    return {"ts": observed.isoformat(), "price": price, "record_ts": record.ts_event.isoformat(), "values": values}


def price_at(session: Session, scope: FeedScope, when: datetime) -> FeedRecord | None:
    """The newest record observed at or before ``when``."""
    cutoff = when - observe_delay(scope)
    return session.exec(
        _scoped(scope).where(FeedRecord.ts_event <= cutoff).order_by(col(FeedRecord.ts_event).desc()).limit(1)
    ).first()


def as_candle(record: FeedRecord) -> dict[str, Any]:
    values = record.values_jsonb
    ts = int(record.ts_event.timestamp())
    if "close" in values:
        return {"ts": ts, **{k: values.get(k) for k in ("open", "high", "low", "close", "volume")}}
    price = values.get("price")
    return {"ts": ts, "open": price, "high": price, "low": price, "close": price, "volume": 0.0}
