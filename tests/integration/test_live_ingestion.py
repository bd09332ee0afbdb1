"""Ingestion and backfill from the local Binance double (real HTTP on 127.0.0.1), on SQLite and
Postgres: open candles revised, gaps found and repaired, every failure writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from coordinator_core.db.tables import FeedIngestionState, FeedRecord
from coordinator_core.errors import FeedPermanentError, FeedUnavailable
from coordinator_core.feeds.base import FeedScope
from coordinator_core.services.backfill import backfill
from coordinator_core.services.ingest import feed_scopes, ingest_scope
from tests.doubles.binance_server import FakeBinance

T = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)  # 30 s into the 12:00 candle
SCOPE = FeedScope("binance", "BTC", "candle", "1m")


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@pytest.fixture
def fake():
    with FakeBinance(now_ms=ms(T)) as server:
        yield server


@pytest.fixture
def live(make_runtime, fake):
    return make_runtime(
        feed_source="binance",
        feed_granularity="1m",
        binance_api_url=fake.url,
        feed_backfill_minutes=30,
        feed_candles_window=10,
        feed_max_retries=2,
    )


def stored(engine) -> dict[datetime, FeedRecord]:
    with Session(engine) as session:
        return {r.ts_event: r for r in session.exec(select(FeedRecord)).all()}


def state(engine):
    with Session(engine) as session:
        return session.get(FeedIngestionState, SCOPE.key)


def test_poll_stores_the_open_candle_as_provisional_and_revises_it(live, fake) -> None:
    result = ingest_scope(live.uow, live.source, SCOPE, T, live.settings)
    rows = stored(live.engine)
    open_candle = rows[datetime(2026, 11, 28, 12, 0, tzinfo=UTC)]
    assert open_candle.final is False
    assert all(r.final for ts, r in rows.items() if ts < open_candle.ts_event)
    assert result.watermark == state(live.engine).last_event_ts == datetime(2026, 11, 28, 11, 59, tzinfo=UTC)
    provisional_close = open_candle.values_jsonb["close"]

    later = T + timedelta(minutes=1)
    fake.now_ms = ms(later)
    ingest_scope(live.uow, live.source, SCOPE, later, live.settings)
    rows = stored(live.engine)
    revised = rows[datetime(2026, 11, 28, 12, 0, tzinfo=UTC)]
    assert revised.final is True
    expected = fake.kline("BTCUSDT", "1m", ms(revised.ts_event))
    assert revised.values_jsonb["close"] == float(expected[4]) != provisional_close
    assert rows[datetime(2026, 11, 28, 12, 1, tzinfo=UTC)].final is False
    assert state(live.engine).last_event_ts == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    again = ingest_scope(live.uow, live.source, SCOPE, later, live.settings)
    assert again.written <= 1  # only the open candle can change between two polls at one instant


def test_backfill_pages_repairs_gaps_and_repeats_as_a_no_op(live, fake) -> None:
    start, end = datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, 12, tzinfo=UTC)
    fake.add_gap("BTCUSDT", "1m", ms(start + timedelta(hours=3)), ms(start + timedelta(hours=3, minutes=9)))
    first = backfill(live.uow, live.source, SCOPE, start, end, T)
    assert first.pages >= 3 and first.written == 2161 - 10
    assert [(g.first, g.count) for g in first.gaps] == [(start + timedelta(hours=3), 10)]
    assert fake.count("/api/v3/klines") == first.pages

    fake.gaps.clear()  # the exchange serves the missing minutes again
    repair = backfill(live.uow, live.source, SCOPE, start, end, T)
    assert repair.written == 10 and repair.gaps == []
    assert backfill(live.uow, live.source, SCOPE, start, end, T).written == 0


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("451", FeedPermanentError, "BINANCE_API_URL"),
        ("401", FeedPermanentError, "Binance"),
        ("invalid_symbol", FeedPermanentError, "FEED_SUBJECTS"),
        ("500", FeedUnavailable, "failed on its side"),
        ("malformed", FeedUnavailable, "Binance"),
    ],
)
def test_a_failing_upstream_writes_nothing(live, fake, fault, error, message) -> None:
    fake.fail_next(fault, times=10)
    with pytest.raises(error, match=message):
        ingest_scope(live.uow, live.source, SCOPE, T, live.settings)
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(FeedRecord)).one() == 0
    assert state(live.engine) is None


def test_transient_failure_then_success_is_retried_inside_the_call(live, fake) -> None:
    fake.fail_next("500", times=1)
    result = ingest_scope(live.uow, live.source, SCOPE, T, live.settings)
    assert result.written > 0


def test_every_configured_source_and_subject_is_a_scope(make_runtime, fake) -> None:
    rt = make_runtime(
        feed_source="binance,pyth", feed_subjects="BTC,ETH", feed_granularity="1m", binance_api_url=fake.url
    )
    assert [s.key for s in feed_scopes(rt.settings)] == [
        "binance:BTC:candle:1m",
        "binance:ETH:candle:1m",
        "pyth:BTC:candle:1m",
        "pyth:ETH:candle:1m",
    ]


def test_pyth_candles_and_ticks_ingest_from_the_local_hermes_and_benchmarks(make_runtime) -> None:
    from coordinator_core.clock import SystemClock
    from tests.doubles.pyth_server import FakePyth

    with FakePyth(api_key="secret") as fake:
        rt = make_runtime(
            feed_source="pyth",
            feed_granularity="1m",
            pyth_hermes_url=fake.url,
            pyth_benchmarks_url=fake.url,
            pyth_api_key="secret",
            feed_backfill_minutes=60,
        )
        now = SystemClock().now()
        candles = FeedScope("pyth", "BTC", "candle", "1m")
        result = ingest_scope(rt.uow, rt.source, candles, now, rt.settings)
        rows = stored(rt.engine)
        assert result.written == len(rows) >= 120  # the model window of 1-minute bars
        assert all(r.final for r in rows.values() if r.ts_event < now - timedelta(minutes=1, seconds=5))
        assert all(auth == "Bearer secret" for auth in (req.headers.get("Authorization") for req in fake.requests))

        ticks = FeedScope("pyth", "BTC", "tick", "1s")
        ingest_scope(rt.uow, rt.source, ticks, now, rt.settings)  # history: minute closes
        # the double stamps publish_time (whole seconds) when it answers, after `later` is read: a second
        # boundary between the two would put the answer past the window's end, which the source rightly
        # drops; a window ending a second later keeps the test off that race
        later = SystemClock().now() + timedelta(seconds=1)
        ingest_scope(rt.uow, rt.source, ticks, later, rt.settings)  # now live: Hermes latest
        with Session(rt.engine) as session:
            newest = session.exec(
                select(FeedRecord).where(FeedRecord.kind == "tick").order_by(FeedRecord.ts_event.desc())
            ).first()
        assert newest.meta_jsonb["endpoint"] == "hermes_latest" and newest.final
        assert newest.values_jsonb["price"] > 0 and "conf" in newest.values_jsonb
