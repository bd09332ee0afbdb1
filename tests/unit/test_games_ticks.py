"""Ticks the way the games send them: the history window first, then only newer points, per model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.errors import DataError
from coordinator_core.feeds.base import SourceRecord
from coordinator_core.games.ticks import (
    HISTORY_SECONDS,
    PricePoint,
    TickCursor,
    build_tick,
    group_by_cursor,
    points_from_records,
)

pytestmark = pytest.mark.filterwarnings("ignore:sorted_dict.iloc is deprecated:DeprecationWarning")

MINUTE, DAY = 60, 86_400
NOW = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())


def candles(subject: str, start: int, end: int, base: float = 100.0) -> list[PricePoint]:
    """1-minute bars with open times in [start, end): the games' (open ts, close) points."""
    return [PricePoint(subject, ts, base + (ts - start) / 3600, ts + MINUTE) for ts in range(start, end, MINUTE)]


def test_the_first_tick_is_the_last_30_days_of_1_minute_prices_observed_by_then() -> None:
    points = candles("BTC", NOW - 35 * DAY, NOW + 10 * MINUTE)

    tick = build_tick(points, as_of=NOW)

    btc = tick.data["BTC"]
    assert len(btc) == 30 * 24 * 60 == 43_200
    assert btc[0][0] == NOW - HISTORY_SECONDS  # the oldest point the games' PriceStore keeps
    assert btc[-1][0] == NOW - MINUTE  # the bar opening at NOW closes at NOW + 60: not known yet
    assert all(type(ts) is int and type(price) is float for ts, price in btc)
    assert [ts for ts, _ in btc] == sorted({ts for ts, _ in btc})
    assert tick.history == {"BTC"} and tick.cursor.to_json() == {"BTC": NOW - MINUTE}


def test_later_ticks_carry_only_points_newer_than_the_model_received() -> None:
    points = candles("BTC", NOW - 2 * DAY, NOW + DAY)
    first = build_tick(points, as_of=NOW)

    second = build_tick(points, as_of=NOW + 5 * MINUTE, cursor=first.cursor)
    third = build_tick(points, as_of=NOW + 5 * MINUTE + 30, cursor=second.cursor)

    assert [ts for ts, _ in second.data["BTC"]] == [NOW + k * MINUTE for k in range(5)]
    assert second.history == frozenset()
    assert not third and third.data == {} and third.cursor == second.cursor  # nothing new: no tick


def test_a_subject_new_to_the_model_gets_its_history_in_the_same_tick() -> None:
    btc = candles("BTC", NOW - 3 * DAY, NOW + DAY)
    first = build_tick(btc, as_of=NOW)
    eth = candles("ETH", NOW - 3 * DAY, NOW + DAY, base=3000.0)

    tick = build_tick([*btc, *eth], as_of=NOW + 2 * MINUTE, cursor=first.cursor)

    assert len(tick.data["BTC"]) == 2
    assert len(tick.data["ETH"]) == 3 * 24 * 60 + 2
    assert tick.history == {"ETH"}
    assert list(tick.data) == ["BTC", "ETH"]


def test_each_model_has_its_own_cursor_and_models_with_the_same_one_share_a_payload() -> None:
    points = candles("BTC", NOW - DAY, NOW + DAY)
    veteran = build_tick(points, as_of=NOW).cursor
    cursors = {"old-1": veteran, "old-2": veteran, "joiner": TickCursor()}

    groups = group_by_cursor(cursors)
    ticks = {cursor: build_tick(points, as_of=NOW + MINUTE, cursor=cursor) for cursor in groups}

    assert groups == {veteran: ["old-1", "old-2"], TickCursor(): ["joiner"]}
    assert len(ticks[veteran].data["BTC"]) == 1
    assert len(ticks[TickCursor()].data["BTC"]) == 24 * 60 + 1


def test_repeated_points_keep_the_last_one_like_the_price_store_and_bad_prices_are_skipped() -> None:
    points = [
        PricePoint("BTC", NOW - 120, 10.0, NOW - 60),
        PricePoint("BTC", NOW - 120, 11.0, NOW - 60),  # same ts again: last wins
        PricePoint("BTC", NOW - 60, float("nan"), NOW),
        PricePoint("BTC", NOW - 60, -1.0, NOW),
        PricePoint("BTC", NOW, 12.0, NOW + 60),  # not observed yet
    ]
    tick = build_tick(points, as_of=NOW)
    assert tick.data == {"BTC": [(NOW - 120, 11.0)]}
    assert tick.skipped == 2


