"""Feed ingestion: pull new records for each feed scope, upsert them, advance the watermark.

A scope is (source, subject, kind, granularity); every configured source is ingested for every
subject, and every record keeps its own source. Historical sources (replay, synthetic) yield
closed records only; live sources also yield the open candle (``final=False``), which the next
poll revises until it closes. The watermark is the newest *final* record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from coordinator_core.config import Settings, granularity_seconds
from coordinator_core.feeds.base import FeedScope, FeedSource, SourceRecord, observe_delay
from coordinator_core.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)
MAX_PAGES_PER_POLL = 50


@dataclass(frozen=True)
class IngestResult:
    scope: str
    fetched: int
    written: int
    watermark: datetime | None
    pages: int = 1


def feed_scopes(settings: Settings) -> list[FeedScope]:
    """Every (source, subject) pair, sources in priority order."""
    return [
        FeedScope(source, subject, settings.feed_kind, settings.feed_granularity)
        for source in settings.sources
        for subject in settings.subjects
    ]


def step_of(scope: FeedScope) -> timedelta:
    """Distance from one record to the next key: one bucket for candles, 1 ms for ticks."""
    return (
        timedelta(seconds=granularity_seconds(scope.granularity))
        if scope.kind == "candle"
        else timedelta(milliseconds=1)
    )


def upsert_records(
    uow: UnitOfWorkFactory, scope: FeedScope, records: list[SourceRecord], now: datetime, phase: str = "poll"
) -> int:
    """Upsert records on their natural key and advance the watermark; returns rows written.

    A row is rewritten only if its values, meta or finality changed, so a re-run writes 0 rows.
    A final row is never replaced by a non-final one.
    """
    with uow() as work:
        written = work.feeds.upsert_records(scope, records, now)
        newest = max((r.ts_event for r in records if r.final), default=None)
        work.feeds.advance_watermark(scope, newest, now, phase)
        work.commit()
    return written


def watermark(uow: UnitOfWorkFactory, scope: FeedScope) -> datetime | None:
    with uow() as work:
        return work.feeds.watermark(scope)


def ingest_scope(
    uow: UnitOfWorkFactory,
    source: FeedSource,
    scope: FeedScope,
    now: datetime,
    settings: Settings,
    history_seconds: int = 0,
) -> IngestResult:
    """Fetch what is new since the watermark (or a backfill window) up to ``now``, page by page."""
    step = step_of(scope)
    last = watermark(uow, scope)
    if last is None:
        bucket = timedelta(seconds=granularity_seconds(scope.granularity))
        start = now - max(
            timedelta(minutes=settings.feed_backfill_minutes),
            bucket * (settings.feed_candles_window + 1),
            timedelta(seconds=history_seconds),  # what the contract's first tick sends
        )
    else:
        start = last + step
    end = now if source.live else now - observe_delay(scope)  # historical sources: closed candles only
    fetched = written = pages = 0
    newest = last
    while start <= end and pages < MAX_PAGES_PER_POLL:
        records = source.fetch(scope, start, end, limit=source.page_limit)
        pages += 1
        if not records:  # a hole upstream: skip one page span (the next poll retries the newest part)
            start += timedelta(seconds=granularity_seconds(scope.granularity)) * source.page_limit
            continue
        fetched += len(records)
        written += upsert_records(uow, scope, records, now)
        newest = max([r.ts_event for r in records if r.final] + ([newest] if newest else []), default=None)
        if scope.kind == "candle" and len(records) < source.page_limit:
            break  # candles: a short page is the end; ticks may collapse same-ms trades, so page until empty
        start = records[-1].ts_event + step
    if pages >= MAX_PAGES_PER_POLL:
        log.warning("%s is more than %d pages behind; the next poll continues (or run a backfill)", scope.key, pages)
    if fetched:
        log.info("ingested %s: %d fetched, %d written in %d page(s)", scope.key, fetched, written, pages)
    return IngestResult(scope.key, fetched, written, newest, pages)


def ingest(
    uow: UnitOfWorkFactory,
    sources: Mapping[str, FeedSource],
    settings: Settings,
    now: datetime,
    history_seconds: int = 0,
) -> list[IngestResult]:
    """Ingest every scope; a scope's first poll reaches back ``FEED_BACKFILL_MINUTES``, the model
    input window, or ``history_seconds`` (the contract's first-tick history), whichever is longest."""
    return [
        ingest_scope(uow, sources[scope.source], scope, now, settings, history_seconds)
        for scope in feed_scopes(settings)
    ]


def prune_records(uow: UnitOfWorkFactory, now: datetime, ttl_days: int, batch: int = 5_000) -> int:
    """Delete feed records older than the TTL, in bounded batches (one transaction each); returns rows deleted."""
    cutoff = now - timedelta(days=ttl_days)
    deleted = 0
    while True:
        with uow() as work:
            count = work.feeds.prune(cutoff, batch)
            work.commit()
        deleted += count
        if count < batch:
            return deleted


def record_count(uow: UnitOfWorkFactory) -> int:
    with uow() as work:
        return work.feeds.count()
