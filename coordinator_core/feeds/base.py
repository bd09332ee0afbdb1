"""The ``FeedSource`` protocol and the records it yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class FeedScope:
    """One feed: the natural key of its records without the event time."""

    source: str
    subject: str
    kind: str
    granularity: str

    @property
    def key(self) -> str:
        return f"{self.source}:{self.subject}:{self.kind}:{self.granularity}"


@dataclass(frozen=True)
class SourceRecord:
    """A record as a source yields it. ``ts_event`` is aware UTC; for candles it is the open time.

    ``values``: ``{"price"}`` for ticks, ``{"open","high","low","close","volume"}`` for candles.
    ``final`` is False for a candle that has not closed yet.
    """

    ts_event: datetime
    values: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    final: bool = True


@runtime_checkable
class FeedSource(Protocol):
    """Something that answers "which records of this scope have event times in [start, end]?".

    ``page_limit``: the most records one ``fetch`` returns (a backfill pages through longer
    ranges). ``live``: the source serves the present, including records not final yet (an open
    candle, ``final=False``); historical sources (replay, synthetic) serve closed records only.
    Errors: ``FeedUnavailable``/``RateLimited`` (transient) or ``FeedPermanentError``.
    """

    name: str
    page_limit: int
    live: bool

    def fetch(self, scope: FeedScope, start: datetime, end: datetime, limit: int | None = None) -> list[SourceRecord]:
        """Records with ``start <= ts_event <= end``, ascending, at most ``limit``."""
        ...

    def history_end(self, subject: str) -> datetime | None:
        """The event time of the last record a dataset holds for ``subject`` (``None``: the source
        has no fixed end, e.g. a live or generated feed). Backtests default to the data's end."""
        ...


def observe_delay(scope: FeedScope) -> timedelta:
    """When a record becomes observable after its ``ts_event``: at its close for a candle (one
    bucket later), at once for a tick."""
    from coordinator_core.config import granularity_seconds

    return timedelta(seconds=granularity_seconds(scope.granularity)) if scope.kind == "candle" else timedelta(0)
