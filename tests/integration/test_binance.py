"""BinanceSource against a real local HTTP server speaking Binance's REST API (tests/doubles).

No database and no mocks of the client: python-binance builds real URLs and parses real answers.
Waits are recorded by a fake clock instead of slept.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from coordinator_core.config import load_settings
from coordinator_core.errors import (
    ConfigurationError,
    FeedPermanentError,
    FeedUnavailable,
    RateLimited,
)
from coordinator_core.feeds.base import FeedScope, FeedSource
from coordinator_core.feeds.binance import BinanceSource, symbol_for
from coordinator_core.feeds.registry import create_source
from tests.doubles.binance_server import FakeBinance

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 3, 1, 12, 0, 30, tzinfo=UTC)  # the fake exchange's clock (well after T0)
ATTEMPTS = 3
BTC_1M = FeedScope("binance", "BTC", "candle", "1m")
BTC_1S = FeedScope("binance", "BTC", "candle", "1s")
BTC_TICK = FeedScope("binance", "BTC", "tick", "1s")


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class FakeTime:
    """Epoch-seconds clock that only moves when slept on; records every wait."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture()
def fake():
    with FakeBinance(seed=11, now_ms=ms(NOW)) as server:
        yield server


@pytest.fixture()
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture()
def source(fake: FakeBinance, clock: FakeTime) -> BinanceSource:
    return BinanceSource(fake.url, timeout_seconds=2.0, max_retries=ATTEMPTS, sleep=clock.sleep, clock=clock.time)


def impatient(fake: FakeBinance, clock: FakeTime) -> BinanceSource:
    """A source with a short HTTP timeout, for the slow-answer tests."""
    return BinanceSource(fake.url, timeout_seconds=0.3, max_retries=ATTEMPTS, sleep=clock.sleep, clock=clock.time)


def expected_candle(fake: FakeBinance, interval: str, open_ms: int) -> dict[str, float]:
    row = fake.kline("BTCUSDT", interval, open_ms)
    return {
        "open": float(row[1]),
        "high": float(row[2]),
        "low": float(row[3]),
        "close": float(row[4]),
        "volume": float(row[5]),
    }


def page_all(source: BinanceSource, scope: FeedScope, start: datetime, end: datetime, step: timedelta) -> list:
    """What the ingestion layer does: one page per fetch, resume after the last record, stop on an empty page."""
    out = []
    while start <= end:
        page = source.fetch(scope, start, end)
        if not page:
            break
        out.extend(page)
        start = page[-1].ts_event + step
    return out


# construction and configuration ---------------------------------------------------------------


def test_from_settings_points_python_binance_at_the_configured_url_without_pinging(fake: FakeBinance) -> None:
    settings = load_settings(
        feed_source="binance", binance_api_url=fake.url + "/api/", feed_http_timeout_seconds=2.5, feed_max_retries=4
    )
    source = create_source("binance", settings)
    assert isinstance(source, BinanceSource) and isinstance(source, FeedSource)
    assert (source.name, source.page_limit, source.live) == ("binance", 1000, True)
    assert source._client.API_URL == fake.url + "/api"
    assert source._client._requests_params == {"timeout": 2.5} and source.backoff.attempts == 4
    assert fake.count() == 0  # the constructor did not ping anything
    assert len(source.fetch(BTC_1M, T0, T0 + timedelta(minutes=4))) == 5
    assert fake.requests[0][0] == "/api/v3/klines"


def test_subject_to_symbol_map() -> None:
    assert (symbol_for("BTC"), symbol_for("eth"), symbol_for("SOL")) == ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def test_eth_is_fetched_as_ethusdt(fake: FakeBinance, source: BinanceSource) -> None:
    records = source.fetch(FeedScope("binance", "ETH", "candle", "1h"), T0, T0 + timedelta(hours=2))
    assert fake.requests[-1][1]["symbol"] == "ETHUSDT"
    assert [r.meta["symbol"] for r in records] == ["ETHUSDT"] * 3
    assert records[0].values["close"] == float(fake.kline("ETHUSDT", "1h", ms(T0))[4])


def test_bad_base_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="BINANCE_API_URL"):
        BinanceSource("api.binance.com")


# candles ---------------------------------------------------------------------------------------