def test_points_from_stored_records_use_the_games_timestamps() -> None:
    at = datetime.fromtimestamp(NOW, UTC)
    candle = SourceRecord(at, {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0})
    open_candle = SourceRecord(at + timedelta(minutes=1), {"close": 9.0}, final=False)
    stored = SimpleNamespace(ts_event=at + timedelta(minutes=2), values_jsonb={"close": 1.7}, final=True)
    trade = SourceRecord(at + timedelta(milliseconds=1500), {"price": 2.5})

    assert points_from_records([candle, open_candle, stored], subject="BTC", kind="candle", granularity_seconds=60) == [
        PricePoint("BTC", NOW, 1.5, NOW + 60),
        PricePoint("BTC", NOW + 120, 1.7, NOW + 180),
    ]
    assert points_from_records([trade], subject="BTC", kind="tick", granularity_seconds=1) == [
        PricePoint("BTC", NOW + 1, 2.5, NOW + 1)
    ]


def test_a_cursor_round_trips_through_json_and_a_bad_one_is_refused() -> None:
    cursor = TickCursor().advanced({"ETH": 5, "BTC": 7})
    assert TickCursor.from_json(json.loads(json.dumps(cursor.to_json()))) == cursor
    assert cursor.advanced({"BTC": 3}).last("BTC") == 7  # never goes back
    for bad in ([1], {"BTC": "7"}, {"BTC": True}, {1: 2}):
        with pytest.raises(DataError):
            TickCursor.from_json(bad)


# -- against the games' own PriceStore ------------------------------------------------------------------
def store_contents(store: object, subject: str) -> list[tuple[int, float]]:
    return list(store.data[subject].items())  # type: ignore[attr-defined]


def test_fed_tick_by_tick_the_games_store_equals_one_fed_everything_and_resending_changes_nothing() -> None:
    from crunch_synth.prices import PriceStore

    points = candles("BTC", NOW - 40 * DAY, NOW + DAY) + candles("SOL", NOW - 2 * DAY, NOW + DAY, base=150.0)
    incremental, cursor = PriceStore(), TickCursor()
    sent = []
    for as_of in [NOW, *(NOW + k * 7 * MINUTE for k in range(1, 40))]:
        tick = build_tick(points, as_of=as_of, cursor=cursor)
        if tick:
            wire = json.loads(json.dumps(tick.data))  # what a model node receives: lists, not tuples
            incremental.add_bulk(wire)
            sent.append(tick)
            cursor = tick.cursor
    whole = PriceStore()
    final = NOW + 39 * 7 * MINUTE
    whole.add_bulk(
        {s: [(p.ts, p.price) for p in points if p.subject == s and p.observed_at <= final] for s in ("BTC", "SOL")}
    )

    for subject in ("BTC", "SOL"):
        assert store_contents(incremental, subject) == store_contents(whole, subject)
    assert incremental.last_timestamp == whole.last_timestamp == final - MINUTE
    before = store_contents(incremental, "BTC")
    incremental.add_bulk(sent[-1].data)  # a re-sent tick (after a timeout) overwrites itself
    assert store_contents(incremental, "BTC") == before


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.lists(st.integers(0, 600), min_size=1, max_size=40, unique=True),
    polls=st.lists(st.integers(0, 700), min_size=1, max_size=25),
    eth_from=st.integers(0, 600),
)
def test_every_observed_point_is_sent_exactly_once(minutes: list[int], polls: list[int], eth_from: int) -> None:
    start = NOW
    points = [PricePoint("BTC", start + m * MINUTE, 1.0 + m, start + (m + 1) * MINUTE) for m in minutes]
    points += [
        PricePoint("ETH", start + m * MINUTE, 2.0 + m, start + (m + 1) * MINUTE) for m in minutes if m >= eth_from
    ]
    cursor, seen = TickCursor(), []
    times = sorted(start + p * MINUTE for p in polls)
    for as_of in times:
        tick = build_tick(points, as_of=as_of, cursor=cursor, history_seconds=10 * DAY)
        for subject, entries in tick.data.items():
            last = cursor.last(subject)
            assert all(last is None or ts > last for ts, _ in entries)
            seen.extend((subject, ts) for ts, _ in entries)
        cursor = tick.cursor
    expected = {(p.subject, p.ts) for p in points if p.observed_at <= times[-1]}
    assert len(seen) == len(set(seen)) and set(seen) == expected
