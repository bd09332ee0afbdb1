"""Backfill any range of a feed scope, and find the gaps (missing buckets) left in storage.

A backfill pages forward from ``start`` (one upstream page per fetch, ``source.page_limit``
records), upserting each page, so an interrupted backfill resumes by simply running again and a
repeated one writes 0 rows. Gaps are buckets of the expected grid with no stored record; a later
backfill over the same range repairs them when the upstream has the data. Nothing is ever filled
in by the coordinator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from coordinator_core.clock import floor_time
from coordinator_core.config import granularity_seconds
from coordinator_core.feeds.base import FeedScope, FeedSource
from coordinator_core.ports import UnitOfWorkFactory
from coordinator_core.services.ingest import step_of, upsert_records


@dataclass(frozen=True)
class Gap:
    """Missing buckets ``first .. last`` (inclusive), ``count`` of them."""

    first: datetime
    last: datetime
    count: int


@dataclass
class BackfillResult:
    scope: str
    start: datetime
    end: datetime
    pages: int = 0
    fetched: int = 0
    written: int = 0
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(g.count for g in self.gaps)


def backfill(
    uow: UnitOfWorkFactory,
    source: FeedSource,
    scope: FeedScope,
    start: datetime,
    end: datetime,
    now: datetime,
    progress: Callable[[datetime, BackfillResult], None] | None = None,
) -> BackfillResult:
    """Fetch and store every record of ``scope`` with ``start <= ts_event <= end``."""
    if end < start:
        raise ValueError(f"backfill: end {end.isoformat()} is before start {start.isoformat()}")
    result = BackfillResult(scope.key, start, end)
    step = step_of(scope)
    page_span = timedelta(seconds=granularity_seconds(scope.granularity)) * source.page_limit
    cursor = start
    while cursor <= end:
        records = source.fetch(scope, cursor, end, limit=source.page_limit)
        result.pages += 1
        if not records:  # a hole in the upstream's history, not necessarily the end: skip a page
            cursor += page_span
            if progress:
                progress(min(cursor, end), result)
            continue
        result.fetched += len(records)
        result.written += upsert_records(uow, scope, records, now, phase="backfill")
        following = records[-1].ts_event + step
        if following <= cursor:  # a source that does not move forward would loop forever
            break
        cursor = following
        if progress:
            progress(min(cursor, end), result)
    if scope.kind == "candle":
        result.gaps = find_gaps(
            uow, scope, start, min(end, now - timedelta(seconds=granularity_seconds(scope.granularity)))
        )
    return result


def find_gaps(uow: UnitOfWorkFactory, scope: FeedScope, start: datetime, end: datetime) -> list[Gap]:
    """Buckets between ``start`` and ``end`` (inclusive, aligned to the granularity) with no record."""
    seconds = granularity_seconds(scope.granularity)
    first = floor_time(start, seconds)
    if first < start:
        first += timedelta(seconds=seconds)
    if end < first:
        return []
    with uow() as work:
        stored = work.feeds.stored_times(scope, first, end)
    gaps: list[Gap] = []
    bucket = timedelta(seconds=seconds)
    current, open_gap, count = first, None, 0
    while current <= end:
        if current in stored:
            if open_gap is not None:
                gaps.append(Gap(open_gap, current - bucket, count))
                open_gap, count = None, 0
        else:
            open_gap = open_gap or current
            count += 1
        current += bucket
    if open_gap is not None:
        gaps.append(Gap(open_gap, current - bucket, count))
    return gaps