def test_a_page_of_1m_klines_decodes_to_the_generator_values(fake: FakeBinance, source: BinanceSource) -> None:
    records = source.fetch(BTC_1M, T0, T0 + timedelta(days=2))
    assert len(records) == 1000  # one upstream page, the maximum
    path, query = fake.requests[-1]
    assert path == "/api/v3/klines"
    assert query == {
        "symbol": "BTCUSDT",
        "interval": "1m",
        "startTime": str(ms(T0)),
        "endTime": str(ms(T0 + timedelta(days=2))),
        "limit": "1000",
    }
    for i, record in enumerate(records):
        open_ms = ms(T0) + i * 60_000
        assert record.ts_event == T0 + timedelta(minutes=i) and record.ts_event.tzinfo is not None
        assert record.values == expected_candle(fake, "1m", open_ms)
        assert record.final is True
        row = fake.kline("BTCUSDT", "1m", open_ms)
        assert record.meta["symbol"] == "BTCUSDT" and record.meta["close_time"] == open_ms + 59_999 == row[6]
        assert record.meta["quote_volume"] == float(row[7]) and record.meta["trades"] == row[8]


def test_limit_and_range_are_respected(fake: FakeBinance, source: BinanceSource) -> None:
    records = source.fetch(BTC_1M, T0 + timedelta(seconds=1), T0 + timedelta(hours=1), limit=10)
    assert len(records) == 10 and fake.requests[-1][1]["limit"] == "10"
    assert records[0].ts_event == T0 + timedelta(minutes=1)  # open times >= start only
    assert len(source.fetch(BTC_1M, T0, T0 + timedelta(days=3), limit=5000)) == 1000
    assert fake.requests[-1][1]["limit"] == "1000"
    before = fake.count()
    assert source.fetch(BTC_1M, T0, T0 - timedelta(minutes=1)) == []
    assert fake.count() == before  # an empty range costs no request
    with pytest.raises(ValueError, match="timezone-aware"):
        source.fetch(BTC_1M, datetime(2025, 1, 1), T0)


def test_1s_klines(fake: FakeBinance, source: BinanceSource) -> None:
    records = source.fetch(BTC_1S, T0, T0 + timedelta(minutes=5))
    assert fake.requests[-1][1]["interval"] == "1s"
    assert len(records) == 301
    assert [r.ts_event for r in records] == [T0 + timedelta(seconds=i) for i in range(301)]
    assert all(r.values == expected_candle(fake, "1s", ms(r.ts_event)) for r in records)
    assert all(r.meta["close_time"] == ms(r.ts_event) + 999 and r.final for r in records)


def test_a_granularity_binance_lacks_is_permanent(fake: FakeBinance, source: BinanceSource) -> None:
    with pytest.raises(FeedPermanentError, match="FEED_GRANULARITY.*'5s'"):
        source.fetch(FeedScope("binance", "BTC", "candle", "5s"), T0, T0 + timedelta(minutes=1))
    assert fake.count() == 0


def test_paging_30_days_of_1m_moves_forward_without_gaps_or_duplicates(
    fake: FakeBinance, source: BinanceSource
) -> None:
    gap_start, gap_end = T0 + timedelta(days=3, hours=4), T0 + timedelta(days=3, hours=4, minutes=29)
    fake.add_gap("BTCUSDT", "1m", ms(gap_start), ms(gap_end))
    end = T0 + timedelta(days=30) - timedelta(minutes=1)
    started = time.perf_counter()
    records = page_all(source, BTC_1M, T0, end, timedelta(minutes=1))
    elapsed = time.perf_counter() - started
    times = [r.ts_event for r in records]
    expected = [T0 + timedelta(minutes=i) for i in range(43_200)]
    assert times == [t for t in expected if not gap_start <= t <= gap_end]  # ascending, no dup, only the real gap
    assert len(records) == 43_200 - 30
    assert fake.count("/api/v3/klines") == 44  # 43,170 rows / 1000 per page
    starts = [int(q["startTime"]) for p, q in fake.requests]
    assert starts == sorted(set(starts))
    assert records[-1].values == expected_candle(fake, "1m", ms(end))
    assert elapsed < 20


def test_the_open_candle_is_not_final_until_the_exchange_clock_passes_its_close(
    fake: FakeBinance, source: BinanceSource
) -> None:
    open_minute = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # NOW is 12:00:30
    first = source.fetch(BTC_1M, open_minute - timedelta(minutes=10), open_minute + timedelta(hours=1))
    assert [r.ts_event for r in first][-1] == open_minute  # nothing after the open candle
    assert [r.final for r in first] == [True] * 10 + [False]
    second = source.fetch(BTC_1M, open_minute - timedelta(minutes=10), open_minute + timedelta(hours=1))
    assert second[-1].final is False and second[-1].values["close"] != first[-1].values["close"]  # still moving
    assert second[:-1] == first[:-1]  # closed candles do not change, meta included (idempotent upserts)

    fake.now_ms = ms(open_minute + timedelta(minutes=1, milliseconds=500))
    third = source.fetch(BTC_1M, open_minute - timedelta(minutes=10), open_minute + timedelta(hours=1))
    assert third[-2].ts_event == open_minute and third[-2].final is True
    assert third[-2].values == expected_candle(fake, "1m", ms(open_minute))
    assert third[-1].ts_event == open_minute + timedelta(minutes=1) and third[-1].final is False


