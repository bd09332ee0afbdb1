"""Feed ingestion: pull new records for each feed scope, upsert them, advance the watermark.

A scope is (source, subject, kind, granularity); every configured source is ingested for every
subject, and every record keeps its own source. Historical sources (replay, synthetic) yield
closed records only; live sources also yield the open candle (``final=False``), which the next
poll revises until it closes. The watermark is the newest *final* record.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import column as sa_column
from sqlalchemy import func
from sqlalchemy import table as sa_table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine
from sqlmodel import select

from coordinator_core.config import Settings, granularity_seconds
from coordinator_core.db.engine import on_conflict, unit_of_work, upsert_statement
from coordinator_core.db.tables import FeedIngestionState, FeedRecord
from coordinator_core.feeds.base import FeedScope, FeedSource, SourceRecord
from coordinator_core.services.feed_reader import observe_delay

log = logging.getLogger(__name__)
BATCH = 2_000
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
    engine: Engine, scope: FeedScope, records: list[SourceRecord], now: datetime, phase: str = "poll"
) -> int:
    """Upsert records on their natural key and advance the watermark; returns rows written.

    A row is rewritten only if its values, meta or finality changed, so a re-run writes 0 rows.
    A final row is never replaced by a non-final one.
    """
    written = 0
    table: Any = FeedRecord.__table__
    with unit_of_work(engine) as session:
        # ts_ingested moves only with a real change: a re-run with identical data writes nothing
        stmt = upsert_statement(
            session,
            table,
            ["source", "subject", "kind", "granularity", "ts_event"],
            update=["values_jsonb", "meta_jsonb", "final"],
            refresh=("ts_ingested",),
            guard="final_wins",
        ).returning(table.c.id)
        records = list({r.ts_event: r for r in records}.values())  # one row per key: the last wins
        if session.get_bind().dialect.name == "postgresql" and len(records) >= COPY_THRESHOLD:
            written = _copy_upsert(session, scope, records, now)
        else:
            for offset in range(0, len(records), BATCH):
                rows = [
                    {
                        "source": scope.source,
                        "subject": scope.subject,
                        "kind": scope.kind,
                        "granularity": scope.granularity,
                        "ts_event": r.ts_event,
                        "ts_ingested": now,
                        "final": r.final,
                        "values_jsonb": r.values,
                        "meta_jsonb": r.meta,
                    }
                    for r in records[offset : offset + BATCH]
                ]
                written += len(session.execute(stmt, rows).all())
        newest = max((r.ts_event for r in records if r.final), default=None)
        state = session.get(FeedIngestionState, scope.key)
        if state is None:
            state = FeedIngestionState(
                id=scope.key,
                source=scope.source,
                subject=scope.subject,
                kind=scope.kind,
                granularity=scope.granularity,
                last_event_ts=newest,
                updated_at=now,
                meta_jsonb={"phase": phase},
            )
            session.add(state)
        elif newest is not None and (state.last_event_ts is None or newest > state.last_event_ts):
            state.last_event_ts, state.updated_at, state.meta_jsonb = newest, now, {"phase": phase}
            session.add(state)
    return written


COPY_THRESHOLD = 500
_COLUMNS = (
    "source",
    "subject",
    "kind",
    "granularity",
    "ts_event",
    "ts_ingested",
    "final",
    "values_jsonb",
    "meta_jsonb",
)


def _copy_upsert(session: Any, scope: FeedScope, records: list[SourceRecord], now: datetime) -> int:
    """Postgres bulk path: COPY into a temporary table, then the same conditional upsert as one
    ``INSERT .. SELECT`` (about 4x faster than multi-row INSERTs for a 43,200-row backfill)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for r in records:
        writer.writerow(
            [
                scope.source,
                scope.subject,
                scope.kind,
                scope.granularity,
                r.ts_event.isoformat(),
                now.isoformat(),
                "t" if r.final else "f",
                json.dumps(r.values),
                json.dumps(r.meta),
            ]
        )
    buffer.seek(0)
    cursor = session.connection().connection.dbapi_connection.cursor()
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS feed_records_stage (LIKE feed_records INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    cursor.copy_expert(f"COPY feed_records_stage ({', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer)
    table: Any = FeedRecord.__table__
    stage = sa_table("feed_records_stage", *[sa_column(c) for c in _COLUMNS])
    stmt = pg_insert(table).from_select(list(_COLUMNS), select(*[stage.c[c] for c in _COLUMNS]))
    stmt = on_conflict(
        stmt,
        table,
        list(_COLUMNS[:5]),
        ["values_jsonb", "meta_jsonb", "final"],
        refresh=("ts_ingested",),
        guard="final_wins",
    ).returning(table.c.id)
    return len(session.execute(stmt).all())


def watermark(engine: Engine, scope: FeedScope) -> datetime | None:
    with unit_of_work(engine) as session:
        state = session.get(FeedIngestionState, scope.key)
        return state.last_event_ts if state else None


def ingest_scope(
    engine: Engine, source: FeedSource, scope: FeedScope, now: datetime, settings: Settings
) -> IngestResult:
    """Fetch what is new since the watermark (or a backfill window) up to ``now``, page by page."""
    step = step_of(scope)
    last = watermark(engine, scope)
    if last is None:
        bucket = timedelta(seconds=granularity_seconds(scope.granularity))
        start = now - max(
            timedelta(minutes=settings.feed_backfill_minutes), bucket * (settings.feed_candles_window + 1)
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
        written += upsert_records(engine, scope, records, now)
        newest = max([r.ts_event for r in records if r.final] + ([newest] if newest else []), default=None)
        if scope.kind == "candle" and len(records) < source.page_limit:
            break  # candles: a short page is the end; ticks may collapse same-ms trades, so page until empty
        start = records[-1].ts_event + step
    if pages >= MAX_PAGES_PER_POLL:
        log.warning("%s is more than %d pages behind; the next poll continues (or run a backfill)", scope.key, pages)
    if fetched:
        log.info("ingested %s: %d fetched, %d written in %d page(s)", scope.key, fetched, written, pages)
    return IngestResult(scope.key, fetched, written, newest, pages)


def ingest(engine: Engine, sources: Mapping[str, FeedSource], settings: Settings, now: datetime) -> list[IngestResult]:
    return [ingest_scope(engine, sources[scope.source], scope, now, settings) for scope in feed_scopes(settings)]


def prune_records(engine: Engine, now: datetime, ttl_days: int, batch: int = 5_000) -> int:
    """Delete feed records older than the TTL, in bounded batches; returns rows deleted."""
    cutoff = now - timedelta(days=ttl_days)
    deleted = 0
    while True:
        with unit_of_work(engine) as session:
            ids = session.exec(select(FeedRecord.id).where(FeedRecord.ts_event < cutoff).limit(batch)).all()
            if not ids:
                return deleted
            session.execute(FeedRecord.__table__.delete().where(FeedRecord.__table__.c.id.in_(ids)))  # type: ignore[attr-defined]
            deleted += len(ids)


def record_count(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.exec(select(func.count()).select_from(FeedRecord)).one())
