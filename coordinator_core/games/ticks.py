"""Ticks the way the games send them: ``{asset: [(ts, price), ...]}``, history first, then only what is new.

What the games' own runners send (crunch_synth 0.15.0 and condorgame 0.5.3, read in their source)
-------------------------------------------------------------------------------------------------
* ``TrackerBase.tick(data)`` takes ``PriceData = dict[asset, list[(ts, price)]]``: ``ts`` an int,
  epoch **seconds**; ``price`` a float. Both packages' docstrings: "The first tick is the initial
  state and sends you the last 30 days of data. The resolution of the data is 1 minute"; later
  ticks come "typically every minute or when new data is available", always before a prediction
  request, possibly several between two predictions.
* The prices come from CrunchDAO's price DB as ``list(zip(timestamp, close))`` of 1-minute bars:
  ``ts`` is the bar's **open** time and ``price`` its close, known one minute after ``ts``
  (``synth_score.evaluate_synth_score`` feeds a bar once ``ts + 60 <= request time``).
* The packages' local runners: the example ``__main__`` loops tick ``{asset: 30 days of history}``
  once, then one point at a time, ``{asset: [(ts, price)]}``; ``evaluate_synth_score`` keeps a
  cursor (``fed_until``) and sends, before each prompt, every bar newer than the cursor, all assets
  with something new in one dict, and does not tick at all when nothing is new.
* ``PriceStore.add_bulk`` (both games) stores each asset in a ``SortedDict`` ``ts -> price``:
  ``series[ts] = price``, so a repeated point **overwrites** the stored one (the last one wins,
  inside one batch too) and re-sending a point changes nothing; points may arrive out of order
  (they are inserted in order); after each batch the asset keeps only ``ts >= newest - 30 days``
  (``window_days=30``). Crunch-Synth's store also keeps ``last_timestamp`` (newest over all
  assets), which ``TrackerBase.tick`` copies into ``data_clock`` to drive scheduled (background)
  tasks; Condor's store has no ``last_timestamp``.
* Over the model-runner wire the tick is one JSON argument: tuples arrive as 2-item lists, which
  ``PriceStore`` unpacks the same way (``for t, p in entries``); ints stay ints.

What this module does
---------------------
``points_from_records`` turns stored feed records into ``PricePoint``s with the games' timestamp
(candle: open time, price = close, observed at open + granularity; tick: its own time and price;
sub-second times are truncated to the second; records not final are skipped). ``build_tick``
makes one model's next tick at ``as_of`` from those points and its ``TickCursor``:

* a subject the cursor has never sent gets its history window: every observed point with
  ``ts >= as_of - history_seconds`` (30 days by default, like the games);
* a subject already sent gets only the points with ``ts`` newer than the cursor's;
* only points observed at or before ``as_of``; non-finite or non-positive prices are skipped (and
  counted), never repaired; points sharing a ``ts`` keep the one given last, as ``PriceStore``
  would; each list ascending; subjects with nothing new are left out, so an empty tick means
  "nothing to send" (the games do not tick then).

The returned ``Tick`` carries the cursor *after* delivery: keep it only when the tick call
succeeded. Re-sending after a failed or timed-out call is safe (same points overwrite themselves).
Points repaired later with a ``ts`` at or before the cursor are not re-sent (the games' runner
does the same). A model that lost its state (node restarted) needs an empty cursor again.
Resampling is not done: stored 1-hour candles give hourly points, not the games' 1-minute ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from coordinator_core.errors import DataError

__all__ = [
    "HISTORY_SECONDS",
    "PriceData",
    "PricePoint",
    "Tick",
    "TickCursor",
    "build_tick",
    "group_by_cursor",
    "points_from_records",
]

HISTORY_SECONDS = 30 * 86_400  # the games' first tick: the last 30 days (PriceStore window_days=30)

PriceData: TypeAlias = dict[str, list[tuple[int, float]]]


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One price as the games timestamp it: ``ts`` (epoch seconds), known from ``observed_at``."""

    subject: str
    ts: int
    price: float
    observed_at: int


