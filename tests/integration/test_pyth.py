"""The Pyth source against a real local HTTP server (tests/doubles/pyth_server.py), no database.

The source and the fake share one frozen clock (``NOW``), so "the present", open candles and
finality are deterministic. Waits between retries are recorded, never slept.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from coordinator_core.clock import VirtualClock
from coordinator_core.config import Settings
from coordinator_core.errors import FeedPermanentError, FeedUnavailable, RateLimited
from coordinator_core.feeds.base import FeedScope, FeedSource, SourceRecord
from coordinator_core.feeds.pyth import (
    FINALITY_LAG_SECONDS,
    PythSource,
    _retry_after,
    decode_tv_history,
    find_parsed,
    parsed_to_record,
)
from coordinator_core.feeds.registry import create_source
from tests.doubles.pyth_server import BTC_ID, ETH_ID, WRONG_BTC_ID, FakePyth

NOW = datetime(2026, 11, 29, 12, 0, 30, tzinfo=UTC)
T_NOW = int(NOW.timestamp())
MINUTE = timedelta(minutes=1)
SourceFactory = Callable[..., tuple[PythSource, list[float]]]


def scope(kind: str = "candle", granularity: str = "1m", subject: str = "BTC") -> FeedScope:
    return FeedScope("pyth", subject, kind, granularity)


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@pytest.fixture
def fake() -> Iterator[FakePyth]:
    with FakePyth(now=NOW.timestamp(), history_days=2) as server:
        yield server


@pytest.fixture
def make_source(fake: FakePyth) -> Iterator[SourceFactory]:
    """``make_source(**settings)`` -> (source on the fake, the list of waits it asked for)."""
    made: list[PythSource] = []

    def factory(
        server: FakePyth | None = None, clock: VirtualClock | None = None, **overrides: object
    ) -> tuple[PythSource, list[float]]:
        url = (server or fake).url
        values: dict[str, object] = {
            "pyth_hermes_url": url,
            "pyth_benchmarks_url": url,
            "pyth_api_key": None,
            "feed_max_retries": 3,
            "feed_http_timeout_seconds": 5.0,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
        waits: list[float] = []
        source = PythSource.from_settings(settings, sleep=waits.append, clock=clock or VirtualClock(NOW))
        made.append(source)
        return source, waits

    yield factory
    for source in made:
        source.close()


def assert_window(records: list[SourceRecord], start: datetime, end: datetime) -> None:
    stamps = [r.ts_event for r in records]
    assert stamps == sorted(set(stamps)), "ascending, unique"
    assert all(start <= ts <= end for ts in stamps)
    assert all(ts.tzinfo is not None and ts.utcoffset() == timedelta(0) for ts in stamps)


# -- configuration -----------------------------------------------------------------------------------


def test_default_feed_ids_are_the_real_pyth_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTH_FEED_IDS", raising=False)
    ids = Settings(_env_file=None).feed_ids
    assert ids == {
        "BTC": "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",
        "ETH": "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace",
    }
    assert WRONG_BTC_ID not in ids.values()  # F1: the id of the 0.1.x lineage


def test_registry_builds_a_live_pyth_source(fake: FakePyth) -> None:
    settings = Settings(_env_file=None, feed_source="pyth", pyth_hermes_url=fake.url, pyth_benchmarks_url=fake.url)
    source = create_source("pyth", settings)
    try:
        assert isinstance(source, PythSource) and isinstance(source, FeedSource)
        assert (source.name, source.live, source.page_limit) == ("pyth", True, 1440)
    finally:
        source.close()  # type: ignore[attr-defined]


# -- live ticks (Hermes latest) ----------------------------------------------------------------------


def test_latest_tick_decodes_price_conf_expo_exactly(fake: FakePyth, make_source: SourceFactory) -> None:
    publish_time = T_NOW - 10
    fake.pin_latest(BTC_ID, price="6140993501000", conf="2735612345", expo=-8, publish_time=publish_time)
    source, _ = make_source()
    [record] = source.fetch(scope("tick"), NOW - timedelta(seconds=60), NOW)
    assert record.ts_event == at(publish_time)  # the event time, not the local clock
    assert record.values == {"price": 61409.93501, "conf": 27.35612345}
    assert record.meta["feed_id"] == BTC_ID
    assert (record.meta["expo"], record.meta["price_raw"], record.meta["conf_raw"]) == (
        -8,
        "6140993501000",
        "2735612345",
    )
    assert record.meta["publish_time"] == publish_time
    assert record.final  # 10 s old, past the finality lag
    [request] = fake.requests
    assert request.path == "/v2/updates/price/latest"
    assert request.query == {"ids[]": [BTC_ID], "parsed": ["true"]}


def test_latest_tick_honours_a_non_default_expo(fake: FakePyth, make_source: SourceFactory) -> None:
    fake.pin_latest(ETH_ID, price="333412845", conf="16520", expo=-5, publish_time=T_NOW - 2)
    source, _ = make_source()
    [record] = source.fetch(scope("tick", subject="ETH"), NOW - timedelta(seconds=30), NOW)
    assert record.values == {"price": 3334.12845, "conf": 0.1652}
    assert record.meta["expo"] == -5
    assert record.final  # a Hermes update never changes once published


def test_fresh_latest_tick_agrees_with_the_history(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    [tick] = source.fetch(scope("tick"), NOW - timedelta(seconds=30), NOW)
    assert tick.ts_event == at(T_NOW) and tick.final
    assert tick.values["price"] == fake.price(BTC_ID, T_NOW)
    candles = source.fetch(scope("candle"), NOW - 2 * MINUTE, NOW)
    assert candles[-1].ts_event == at(T_NOW // 60 * 60) and not candles[-1].final
    assert candles[-1].values["close"] == tick.values["price"]  # the open bar closes at the latest price


def test_latest_tick_outside_the_window_is_not_returned(
    fake: FakePyth, make_source: SourceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    source, _ = make_source()
    fake.pin_latest(BTC_ID, price="6140993501000", conf="1", expo=-8, publish_time=T_NOW - 90)
    assert source.fetch(scope("tick"), NOW - timedelta(seconds=60), NOW) == []  # nothing new since start
    fake.pin_latest(BTC_ID, price="6140993501000", conf="1", expo=-8, publish_time=T_NOW + 3)
    with caplog.at_level(logging.WARNING):
        assert source.fetch(scope("tick"), NOW - timedelta(seconds=60), NOW) == []
    assert "clock" in caplog.text  # published after the local now: the clock is behind


def test_ids_are_normalised_on_both_sides(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source(pyth_feed_ids=f"btc=0X{BTC_ID.upper()}")
    [record] = source.fetch(scope("tick"), NOW - timedelta(seconds=30), NOW)
    assert record.meta["feed_id"] == BTC_ID
    assert fake.requests[0].query["ids[]"] == [BTC_ID]
    entry = find_parsed({"parsed": [{"id": "0x" + ETH_ID.upper(), "price": {}}]}, ETH_ID)
    assert entry["id"] == "0x" + ETH_ID.upper()


def test_hermes_base_url_may_carry_a_path(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source(pyth_hermes_url=fake.url + "/hermes")  # the upgraded host's layout
    assert len(source.fetch(scope("tick"), NOW - timedelta(seconds=30), NOW)) == 1
    assert fake.requests[0].path == "/hermes/v2/updates/price/latest"


# -- history: candles --------------------------------------------------------------------------------


def test_candles_page_by_day_and_mark_the_open_bucket(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    start, end = NOW - timedelta(days=2), NOW
    pages, cursor = [], start
    while cursor <= end:
        page = source.fetch(scope("candle"), cursor, end)
        assert len(page) <= source.page_limit
        assert_window(page, cursor, end)
        pages.append(page)
        if len(page) < source.page_limit:
            break
        cursor = page[-1].ts_event + MINUTE
    records = [r for page in pages for r in page]
    assert [len(p) for p in pages] == [1440, 1440]  # then the cursor passes the end
    assert fake.count("benchmarks") == 2 and fake.count() == 2  # one upstream request per fetch
    first = (T_NOW - 2 * 86_400) // 60 * 60 + 60
    assert [int(r.ts_event.timestamp()) for r in records] == list(range(first, T_NOW // 60 * 60 + 1, 60))
    assert [r.final for r in records] == [True] * 2879 + [False]  # the 12:00 bucket is still open
    for r in records:
        v = r.values
        assert set(v) == {"open", "high", "low", "close", "volume"}
        assert v["low"] <= min(v["open"], v["close"]) <= max(v["open"], v["close"]) <= v["high"]
        assert r.meta["symbol"] == "Crypto.BTC/USD" and r.meta["resolution"] == "1"
    query = fake.requests[0].query
    assert query["symbol"] == ["Crypto.BTC/USD"] and query["resolution"] == ["1"]
    assert query["from"] == [str(first)] and query["to"] == [str(first + 1439 * 60 + 1)]


def test_a_just_closed_candle_waits_for_the_finality_lag(make_source: SourceFactory) -> None:
    now = NOW.replace(second=3)  # 12:00:03: the 11:59 bucket closed 3 s ago
    with FakePyth(now=now.timestamp(), history_days=1) as server:
        source, _ = make_source(server=server, clock=VirtualClock(now))
        records = source.fetch(scope("candle"), now - 3 * MINUTE, now)
    assert [(r.ts_event.minute, r.final) for r in records] == [(58, True), (59, False), (0, False)]
    assert FINALITY_LAG_SECONDS > 3


@pytest.mark.parametrize(
    ("granularity", "resolution"),
    [
        ("1m", "1"),
        ("5m", "5"),
        ("15m", "15"),
        ("30m", "30"),
        ("1h", "60"),
        ("4h", "240"),
        ("1d", "1D"),
    ],
)
def test_candle_resolution_follows_the_granularity(
    fake: FakePyth, make_source: SourceFactory, granularity: str, resolution: str
) -> None:
    step = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14_400, "1d": 86_400}[granularity]
    source, _ = make_source()
    start = NOW - timedelta(seconds=3 * step)
    records = source.fetch(scope("candle", granularity), start, NOW)
    assert fake.requests[0].query["resolution"] == [resolution]
    assert records and all(int(r.ts_event.timestamp()) % step == 0 for r in records)
    assert_window(records, start, NOW)
    assert records[-1].ts_event == at(T_NOW // step * step) and not records[-1].final
    assert all(r.final for r in records[:-1])


@pytest.mark.parametrize("granularity", ["1s", "3m", "7m"])
def test_unsupported_candle_granularity_is_permanent(
    fake: FakePyth, make_source: SourceFactory, granularity: str
) -> None:
    source, _ = make_source()
    with pytest.raises(FeedPermanentError, match="FEED_GRANULARITY"):
        source.fetch(scope("candle", granularity), NOW - timedelta(hours=1), NOW)
    assert fake.count() == 0


def test_unknown_kind_is_permanent(make_source: SourceFactory) -> None:
    source, _ = make_source()
    with pytest.raises(FeedPermanentError, match="FEED_KIND"):
        source.fetch(scope("orderbook"), NOW - timedelta(hours=1), NOW)


def test_limit_bounds_the_page(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    records = source.fetch(scope("candle"), NOW - timedelta(hours=2), NOW, limit=5)
    assert len(records) == 5
    query = fake.requests[0].query
    assert int(query["to"][0]) - int(query["from"][0]) == 4 * 60 + 1
    assert source.fetch(scope("candle"), NOW - timedelta(hours=2), NOW, limit=0) == []
    assert source.fetch(scope("candle"), NOW, NOW - MINUTE) == []  # empty window
    assert fake.count() == 1


def test_no_data_is_an_empty_page(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    before_history = at(fake.history_start) - timedelta(days=3)
    assert source.fetch(scope("candle"), before_history, before_history + timedelta(hours=1)) == []
    assert source.fetch(scope("tick", "1m"), before_history, before_history + timedelta(hours=1)) == []
    assert fake.count("benchmarks") == 2


def test_a_gap_stays_a_gap(fake: FakePyth, make_source: SourceFactory) -> None:
    gap_start = T_NOW // 3600 * 3600 - 3600  # 11:00
    fake.add_gap(gap_start, gap_start + 9 * 60)  # 11:00 .. 11:09 have no data upstream
    source, _ = make_source()
    start, end = at(gap_start - 300), at(gap_start + 900)
    candles = source.fetch(scope("candle"), start, end)
    minutes = [int(r.ts_event.timestamp()) for r in candles]
    expected = [t for t in range(gap_start - 300, gap_start + 901, 60) if not gap_start <= t <= gap_start + 540]
    assert minutes == expected  # nothing forward-filled
    ticks = source.fetch(scope("tick", "1m"), start, end)
    bar_opens = [t for t in range(gap_start - 360, gap_start + 841, 60) if not gap_start <= t <= gap_start + 540]
    assert [int(r.ts_event.timestamp()) - 60 for r in ticks] == bar_opens  # a tick closes each bar that exists
    assert source.fetch(scope("candle"), at(gap_start), at(gap_start + 540)) == []  # a page inside the gap


# -- history: ticks ----------------------------------------------------------------------------------


def test_past_ticks_are_minute_closes_at_close_time(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    start, end = NOW - timedelta(minutes=30), NOW - timedelta(minutes=10)
    ticks = source.fetch(scope("tick", "1m"), start, end)
    assert_window(ticks, start, end)
    assert [r.ts_event for r in ticks] == [at(T_NOW // 60 * 60 - 60 * k) for k in range(29, 9, -1)]
    assert fake.requests[0].query["resolution"] == ["1"] and fake.count("hermes") == 0
    candles = {r.ts_event: r for r in source.fetch(scope("candle"), start - MINUTE, end)}
    for tick in ticks:
        assert set(tick.values) == {"price"}  # the shim has no confidence interval
        assert tick.values["price"] == candles[tick.ts_event - MINUTE].values["close"]
        assert tick.values["price"] == fake.price(BTC_ID, int(tick.ts_event.timestamp()) - 1)  # last second of the bar
        assert tick.final and tick.meta["endpoint"] == "benchmarks_tv_close"


def test_hourly_past_ticks_sit_on_the_hour_grid(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    start, end = NOW - timedelta(hours=6), NOW - timedelta(hours=1)
    ticks = source.fetch(scope("tick", "1h"), start, end)
    hour = T_NOW // 3600 * 3600
    assert [r.ts_event for r in ticks] == [at(hour - 3600 * k) for k in range(5, 0, -1)]
    assert fake.requests[0].query["resolution"] == ["60"]


def test_tick_backfill_pages_into_the_live_tick(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    start = NOW - timedelta(minutes=10)
    history = source.fetch(scope("tick", "1m"), start, NOW)
    assert [r.meta["endpoint"] for r in history] == ["benchmarks_tv_close"] * 10
    assert history[-1].ts_event == at(T_NOW // 60 * 60)
    live = source.fetch(scope("tick", "1m"), history[-1].ts_event + timedelta(microseconds=1), NOW)
    assert [(r.ts_event, r.meta["endpoint"]) for r in live] == [(at(T_NOW), "hermes_latest")]
    assert (fake.count("benchmarks"), fake.count("hermes")) == (1, 1)
    ahead = source.fetch(scope("tick", "1m"), start, NOW + timedelta(minutes=10))  # an end in the future
    assert [r.ts_event for r in ahead] == [r.ts_event for r in history]  # the open bar has no close yet


def test_records_always_fall_inside_the_window(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    rng = random.Random(3)
    for _ in range(12):
        kind, granularity = rng.choice([("candle", "1m"), ("candle", "5m"), ("tick", "1m"), ("tick", "1s")])
        end = NOW - timedelta(seconds=rng.choice([0, 0, 7, 95, 3600]) + rng.random())
        start = end - timedelta(seconds=rng.uniform(1, 7200))
        records = source.fetch(scope(kind, granularity), start, end)
        assert_window(records, start, end)
        assert len(records) <= source.page_limit


# -- failures: permanent -----------------------------------------------------------------------------


def test_subject_without_feed_id_is_permanent(fake: FakePyth, make_source: SourceFactory) -> None:
    source, _ = make_source()
    for kind in ("tick", "candle"):
        with pytest.raises(FeedPermanentError, match="PYTH_FEED_IDS.*'SOL'"):
            source.fetch(scope(kind, subject="SOL"), NOW - MINUTE, NOW)
    assert fake.count() == 0


def test_unknown_feed_id_404_is_permanent_and_names_the_id(fake: FakePyth, make_source: SourceFactory) -> None:
    source, waits = make_source(pyth_feed_ids=f"BTC=0x{WRONG_BTC_ID}")
    with pytest.raises(FeedPermanentError) as info:
        source.fetch(scope("tick"), NOW - MINUTE, NOW)
    assert WRONG_BTC_ID in str(info.value) and "PYTH_FEED_IDS" in str(info.value)
    assert "Price ids not found" in str(info.value)
    assert fake.count() == 1 and waits == []  # not retried


def test_api_key_is_sent_as_bearer_to_both_hosts(make_source: SourceFactory) -> None:
    with FakePyth(now=NOW.timestamp(), history_days=1, api_key="s3cret") as server:
        source, _ = make_source(server=server, pyth_api_key="s3cret")
        assert len(source.fetch(scope("tick"), NOW - MINUTE, NOW)) == 1
        assert len(source.fetch(scope("candle"), NOW - 5 * MINUTE, NOW)) == 5  # 11:56 .. 12:00
        assert {r.endpoint for r in server.requests} == {"hermes", "benchmarks"}
        assert all(r.headers.get("Authorization") == "Bearer s3cret" for r in server.requests)


@pytest.mark.parametrize("key", [None, "wrong"])
def test_missing_or_wrong_api_key_is_permanent(make_source: SourceFactory, key: str | None) -> None:
    with FakePyth(now=NOW.timestamp(), history_days=1, api_key="s3cret") as server:
        source, waits = make_source(server=server, pyth_api_key=key)
        for kind in ("tick", "candle"):
            with pytest.raises(FeedPermanentError, match=r"PYTH_API_KEY.*2026-08-26"):
                source.fetch(scope(kind), NOW - MINUTE, NOW)
        assert server.count() == 2 and waits == []
        if key is None:
            assert all("Authorization" not in r.headers for r in server.requests)


def test_benchmarks_error_naming_the_symbol_is_permanent(fake: FakePyth, make_source: SourceFactory) -> None:
    source, waits = make_source(pyth_feed_ids=f"BTC={BTC_ID},DOGE=0x{'ab' * 32}")
    with pytest.raises(FeedPermanentError, match=r"Crypto\.DOGE/USD"):
        source.fetch(scope("candle", subject="DOGE"), NOW - timedelta(hours=1), NOW)
    assert fake.count() == 1 and waits == []


# -- failures: transient -----------------------------------------------------------------------------


def test_429_honours_retry_after(fake: FakePyth, make_source: SourceFactory) -> None:
    fake.fail_next("429", retry_after="7")
    source, waits = make_source()
    assert len(source.fetch(scope("tick"), NOW - MINUTE, NOW)) == 1
    assert fake.count() == 2 and len(waits) == 1 and 7 <= waits[0] <= 7.1


def test_429_retry_after_as_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= _retry_after(format_datetime(when, usegmt=True)) <= 30
    assert _retry_after("garbage") == 60.0


def test_429_without_retry_after_waits_the_60s_penalty(fake: FakePyth, make_source: SourceFactory) -> None:
    fake.fail_next("429", endpoint="benchmarks")
    source, waits = make_source()
    assert len(source.fetch(scope("candle"), NOW - 5 * MINUTE, NOW)) == 5
    assert len(waits) == 1 and 60 <= waits[0] <= 60.1


def test_persistent_429_raises_rate_limited(fake: FakePyth, make_source: SourceFactory) -> None:
    fake.fail_next("429", times=10)
    source, waits = make_source(feed_max_retries=3)
    with pytest.raises(RateLimited) as info:
        source.fetch(scope("tick"), NOW - MINUTE, NOW)
    assert info.value.retry_after == 60.0
    assert fake.count() == 3 and len(waits) == 2


@pytest.mark.parametrize("kind", ["tick", "candle"])
def test_5xx_is_retried_then_unavailable(fake: FakePyth, make_source: SourceFactory, kind: str) -> None:
    source, waits = make_source(feed_max_retries=3)
    fake.fail_next("500", times=2)
    assert source.fetch(scope(kind), NOW - MINUTE, NOW)  # third attempt answers
    assert fake.count() == 3 and len(waits) == 2 and all(0 <= w <= 1 for w in waits)
    fake.fail_next("503", times=3)
    with pytest.raises(FeedUnavailable, match="HTTP 503"):
        source.fetch(scope(kind), NOW - MINUTE, NOW)


def test_slow_upstream_times_out_and_is_retried(fake: FakePyth, make_source: SourceFactory) -> None:
    source, waits = make_source(feed_max_retries=2, feed_http_timeout_seconds=0.2)
    fake.fail_next("slow", delay=0.6)
    assert len(source.fetch(scope("tick"), NOW - MINUTE, NOW)) == 1
    assert len(waits) == 1
    fake.fail_next("slow", times=2, delay=0.6)
    with pytest.raises(FeedUnavailable, match=r"no answer within 0\.2 s"):
        source.fetch(scope("candle"), NOW - MINUTE, NOW)


def test_connection_refused_is_unavailable(make_source: SourceFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    source, waits = make_source(pyth_hermes_url=url, pyth_benchmarks_url=url, feed_max_retries=2)
    with pytest.raises(FeedUnavailable, match="ConnectError"):
        source.fetch(scope("tick"), NOW - MINUTE, NOW)
    assert len(waits) == 1


@pytest.mark.parametrize("kind", ["tick", "candle"])
def test_malformed_json_is_unavailable(fake: FakePyth, make_source: SourceFactory, kind: str) -> None:
    fake.fail_next("malformed", times=3)
    source, _ = make_source(feed_max_retries=3)
    with pytest.raises(FeedUnavailable, match="not JSON"):
        source.fetch(scope(kind), NOW - MINUTE, NOW)
    assert fake.count() == 3


def test_response_without_the_feed_never_becomes_a_price(fake: FakePyth, make_source: SourceFactory) -> None:
    fake.fail_next("missing_id", times=3)  # Hermes answers 200 with ETH only
    source, _ = make_source(feed_max_retries=3)
    with pytest.raises(FeedUnavailable, match=f"0x{BTC_ID}.*no price is made up"):
        source.fetch(scope("tick"), NOW - MINUTE, NOW)
    fake.fail_next("missing_id")  # once: the retry gets the real price
    [record] = source.fetch(scope("tick"), NOW - MINUTE, NOW)
    assert record.values["price"] == fake.price(BTC_ID, T_NOW)


@pytest.mark.parametrize(("kind", "message"), [("tick", "publish_time"), ("candle", "'c' array")])
def test_missing_fields_are_unavailable(fake: FakePyth, make_source: SourceFactory, kind: str, message: str) -> None:
    fake.fail_next("missing_field", times=3)
    source, _ = make_source(feed_max_retries=3)
    with pytest.raises(FeedUnavailable, match=message):
        source.fetch(scope(kind), NOW - MINUTE, NOW)


def test_other_benchmarks_errors_are_transient(fake: FakePyth, make_source: SourceFactory) -> None:
    fake.fail_next("tv_error", times=3, errmsg="upstream database timeout")
    source, waits = make_source(feed_max_retries=3)
    with pytest.raises(FeedUnavailable, match="upstream database timeout"):
        source.fetch(scope("candle"), NOW - MINUTE, NOW)
    assert len(waits) == 2


# -- codecs ------------------------------------------------------------------------------------------


def test_tv_history_decoding_edge_cases() -> None:
    body = {
        "s": "ok",
        "t": [120, 60, 60],
        "o": [2.0, 1.0, 1.0],
        "h": [2.0, 1.5, 1.5],
        "l": [1.5, 0.5, 0.5],
        "c": [1.8, 1.2, 1.2],
    }  # unsorted, a duplicate, no "v"
    assert decode_tv_history(body, "Crypto.BTC/USD") == [(60, 1.0, 1.5, 0.5, 1.2, 0.0), (120, 2.0, 2.0, 1.5, 1.8, 0.0)]
    assert decode_tv_history({"s": "no_data", "nextTime": 60}, "X") == []
    assert decode_tv_history({"s": "ok", "t": [], "o": [], "h": [], "l": [], "c": [], "v": []}, "X") == []
    for bad in (
        {"s": "ok", "t": [60], "o": [1.0], "h": [1.0], "l": [1.0], "c": []},
        {"s": "ok", "t": [60], "o": [None], "h": [1.0], "l": [1.0], "c": [1.0]},
        {"s": "ok", "t": ["60"], "o": [1.0], "h": [1.0], "l": [1.0], "c": [1.0]},
        {"s": "ok", "t": [60], "o": [0.0], "h": [1.0], "l": [0.0], "c": [1.0]},
        {"s": "weird"},
        [1, 2],
    ):
        with pytest.raises(FeedUnavailable):
            decode_tv_history(bad, "X")
    with pytest.raises(FeedPermanentError):
        decode_tv_history({"s": "error", "errmsg": "Unknown symbol Crypto.FOO/USD"}, "Crypto.FOO/USD")


@pytest.mark.parametrize(
    "price",
    [
        {"price": "61409.9", "conf": "1", "expo": -8, "publish_time": 1},
        {"price": "0", "conf": "1", "expo": -8, "publish_time": 1},
        {"price": "-5", "conf": "1", "expo": -8, "publish_time": 1},
        {"price": "6140993501000", "conf": "1", "expo": "-8", "publish_time": 1},
        {"price": "6140993501000", "expo": -8, "publish_time": 1},
        {"price": 6.1, "conf": "1", "expo": -8, "publish_time": 1},
    ],
)
def test_unusable_hermes_prices_are_refused(price: dict) -> None:
    with pytest.raises(FeedUnavailable):
        parsed_to_record({"id": BTC_ID, "price": price}, "BTC", NOW)


def test_hermes_body_without_parsed_is_refused() -> None:
    with pytest.raises(FeedUnavailable, match="parsed"):
        find_parsed({"binary": {"encoding": "hex", "data": []}}, BTC_ID)
    record = parsed_to_record(
        {"id": BTC_ID, "price": {"price": "12345678901234567", "conf": "0", "expo": -8, "publish_time": 1_700_000_000}},
        "BTC",
        NOW,
    )
    assert record.values["price"] == 123456789.01234567 and record.meta["price_raw"] == "12345678901234567"
    assert "slot" not in record.meta  # metadata is optional
