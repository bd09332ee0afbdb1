"""Replay of a dataset file.

CSV with header ``ts,open,high,low,close,volume`` (extra columns are ignored); one row per candle,
``ts`` the candle's open time as integer epoch milliseconds or ISO-8601 UTC (``Z`` or ``+00:00``).
``REPLAY_PATH`` may contain ``{subject}`` to serve several subjects from several files.
Kind ``candle`` yields the rows; kind ``tick`` yields the close price at the candle's close time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from coordinator_core.config import granularity_seconds
from coordinator_core.errors import DataError
from coordinator_core.feeds.base import FeedScope, SourceRecord

REQUIRED_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def load_dataset(path: Path) -> pl.DataFrame:
    """Read and check a replay CSV; returns columns ts (datetime UTC) + prices, sorted, unique."""
    if not path.exists():
        raise DataError(f"REPLAY_PATH: dataset {path} does not exist")
    try:
        frame = pl.read_csv(path, infer_schema_length=0)  # everything as text, parsed below
    except Exception as exc:
        raise DataError(f"REPLAY_PATH: cannot read {path} as CSV: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"REPLAY_PATH: {path} lacks column(s) {missing}; the header must be {','.join(REQUIRED_COLUMNS)}"
        )
    ts_text = frame["ts"].str.strip_chars()
    is_epoch = ts_text.str.contains(r"^\d+$")
    epoch = pl.Series(ts_text).cast(pl.Int64, strict=False)
    iso = ts_text.str.replace(r"Z$", "+00:00").str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    ts = pl.select(
        pl.when(pl.lit(is_epoch))
        .then(pl.from_epoch(pl.lit(epoch), time_unit="ms").dt.replace_time_zone("UTC"))
        .otherwise(pl.lit(iso))
        .alias("ts")
    ).to_series()
    bad = ts.is_null()
    if bad.any():
        row = int(bad.arg_max() or 0) + 2  # header is line 1
        raise DataError(
            f"REPLAY_PATH: {path} line {row}: ts {ts_text[row - 2]!r} is neither epoch milliseconds nor ISO-8601 UTC"
        )
    prices = {}
    for column in PRICE_COLUMNS:
        values = frame[column].str.strip_chars().cast(pl.Float64, strict=False)
        values = values.set(~values.is_finite().fill_null(False), None)  # nan / inf are not prices
        if values.is_null().any():
            row = int(values.is_null().arg_max() or 0) + 2
            raise DataError(f"REPLAY_PATH: {path} line {row}: {column} {frame[column][row - 2]!r} is not a number")
        prices[column] = values
    data = pl.DataFrame({"ts": ts, **prices}).sort("ts").unique(subset="ts", keep="last", maintain_order=True)
    return data


class ReplaySource:
    """Serves a dataset file as if it were a live feed."""

    name = "replay"
    page_limit = 100_000
    live = False

    def __init__(self, path_template: str) -> None:
        self.path_template = path_template
        self._frames: dict[str, pl.DataFrame] = {}
        self._lock = threading.Lock()

    def frame(self, subject: str) -> pl.DataFrame:
        path = Path(self.path_template.format(subject=subject, subject_lower=subject.lower()))
        key = str(path)
        with self._lock:
            if key not in self._frames:
                self._frames[key] = load_dataset(path)
            return self._frames[key]

    def history_end(self, subject: str) -> datetime | None:
        return self.span(subject)[1]

    def span(self, subject: str) -> tuple[datetime, datetime]:
        """First and last candle open time of the dataset."""
        ts = self.frame(subject)["ts"]
        return ts.min(), ts.max()  # type: ignore[return-value]

    def fetch(self, scope: FeedScope, start: datetime, end: datetime, limit: int | None = None) -> list[SourceRecord]:
        if (
            "{subject" not in self.path_template
            and scope.subject != "BTC"
            and self.path_template.endswith("btc_usd_1h.csv")
        ):
            raise DataError(
                f"REPLAY_PATH: the shipped dataset is BTC only; set REPLAY_PATH to a file for {scope.subject} "
                "(it may contain {subject})"
            )
        step = timedelta(seconds=granularity_seconds(scope.granularity))
        frame = self.frame(scope.subject)
        shift = step if scope.kind == "tick" else timedelta(0)  # a tick is the close, at close time
        window = frame.filter((pl.col("ts") + shift >= start) & (pl.col("ts") + shift <= end))
        if limit is not None:
            window = window.head(limit)
        records = []
        for row in window.iter_rows(named=True):
            ts = row["ts"].astimezone(UTC)
            if scope.kind == "tick":
                records.append(SourceRecord(ts + shift, {"price": row["close"]}))
            else:
                records.append(SourceRecord(ts, {k: row[k] for k in PRICE_COLUMNS}))
        return records