@dataclass(frozen=True)
class TickCursor:
    """What one model has received: per subject, the newest ``ts`` sent. Hashable, JSON-able."""

    sent: tuple[tuple[str, int], ...] = ()

    def last(self, subject: str) -> int | None:
        for name, ts in self.sent:
            if name == subject:
                return ts
        return None

    def advanced(self, newest: Mapping[str, int]) -> TickCursor:
        merged = dict(self.sent)
        for subject, ts in newest.items():
            merged[subject] = max(ts, merged.get(subject, ts))
        return TickCursor(tuple(sorted(merged.items())))

    def to_json(self) -> dict[str, int]:
        return dict(self.sent)

    @classmethod
    def from_json(cls, raw: Any) -> TickCursor:
        """A stored cursor (``{"BTC": 1767225540}``); ``DataError`` if it is not one."""
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in raw.items()
        ):
            raise DataError("a tick cursor must be an object of subject -> last sent timestamp (int seconds)")
        return cls(tuple(sorted(raw.items())))


@dataclass(frozen=True)
class Tick:
    """One model's next tick: ``data`` to send, the ``cursor`` once it is delivered, and what happened."""

    data: PriceData
    cursor: TickCursor
    history: frozenset[str] = field(default_factory=frozenset)  # subjects sent their history window now
    skipped: int = 0  # points refused: price not finite or not > 0

    def __bool__(self) -> bool:
        return bool(self.data)

    @property
    def points(self) -> int:
        return sum(len(points) for points in self.data.values())


def _epoch(when: int | datetime) -> int:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (UTC)")
        return int(when.timestamp())
    return int(when)


def points_from_records(
    records: Iterable[Any], *, subject: str, kind: str, granularity_seconds: int
) -> list[PricePoint]:
    """Price points from feed records (``FeedRecord`` or ``SourceRecord``: ``ts_event`` + values).

    ``kind="candle"``: ``ts`` = open time, price = ``close``, observed at open + granularity;
    ``kind="tick"``: ``ts`` = observed = ``ts_event``, price = ``price``. Not final → skipped.
    """
    points = []
    for record in records:
        if not getattr(record, "final", True):
            continue
        values = getattr(record, "values_jsonb", None)
        if values is None:
            values = record.values
        ts = int(record.ts_event.timestamp())
        if kind == "candle":
            price, observed = values.get("close"), ts + granularity_seconds
        else:
            price, observed = values.get("price", values.get("close")), ts
        if isinstance(price, bool) or not isinstance(price, int | float):
            continue
        points.append(PricePoint(subject, ts, float(price), observed))
    return points


def build_tick(
    points: Iterable[PricePoint],
    *,
    as_of: int | datetime,
    cursor: TickCursor | None = None,
    history_seconds: int = HISTORY_SECONDS,
) -> Tick:
    """The next tick for a model whose ``cursor`` says what it has (see the module docstring)."""
    now = _epoch(as_of)
    cursor = cursor or TickCursor()
    by_subject: dict[str, dict[int, float]] = {}
    skipped = 0
    for point in points:
        if point.observed_at > now:
            continue
        last = cursor.last(point.subject)
        if (last is not None and point.ts <= last) or (last is None and point.ts < now - history_seconds):
            continue
        if not (math.isfinite(point.price) and point.price > 0):
            skipped += 1
            continue
        by_subject.setdefault(point.subject, {})[point.ts] = point.price
    data: PriceData = {subject: sorted(prices.items()) for subject, prices in sorted(by_subject.items()) if prices}
    newest = {subject: entries[-1][0] for subject, entries in data.items()}
    history = frozenset(subject for subject in data if cursor.last(subject) is None)
    return Tick(data, cursor.advanced(newest), history, skipped)


def group_by_cursor(cursors: Mapping[str, TickCursor]) -> dict[TickCursor, list[str]]:
    """Models that share a cursor get the same tick: ``{cursor: [model ids]}`` (one payload per group)."""
    groups: dict[TickCursor, list[str]] = {}
    for model_id, cursor in sorted(cursors.items()):
        groups.setdefault(cursor, []).append(model_id)
    return groups