def test_finality_asks_the_server_time_when_there_is_no_date_header(clock: FakeTime) -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, 400_000, tzinfo=UTC)
    with FakeBinance(seed=11, now_ms=ms(now), send_date=False) as fake:
        source = BinanceSource(fake.url, 0.5, ATTEMPTS, sleep=clock.sleep, clock=clock.time)
        records = source.fetch(BTC_1S, now - timedelta(seconds=3), now)
        assert [r.final for r in records] == [True, True, False]  # 11:59:58, :59 closed; 12:00:00 open
        assert [p for p, _ in fake.requests] == ["/api/v3/klines", "/api/v3/time"]


# ticks -----------------------------------------------------------------------------------------


def expected_ticks(fake: FakeBinance, start: datetime, end: datetime) -> dict[int, dict]:
    """Last aggregate trade of each millisecond, straight from the generator."""
    last: dict[int, dict] = {}
    counts: dict[int, int] = {}
    for second in range(ms(start) // 1000, ms(end) // 1000 + 1):
        for trade in fake.trades_in_second("BTCUSDT", second):
            if ms(start) <= trade["T"] <= ms(end):
                last[trade["T"]] = trade
                counts[trade["T"]] = counts.get(trade["T"], 0) + 1
    return {t: {**trade, "count": counts[t]} for t, trade in last.items()}


def test_agg_trades_carry_exchange_time_and_collapse_same_millisecond_trades(
    fake: FakeBinance, source: BinanceSource
) -> None:
    end = T0 + timedelta(seconds=60)
    records = source.fetch(BTC_TICK, T0, end)
    path, query = fake.requests[-1]
    assert path == "/api/v3/aggTrades" and query["startTime"] == str(ms(T0)) and "interval" not in query
    expected = expected_ticks(fake, T0, end)
    assert any(t["count"] > 1 for t in expected.values())  # the window does hold same-ms trades
    assert [ms(r.ts_event) for r in records] == sorted(expected)  # exchange times, one per ms, ascending
    for record in records:
        trade = expected[ms(record.ts_event)]
        assert record.values == {"price": float(trade["p"]), "quantity": float(trade["q"])}
        assert record.meta["agg_id"] == trade["a"] and record.meta["trades_in_ms"] == trade["count"]
        assert record.final is True and record.ts_event.year == 2025  # never the local clock


def test_tick_pages_resume_at_last_plus_1ms_without_losing_trades(fake: FakeBinance, source: BinanceSource) -> None:
    end = T0 + timedelta(minutes=3)
    records = []
    start = T0
    while start <= end:
        page = source.fetch(BTC_TICK, start, end, limit=40)
        if not page:
            break
        assert len(page) <= 40
        records.extend(page)
        start = page[-1].ts_event + timedelta(milliseconds=1)
    expected = expected_ticks(fake, T0, end)
    assert [ms(r.ts_event) for r in records] == sorted(expected)
    assert all(r.meta["agg_id"] == expected[ms(r.ts_event)]["a"] for r in records)
    assert all(r.meta["trades_in_ms"] == expected[ms(r.ts_event)]["count"] for r in records)


# failures --------------------------------------------------------------------------------------


def fetch_one(source: BinanceSource) -> list:
    return source.fetch(BTC_1M, T0, T0 + timedelta(minutes=9))


def test_429_waits_at_least_retry_after_then_succeeds(
    fake: FakeBinance, source: BinanceSource, clock: FakeTime
) -> None:
    fake.fail_next("429", retry_after=7)
    records = fetch_one(source)
    assert [r.values for r in records] == [expected_candle(fake, "1m", ms(T0) + i * 60_000) for i in range(10)]
    assert fake.count() == 2 and clock.waits and clock.waits[0] >= 7


def test_429_that_persists_raises_rate_limited(fake: FakeBinance, source: BinanceSource, clock: FakeTime) -> None:
    fake.fail_next("429", times=10, retry_after=3)
    with pytest.raises(RateLimited, match="rate limit.*Retry-After 3 s") as caught:
        fetch_one(source)
    assert caught.value.retry_after == 3
    assert fake.count() == ATTEMPTS and all(w >= 3 for w in clock.waits)


def test_418_ban_stops_calls_until_retry_after(fake: FakeBinance, source: BinanceSource, clock: FakeTime) -> None:
    fake.fail_next("418", times=10, retry_after=7200)
    with pytest.raises(RateLimited, match="banned") as caught:
        fetch_one(source)
    assert fake.count() == 1  # the retries did not knock on a banned door
    assert 0 < caught.value.retry_after <= 7200 and clock.waits
    with pytest.raises(RateLimited):
        fetch_one(source)
    assert fake.count() == 1
    clock.sleep(7200)
    fake.faults.clear()
    assert len(fetch_one(source)) == 10


def test_500_then_success_is_retried(fake: FakeBinance, source: BinanceSource, clock: FakeTime) -> None:
    fake.fail_next("500", times=ATTEMPTS - 1)
    records = fetch_one(source)
    assert len(records) == 10 and fake.count() == ATTEMPTS and len(clock.waits) == ATTEMPTS - 1


def test_timeout_is_retried(fake: FakeBinance, clock: FakeTime) -> None:
    fake.fail_next("slow", delay=3)
    assert len(fetch_one(impatient(fake, clock))) == 10
    assert fake.count() == 2


@pytest.mark.parametrize(
    "kind, error, message, calls",
    [
        ("451", FeedPermanentError, "restricted location: set BINANCE_API_URL=https://data-api.binance.vision", 1),
        ("invalid_symbol", FeedPermanentError, "'BTCUSDT'.*FEED_SUBJECTS", 1),
        ("401", FeedPermanentError, "HTTP 401.*no API key.*BINANCE_API_URL", 1),
        ("403", FeedPermanentError, "HTTP 403.*BINANCE_API_URL", 1),
        ("500", FeedUnavailable, "failed on its side.*HTTP 500", ATTEMPTS),
        ("503_html", FeedUnavailable, "HTTP 503", ATTEMPTS),
        ("slow", FeedUnavailable, "within 0.3 s.*FEED_HTTP_TIMEOUT_SECONDS", ATTEMPTS),
        ("malformed", FeedUnavailable, "not JSON", ATTEMPTS),
        ("wrong_shape", FeedUnavailable, "expected a JSON list", ATTEMPTS),
        ("empty", FeedUnavailable, "expected a JSON list", ATTEMPTS),
        ("drop", FeedUnavailable, "cannot reach", ATTEMPTS),
    ],
)
def test_failures_raise_project_errors_and_return_nothing(
    fake: FakeBinance, clock: FakeTime, kind: str, error: type, message: str, calls: int
) -> None:
    source = impatient(fake, clock)
    fake.fail_next(kind, times=10, delay=3)
    result = None
    with pytest.raises(error, match=message) as caught:
        result = fetch_one(source)
    assert result is None  # nothing fabricated
    if error is FeedPermanentError:
        assert not isinstance(caught.value, FeedUnavailable)
    assert fake.count() == calls  # permanent errors are not retried; transient ones use every attempt


def test_unknown_symbol_from_the_exchange_itself(fake: FakeBinance, source: BinanceSource) -> None:
    with pytest.raises(FeedPermanentError, match="'DOGEXUSDT' for subject 'DOGEX'.*FEED_SUBJECTS"):
        source.fetch(FeedScope("binance", "DOGEX", "candle", "1m"), T0, T0 + timedelta(minutes=1))
    assert fake.count() == 1


def test_unreachable_host_is_unavailable(clock: FakeTime) -> None:
    with FakeBinance() as fake:
        url = fake.url
    source = BinanceSource(url, 0.3, 2, sleep=clock.sleep, clock=clock.time)
    with pytest.raises(FeedUnavailable, match="cannot reach"):
        fetch_one(source)


# weight budget ---------------------------------------------------------------------------------


def test_weight_budget_pauses_until_the_next_minute(fake: FakeBinance, source: BinanceSource, clock: FakeTime) -> None:
    fetch_one(source)
    assert source.used_weight == 2 and clock.waits == []
    fake.used_weight = 3100  # other clients on this IP used most of the minute
    records = fetch_one(source)
    assert len(records) == 10 and source.used_weight == 3102
    assert clock.waits == [30]  # the exchange clock is at :30, the weight window resets at :00
    fake.used_weight = 2000
    fetch_one(source)
    assert clock.waits == [30]
