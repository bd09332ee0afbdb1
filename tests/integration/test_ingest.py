"""Feed ingestion: backfill, watermark, idempotent upserts, finality, pruning (SQLite and Postgres)."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import event
from sqlmodel import Session

from coordinator_core.db.tables import FeedIngestionState, FeedRecord
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.services.ingest import (
    feed_scopes,
    ingest,
    prune_records,
    record_count,
    upsert_records,
)
from tests._svc_helpers import HOUR, candles, rows, utc

T = utc(2019, 9, 1, 12)
SCOPE = FeedScope("replay", "BTC", "candle", "1h")
WINDOW = 121  # max(FEED_BACKFILL_MINUTES=180 min, 1 h * (FEED_CANDLES_WINDOW + 1)) = 121 hourly candles


def _state(engine, scope=SCOPE):
    with Session(engine) as session:
        return session.get(FeedIngestionState, scope.key)


def _by_ts(engine):
    return {r["ts_event"]: r for r in rows(engine, FeedRecord)}


def test_first_ingest_writes_the_backfill_window_of_closed_candles(make_runtime):
    rt = make_runtime()
    [result] = ingest(rt.uow, rt.sources, rt.settings, T)

    assert result.scope == SCOPE.key
    assert (result.fetched, result.written) == (WINDOW, WINDOW)
    stored = _by_ts(rt.engine)
    expected_ts = [T - HOUR * k for k in range(WINDOW, 0, -1)]  # T-121h .. T-1h: the candle opened at T is open
    assert sorted(stored) == expected_ts
    for ts, row in stored.items():
        assert (row["source"], row["subject"], row["kind"], row["granularity"]) == ("replay", "BTC", "candle", "1h")
        assert row["final"] is True
        assert row["values_jsonb"] == candles()[ts]
        assert row["ts_ingested"] == T
    state = _state(rt.engine)
    assert state is not None
    assert state.last_event_ts == T - HOUR
    assert result.watermark == T - HOUR


def test_ingest_again_at_the_same_time_writes_nothing(make_runtime):
    rt = make_runtime()
    ingest(rt.uow, rt.sources, rt.settings, T)
    before_records, before_state = rows(rt.engine, FeedRecord), rows(rt.engine, FeedIngestionState)

    for again in (T, T + timedelta(minutes=59)):  # no further candle has closed before T+1h
        [result] = ingest(rt.uow, rt.sources, rt.settings, again)
        assert result.written == 0
        assert result.watermark == T - HOUR

    assert rows(rt.engine, FeedRecord) == before_records
    assert rows(rt.engine, FeedIngestionState) == before_state


def test_ingest_later_writes_only_the_new_candles(make_runtime):
    rt = make_runtime()
    ingest(rt.uow, rt.sources, rt.settings, T)
    before = _by_ts(rt.engine)

    [result] = ingest(rt.uow, rt.sources, rt.settings, T + 3 * HOUR)

    assert (result.fetched, result.written) == (3, 3)
    after = _by_ts(rt.engine)
    assert sorted(set(after) - set(before)) == [T, T + HOUR, T + 2 * HOUR]
    assert {ts: after[ts] for ts in before} == before  # old rows untouched (ids, ts_ingested, values)
    for ts in (T, T + HOUR, T + 2 * HOUR):
        assert after[ts]["values_jsonb"] == candles()[ts]
        assert after[ts]["ts_ingested"] == T + 3 * HOUR
    assert _state(rt.engine).last_event_ts == T + 2 * HOUR


def test_upsert_with_changed_values_rewrites_exactly_that_row(make_runtime):
    rt = make_runtime()
    ingest(rt.uow, rt.sources, rt.settings, T)
    before = _by_ts(rt.engine)
    target = T - 5 * HOUR
    changed_values = {**candles()[target], "close": candles()[target]["close"] + 1.5}
    records = [SourceRecord(ts, dict(candles()[ts])) for ts in sorted(before)]
    records = [SourceRecord(r.ts_event, changed_values) if r.ts_event == target else r for r in records]

    written = upsert_records(rt.uow, SCOPE, records, T + HOUR)

    assert written == 1
    after = _by_ts(rt.engine)
    assert after[target]["values_jsonb"] == changed_values
    assert after[target]["id"] == before[target]["id"]
    assert {ts: r for ts, r in after.items() if ts != target} == {ts: r for ts, r in before.items() if ts != target}
    snapshot = rows(rt.engine, FeedRecord)

    assert upsert_records(rt.uow, SCOPE, records, T + 2 * HOUR) == 0
    assert rows(rt.engine, FeedRecord) == snapshot


def test_meta_change_alone_is_a_change(make_runtime):
    rt = make_runtime()
    ts = T - HOUR
    record = SourceRecord(ts, dict(candles()[ts]))
    assert upsert_records(rt.uow, SCOPE, [record], T) == 1
    assert upsert_records(rt.uow, SCOPE, [record], T) == 0
    assert upsert_records(rt.uow, SCOPE, [SourceRecord(ts, dict(candles()[ts]), meta={"revised": True})], T) == 1
    assert [r["meta_jsonb"] for r in rows(rt.engine, FeedRecord)] == [{"revised": True}]


def test_non_final_record_becomes_final_when_reingested(make_runtime):
    rt = make_runtime()
    ingest(rt.uow, rt.sources, rt.settings, T)
    partial = {
        "open": candles()[T]["open"],
        "high": candles()[T]["open"],
        "low": candles()[T]["open"],
        "close": candles()[T]["open"],
        "volume": 0.5,
    }

    # the candle opened at T, seen half-way through: not final, so the watermark must not move
    assert upsert_records(rt.uow, SCOPE, [SourceRecord(T, partial, final=False)], T + timedelta(minutes=30)) == 1
    assert _by_ts(rt.engine)[T]["final"] is False
    assert _state(rt.engine).last_event_ts == T - HOUR

    [result] = ingest(rt.uow, rt.sources, rt.settings, T + 2 * HOUR)

    assert result.written == 2  # T (now final, new values) and T+1h
    stored = _by_ts(rt.engine)
    assert stored[T]["final"] is True
    assert stored[T]["values_jsonb"] == candles()[T]
    assert stored[T + HOUR]["final"] is True
    assert _state(rt.engine).last_event_ts == T + HOUR
    assert len(stored) == WINDOW + 2


def test_non_final_only_batch_creates_state_without_watermark(make_runtime):
    rt = make_runtime()
    assert upsert_records(rt.uow, SCOPE, [SourceRecord(T, dict(candles()[T]), final=False)], T) == 1
    state = _state(rt.engine)
    assert state is not None and state.last_event_ts is None


def test_prune_deletes_only_rows_older_than_the_ttl_in_batches(make_runtime):
    rt = make_runtime()
    ingest(rt.uow, rt.sources, rt.settings, T)  # T-121h .. T-1h
    now, ttl_days, batch = T + timedelta(days=1), 5, 4
    cutoff = now - timedelta(days=ttl_days)  # T-96h
    old = [ts for ts in _by_ts(rt.engine) if ts < cutoff]
    assert len(old) == 25

    deletes: list[str] = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE FROM FEED_RECORDS"):
            deletes.append(statement)

    event.listen(rt.engine, "before_cursor_execute", spy)
    try:
        deleted = prune_records(rt.uow, now, ttl_days, batch=batch)
    finally:
        event.remove(rt.engine, "before_cursor_execute", spy)

    assert deleted == 25
    assert len(deletes) == math.ceil(25 / batch)  # bounded batches, not one big DELETE
    remaining = sorted(_by_ts(rt.engine))
    assert remaining[0] == cutoff  # a row exactly at the cutoff is not older than the TTL
    assert remaining == [T - HOUR * k for k in range(96, 0, -1)]
    assert record_count(rt.uow) == 96
    assert prune_records(rt.uow, now, ttl_days, batch=batch) == 0
    assert record_count(rt.uow) == 96


def test_synthetic_source_ingests_minute_candles(make_runtime):
    rt = make_runtime(feed_source="synthetic", feed_granularity="1m")
    now = utc(2024, 3, 1, 12)
    [scope] = feed_scopes(rt.settings)
    assert scope.key == "synthetic:BTC:candle:1m"

    [result] = ingest(rt.uow, rt.sources, rt.settings, now)

    minute = timedelta(minutes=1)
    stored = _by_ts(rt.engine)
    # backfill = max(180 min, 121 min) = 180 one-minute candles, the last one opened at now-1m
    assert sorted(stored) == [now - minute * k for k in range(180, 0, -1)]
    assert result.written == 180
    for row in stored.values():
        v = row["values_jsonb"]
        assert (row["source"], row["granularity"]) == ("synthetic", "1m")
        assert v["low"] <= min(v["open"], v["close"]) <= max(v["open"], v["close"]) <= v["high"]
        assert v["low"] > 0 and v["volume"] > 0
    assert _state(rt.engine, scope).last_event_ts == now - minute

    before = rows(rt.engine, FeedRecord)
    assert ingest(rt.uow, rt.sources, rt.settings, now)[0].written == 0
    assert rows(rt.engine, FeedRecord) == before

    [later] = ingest(rt.uow, rt.sources, rt.settings, now + 5 * minute + timedelta(seconds=30))
    assert later.written == 5
    assert sorted(set(_by_ts(rt.engine)) - {r["ts_event"] for r in before}) == [now + minute * k for k in range(5)]


def test_ingest_state_row_describes_the_scope(make_runtime):
    rt = make_runtime()
    ingest(rt.uow, rt.sources, rt.settings, T)
    [state] = rows(rt.engine, FeedIngestionState)
    assert state["id"] == SCOPE.key
    assert (state["source"], state["subject"], state["kind"], state["granularity"]) == ("replay", "BTC", "candle", "1h")
    assert state["updated_at"] == T
