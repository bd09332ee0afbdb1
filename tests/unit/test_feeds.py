"""Feed sources at source level (no database): the replay of a CSV and the synthetic price."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coordinator_core.config import DEFAULT_REPLAY_PATH
from coordinator_core.errors import DataError
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.feeds.replay import ReplaySource, load_dataset
from coordinator_core.feeds.synthetic import SyntheticSource

HEADER = "ts,open,high,low,close,volume\n"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def replay_scope(kind: str = "candle", subject: str = "BTC") -> FeedScope:
    return FeedScope("replay", subject, kind, "1h")


def as_tuples(records: list[SourceRecord]) -> list[tuple]:
    return [(r.ts_event, r.values, r.final) for r in records]


# -- replay: the shipped dataset ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> ReplaySource:
    return ReplaySource(str(DEFAULT_REPLAY_PATH))


def test_shipped_dataset_span_and_size(shipped: ReplaySource) -> None:
    first, last = shipped.span("BTC")
    assert first == utc(2019, 6, 19, 10)
    assert last == utc(2019, 10, 17, 9)
    frame = shipped.frame("BTC")
    assert frame.height == 2880
    assert (last - first) == timedelta(hours=2879)  # no gaps


def test_fetch_three_hour_window_gives_four_candles(shipped: ReplaySource) -> None:
    records = shipped.fetch(replay_scope(), utc(2019, 10, 1, 0), utc(2019, 10, 1, 3))
    assert [r.ts_event for r in records] == [utc(2019, 10, 1, h) for h in range(4)]
    assert all(r.ts_event.utcoffset() == timedelta(0) for r in records)
    assert records[0].values == {"open": 8304.96, "high": 8330.0, "low": 8212.0, "close": 8222.84, "volume": 527.86}
    assert records[1].values["open"] == 8222.84  # CSV line of 2019-10-01T01:00Z
    assert records[3].values["close"] == 8420.67  # CSV line of 2019-10-01T03:00Z
    assert all(r.final for r in records)


def test_fetch_limit_keeps_the_oldest(shipped: ReplaySource) -> None:
    records = shipped.fetch(replay_scope(), utc(2019, 10, 1, 0), utc(2019, 10, 2, 0), limit=2)
    assert [r.ts_event for r in records] == [utc(2019, 10, 1, 0), utc(2019, 10, 1, 1)]


def test_fetch_outside_the_dataset_is_empty(shipped: ReplaySource) -> None:
    assert shipped.fetch(replay_scope(), utc(2020, 1, 1), utc(2020, 1, 2)) == []


def test_tick_is_the_close_at_close_time(shipped: ReplaySource) -> None:
    # candles 00:00, 01:00, 02:00 close at 01:00, 02:00, 03:00
    records = shipped.fetch(replay_scope("tick"), utc(2019, 10, 1, 1), utc(2019, 10, 1, 3))
    assert [(r.ts_event, r.values) for r in records] == [
        (utc(2019, 10, 1, 1), {"price": 8222.84}),
        (utc(2019, 10, 1, 2), {"price": 8288.8}),
        (utc(2019, 10, 1, 3), {"price": 8433.45}),
    ]


def test_shipped_dataset_refuses_another_subject(shipped: ReplaySource) -> None:
    with pytest.raises(DataError, match="REPLAY_PATH: the shipped dataset is BTC only.*ETH"):
        shipped.fetch(replay_scope(subject="ETH"), utc(2019, 10, 1), utc(2019, 10, 2))


# -- replay: other files ------------------------------------------------------------------------------


def shipped_lines(count: int) -> list[list[str]]:
    with DEFAULT_REPLAY_PATH.open() as handle:
        handle.readline()
        return [handle.readline().strip().split(",") for _ in range(count)]


def write(path: Path, rows: list[list[str]], header: str = HEADER) -> Path:
    path.write_text(header + "".join(",".join(row) + "\n" for row in rows))
    return path


def test_epoch_ms_loads_the_same_as_iso(tmp_path: Path) -> None:
    rows = shipped_lines(24)
    iso = write(tmp_path / "iso.csv", rows)
    epoch_rows = [
        [str(int(datetime.fromisoformat(r[0].replace("Z", "+00:00")).timestamp() * 1000)), *r[1:]] for r in rows
    ]
    assert epoch_rows[0][0] == "1560938400000"
    epoch = write(tmp_path / "epoch.csv", epoch_rows)

    assert load_dataset(epoch).equals(load_dataset(iso))
    start, end = utc(2019, 6, 19, 10), utc(2019, 6, 20, 9)
    from_iso = ReplaySource(str(iso)).fetch(replay_scope(), start, end)
    from_epoch = ReplaySource(str(epoch)).fetch(replay_scope(), start, end)
    assert len(from_iso) == 24
    assert as_tuples(from_epoch) == as_tuples(from_iso)


def test_rows_are_sorted_and_offsets_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.csv",
        [
            ["2019-06-19T13:00:00+02:00", "2", "3", "1", "2.5", "1"],  # = 11:00Z
            ["2019-06-19T10:00:00Z", "1", "2", "0.5", "1.5", "1"],
        ],
    )
    frame = load_dataset(path)
    assert frame["ts"].to_list() == [utc(2019, 6, 19, 10), utc(2019, 6, 19, 11)]
    assert frame["close"].to_list() == [1.5, 2.5]


def test_subject_template_serves_several_files(tmp_path: Path) -> None:
    write(tmp_path / "eth.csv", [["2019-06-19T10:00:00Z", "250", "260", "240", "255", "9"]])
    source = ReplaySource(str(tmp_path / "{subject_lower}.csv"))
    records = source.fetch(replay_scope(subject="ETH"), utc(2019, 6, 19), utc(2019, 6, 20))
    assert [r.values["close"] for r in records] == [255.0]
    with pytest.raises(DataError, match="REPLAY_PATH: dataset .*btc.csv does not exist"):
        source.fetch(replay_scope(subject="BTC"), utc(2019, 6, 19), utc(2019, 6, 20))


def test_missing_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.csv", [["2019-06-19T10:00:00Z", "1", "2", "0.5", "1.5"]], header="ts,open,high,low,close\n"
    )
    with pytest.raises(DataError, match=r"REPLAY_PATH: .*data.csv lacks column\(s\) \['volume'\]"):
        load_dataset(path)


def test_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    rows = shipped_lines(3)
    rows[2][0] = "yesterday"
    path = write(tmp_path / "data.csv", rows)
    with pytest.raises(DataError, match="REPLAY_PATH: .*data.csv line 4: ts 'yesterday' is neither"):
        load_dataset(path)


def test_non_numeric_price_names_the_line_and_column(tmp_path: Path) -> None:
    rows = shipped_lines(3)
    rows[1][4] = "n/a"  # close of the second data row = line 3
    path = write(tmp_path / "data.csv", rows)
    with pytest.raises(DataError, match="REPLAY_PATH: .*data.csv line 3: close 'n/a' is not a number"):
        load_dataset(path)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_price_is_refused(tmp_path: Path, bad: str) -> None:
    rows = shipped_lines(3)
    rows[1][4] = bad
    path = write(tmp_path / "data.csv", rows)
    with pytest.raises(DataError, match="line 3: close"):
        load_dataset(path)


def test_missing_file_names_replay_path(tmp_path: Path) -> None:
    source = ReplaySource(str(tmp_path / "nowhere.csv"))
    with pytest.raises(DataError, match="REPLAY_PATH: dataset .*nowhere.csv does not exist"):
        source.fetch(replay_scope(), utc(2019, 6, 19), utc(2019, 6, 20))


# -- synthetic --------------------------------------------------------------------------------------

DAY = utc(2024, 3, 5)


def syn_scope(granularity: str, kind: str = "candle", subject: str = "BTC") -> FeedScope:
    return FeedScope("synthetic", subject, kind, granularity)


@pytest.fixture(scope="module")
def minute_source() -> SyntheticSource:
    """One source for the 1-second-resolution tests (its day path is cached)."""
    return SyntheticSource(seed=7)


@pytest.fixture(scope="module")
def minute_candles(minute_source: SyntheticSource) -> list[SourceRecord]:
    return minute_source.fetch(syn_scope("1m"), DAY, DAY + timedelta(days=1) - timedelta(minutes=1))


def test_synthetic_is_deterministic_per_seed() -> None:
    start, end = utc(2024, 3, 4), utc(2024, 3, 6, 23)
    first = SyntheticSource(seed=11).fetch(syn_scope("1h"), start, end)
    again = SyntheticSource(seed=11).fetch(syn_scope("1h"), start, end)
    other = SyntheticSource(seed=12).fetch(syn_scope("1h"), start, end)
    assert len(first) == 72
    assert as_tuples(again) == as_tuples(first)
    assert [r.ts_event for r in other] == [r.ts_event for r in first]
    assert [r.values["close"] for r in other] != [r.values["close"] for r in first]


def test_synthetic_subjects_differ() -> None:
    source = SyntheticSource(seed=7)
    btc = source.fetch(syn_scope("1h", subject="BTC"), DAY, DAY + timedelta(hours=5))
    eth = source.fetch(syn_scope("1h", subject="ETH"), DAY, DAY + timedelta(hours=5))
    assert [r.values for r in btc] != [r.values for r in eth]


@pytest.mark.parametrize(("granularity", "step"), [("1m", 60), ("5m", 300), ("1h", 3600), ("1d", 86400)])
def test_synthetic_candles_are_aligned(granularity: str, step: int) -> None:
    start = utc(2024, 3, 5, 10, 17, 33)
    end = start + timedelta(seconds=5 * step)
    records = SyntheticSource(seed=7).fetch(syn_scope(granularity), start, end, limit=5)
    assert len(records) == 5
    first = records[0].ts_event
    assert first >= start
    assert first - start < timedelta(seconds=step)
    for r in records:
        assert int(r.ts_event.timestamp()) % step == 0
    assert [b.ts_event - a.ts_event for a, b in zip(records, records[1:], strict=False)] == [
        timedelta(seconds=step)
    ] * 4


def check_candles(records: list[SourceRecord]) -> None:
    assert records
    for r in records:
        v = r.values
        assert set(v) == {"open", "high", "low", "close", "volume"}
        assert v["high"] >= max(v["open"], v["close"])
        assert v["low"] <= min(v["open"], v["close"])
        assert v["low"] > 0
        assert v["volume"] > 0
    # a candle opens where the previous one closed
    assert all(b.values["open"] == a.values["close"] for a, b in zip(records, records[1:], strict=False))


def test_synthetic_1h_candles_are_valid() -> None:
    records = SyntheticSource(seed=7).fetch(syn_scope("1h"), utc(2024, 3, 4), utc(2024, 3, 7))
    assert len(records) == 73
    check_candles(records)
    assert any(r.values["high"] > max(r.values["open"], r.values["close"]) for r in records)


def test_synthetic_1m_candles_are_valid(minute_candles: list[SourceRecord]) -> None:
    assert len(minute_candles) == 1440
    assert minute_candles[0].ts_event == DAY
    check_candles(minute_candles)


def test_synthetic_1s_ticks(minute_source: SyntheticSource, minute_candles: list[SourceRecord]) -> None:
    start = DAY + timedelta(hours=6)
    ticks = minute_source.fetch(syn_scope("1s", kind="tick"), start, start + timedelta(seconds=120))
    assert [t.ts_event for t in ticks] == [start + timedelta(seconds=s) for s in range(121)]
    assert all(set(t.values) == {"price"} and t.values["price"] > 0 for t in ticks)
    assert len({t.values["price"] for t in ticks}) > 10  # it moves
    # the 1 s price path is the one the 1m candles are built from
    by_ts = {c.ts_event: c.values for c in minute_candles}
    for tick in ticks[::60]:
        assert tick.values["price"] == by_ts[tick.ts_event]["open"]


def test_synthetic_sub_range_matches_a_slice_of_the_same_source(
    minute_source: SyntheticSource, minute_candles: list[SourceRecord]
) -> None:
    start, end = DAY + timedelta(hours=9, minutes=30), DAY + timedelta(hours=11)
    sub = minute_source.fetch(syn_scope("1m"), start, end)
    expected = [c for c in minute_candles if start <= c.ts_event <= end]
    assert len(sub) == 91
    assert as_tuples(sub) == as_tuples(expected)


def test_synthetic_re_ingestion_in_the_same_process_is_idempotent() -> None:
    source = SyntheticSource(seed=7)
    big = source.fetch(syn_scope("1h"), utc(2024, 3, 1), utc(2024, 3, 8))
    start, end = utc(2024, 3, 3, 5), utc(2024, 3, 5, 17)
    sub = source.fetch(syn_scope("1h"), start, end)
    assert len(sub) == 61
    assert as_tuples(sub) == as_tuples([r for r in big if start <= r.ts_event <= end])


def test_synthetic_re_ingestion_after_a_restart_is_idempotent() -> None:
    big = SyntheticSource(seed=7).fetch(syn_scope("1h"), utc(2024, 3, 1), utc(2024, 3, 8))
    start, end = utc(2024, 3, 3, 5), utc(2024, 3, 5, 17)
    sub = SyntheticSource(seed=7).fetch(syn_scope("1h"), start, end)  # a fresh process re-ingests a range
    assert len(sub) == 61
    assert as_tuples(sub) == as_tuples([r for r in big if start <= r.ts_event <= end])


def test_synthetic_1m_returns_have_fat_tails(minute_candles: list[SourceRecord]) -> None:
    closes = [c.values["close"] for c in minute_candles]
    returns = [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False)]
    n = len(returns)
    mean = sum(returns) / n
    m2 = sum((r - mean) ** 2 for r in returns) / n
    m4 = sum((r - mean) ** 4 for r in returns) / n
    excess_kurtosis = m4 / (m2 * m2) - 3.0
    assert m2 > 0
    # a Gaussian walk gives 0 ± ~0.13 over 1439 returns; the Student-t/GARCH walk is far above that
    assert excess_kurtosis > 1.0
