"""Ground truth as a path: the observed price increments of a round at every resolution (pure).

This reproduces how the CrunchDAO games' ``TrackerEvaluator`` (condorgame 0.5.3, crunch-synth 0.15.0)
resolves a multi-resolution prediction against the prices its ``PriceStore`` holds.

The closest price (``PriceStore.get_closest_price``)
    ``pos = bisect_left(timestamps, t)``; before the first point the first point is taken, after
    the last point the last one, otherwise the earlier neighbour when ``t - t_before <= t_after - t``
    and the later one otherwise. So: the nearest stored point **at any distance**, an exact match
    being itself, and **a tie going to the earlier point**. Only an empty store has no closest price.

The round's timestamp
    ``enqueue_predictions``/``predict`` stamps the quarantine entry with ``ts``, the timestamp of the
    **last price in the tracker's store when it predicts** (not the wall clock, not the tick time),
    and the entry's release time ``ts + horizon`` is what scoring reads as ``quar_ts`` (the
    "resolution ts"). The entry pops at the first evaluation whose last price timestamp is
    ``>= ts + horizon``; that pop time only decides which prices the store holds by then.

The increments
    For a step ``s`` with ``n = len(predictions[s])`` (= ``horizon // s``, the evaluator checks it)
    the ``i``-th increment (``i = 0 .. n-1``) ends at ``ts + horizon - (n - 1 - i) s`` and starts one
    step earlier: anchored at the release time, so ``k s`` after ``ts`` when ``s`` divides the
    horizon. Each end takes its closest price; the observed increment is
    ``price(end) - price(start)``, **skipped only when both ends are the same stored point**
    (``ts_current == ts_prev``).

What the store holds
    Every tick up to the evaluation, trimmed to the last 30 days before its newest point
    (``PriceStore(window_days=30)``: points older than ``newest - 30 days`` are deleted). Pass the
    series as the store holds it at evaluation, e.g. ``series.as_stored_at(pop_ts)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

#: ``PriceStore`` default window: points older than ``newest - 30 days`` are dropped.
STORE_WINDOW_DAYS = 30
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class PriceSeries:
    """A stored price series: strictly increasing integer-second timestamps and their prices.

    Attributes
    ----------
    ts : numpy.ndarray of int64
        Timestamps in seconds, strictly increasing.
    prices : numpy.ndarray of float64
        The price at each timestamp.
    """

    ts: IntArray
    prices: FloatArray

    def __post_init__(self) -> None:
        ts = np.asarray(self.ts)
        prices = np.asarray(self.prices, dtype=np.float64)
        if ts.ndim != 1 or prices.shape != ts.shape:
            raise ValueError(f"ts and prices must be 1-D of one length (got {ts.shape} and {prices.shape})")
        if ts.size and not np.issubdtype(ts.dtype, np.integer):
            if not np.all(np.isfinite(ts)) or not np.all(ts == np.round(ts)):
                raise ValueError("timestamps must be integer seconds")
        ts = ts.astype(np.int64)
        if ts.size > 1 and not np.all(np.diff(ts) > 0):
            raise ValueError("timestamps must be strictly increasing (use PriceSeries.from_entries to sort)")
        object.__setattr__(self, "ts", ts)
        object.__setattr__(self, "prices", prices)

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[int, float]]) -> PriceSeries:
        """Build the series a ``PriceStore`` would hold after ``add_prices(entries)``.

        Entries are sorted by timestamp; for a repeated timestamp the last entry wins (the store's
        ``series[t] = p`` overwrites).
        """
        latest: dict[int, float] = {}
        for t, p in entries:
            if int(t) != t:
                raise ValueError(f"timestamps must be integer seconds (got {t!r})")
            latest[int(t)] = float(p)
        ts = np.array(sorted(latest), dtype=np.int64)
        return cls(ts, np.array([latest[t] for t in ts.tolist()], dtype=np.float64))

    def __len__(self) -> int:
        return int(self.ts.size)

    def as_stored_at(self, as_of: int, window_days: int = STORE_WINDOW_DAYS) -> PriceSeries:
        """The points a game's ``PriceStore`` holds at evaluation time ``as_of``.

        Points with ``ts <= as_of``, without those older than ``newest - window_days`` days
        (``newest`` the last of them), exactly as ``PriceStore.add_prices`` trims.
        """
        stop = int(np.searchsorted(self.ts, as_of, side="right"))
        if stop == 0:
            return PriceSeries(self.ts[:0], self.prices[:0])
        cutoff = int(self.ts[stop - 1]) - window_days * SECONDS_PER_DAY
        start = int(np.searchsorted(self.ts, cutoff, side="left"))
        return PriceSeries(self.ts[start:stop], self.prices[start:stop])


def closest_indices(ts: npt.ArrayLike, targets: npt.ArrayLike) -> IndexArray:
    """Index of the stored point closest to each target, as ``PriceStore.get_closest_price`` picks it.

    .. math:: j(t) = \\begin{cases} 0 & t \\le \\tau_0 \\\\ n-1 & t > \\tau_{n-1} \\\\
              p-1 & t - \\tau_{p-1} \\le \\tau_p - t \\\\ p & \\text{otherwise} \\end{cases},
              \\qquad p = \\text{bisect\\_left}(\\tau, t)

    (an exact match ``t = tau_p`` is itself; a tie goes to the earlier point).

    Parameters
    ----------
    ts : array_like of int
        Strictly increasing stored timestamps :math:`\\tau`.
    targets : array_like of int
        Timestamps to look up.

    Returns
    -------
    numpy.ndarray of intp
        Same shape as ``targets``; -1 everywhere when ``ts`` is empty (no closest price).
    """
    stored = np.asarray(ts, dtype=np.int64)
    wanted = np.asarray(targets, dtype=np.int64)
    if stored.ndim != 1:
        raise ValueError("ts must be 1-D")
    if stored.size == 0:
        return np.full(wanted.shape, -1, dtype=np.intp)
    pos = np.searchsorted(stored, wanted, side="left")
    before = np.clip(pos - 1, 0, stored.size - 1)
    after = np.clip(pos, 0, stored.size - 1)
    take_before = (wanted - stored[before]) <= (stored[after] - wanted)
    out = np.where(take_before, before, after)
    out = np.where(pos == 0, 0, out)
    out = np.where(pos == stored.size, stored.size - 1, out)
    return out.astype(np.intp)


@dataclass(frozen=True)
class StepIncrements:
    """The observed increments of one step resolution of a round.

    Attributes
    ----------
    step : int
        Seconds between the two ends of every increment.
    start_target, end_target : numpy.ndarray of int64
        Shape ``(n,)``: the timestamps the increments should start and end at.
    start_ts, end_ts : numpy.ndarray of int64
        The stored points taken for them (their closest prices); -1 when the store is empty.
    delta : numpy.ndarray of float64
        ``price(end) - price(start)``; NaN where skipped.
    scored : numpy.ndarray of bool
        False where both ends are the same stored point (or the store is empty): not scored.
    """

    step: int
    start_target: IntArray
    end_target: IntArray
    start_ts: IntArray
    end_ts: IntArray
    delta: FloatArray
    scored: npt.NDArray[np.bool_]

    @property
    def n_scored(self) -> int:
        return int(np.count_nonzero(self.scored))

    @property
    def n_skipped(self) -> int:
        return int(self.scored.size - self.n_scored)


@dataclass(frozen=True)
class RoundTruth:
    """Observed increments of a round at every step (see :func:`observed_increments`)."""

    round_ts: int
    horizon: int
    steps: Mapping[int, StepIncrements]

    @property
    def resolution_ts(self) -> int:
        """``round_ts + horizon``: the release time the evaluator scores from."""
        return self.round_ts + self.horizon

    @property
    def n_scored(self) -> int:
        return sum(s.n_scored for s in self.steps.values())

    @property
    def n_skipped(self) -> int:
        return sum(s.n_skipped for s in self.steps.values())


def _check_round(round_ts: int, horizon: int, steps: Sequence[int]) -> None:
    for name, value in (("round_ts", round_ts), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer number of seconds (got {value!r})")
    if horizon <= 0:
        raise ValueError(f"horizon must be positive (got {horizon})")
    if not steps:
        raise ValueError("steps must not be empty")
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or not 0 < step <= horizon:
            # the evaluators skip a step > horizon when predicting but crash (KeyError) when scoring it
            raise ValueError(f"every step must be an integer in (0, horizon] (got {step!r} for horizon {horizon})")
    if len(set(steps)) != len(steps):
        raise ValueError(f"steps must be distinct (got {list(steps)})")


def observed_increments(series: PriceSeries, round_ts: int, horizon: int, steps: Sequence[int]) -> RoundTruth:
    """Observed increments of a round at every step, as the games' evaluators resolve them.

    For step :math:`s`, :math:`n = \\lfloor h / s \\rfloor`, release :math:`R = t_0 + h`:

    .. math:: e_i = R - (n - 1 - i)\\,s,\\quad b_i = e_i - s,\\qquad
              \\Delta_i = p(j(e_i)) - p(j(b_i)) \\ \\text{scored iff}\\ j(e_i) \\ne j(b_i)

    with :math:`j` the closest stored point (:func:`closest_indices`).

    Parameters
    ----------
    series : PriceSeries
        The prices the store holds at evaluation (see :meth:`PriceSeries.as_stored_at`).
    round_ts : int
        The round's timestamp: the last stored price timestamp when the prediction was made.
    horizon : int
        Seconds.
    steps : sequence of int
        Step resolutions, each in ``(0, horizon]``.

    Returns
    -------
    RoundTruth

    Raises
    ------
    ValueError
        For a non-integer timestamp, a non-positive horizon, or a step outside ``(0, horizon]``.
    """
    _check_round(round_ts, horizon, steps)
    release = int(round_ts) + int(horizon)
    out: dict[int, StepIncrements] = {}
    for step in steps:
        step = int(step)
        n = horizon // step
        end_target = release - (n - 1 - np.arange(n, dtype=np.int64)) * step
        start_target = end_target - step
        end = closest_indices(series.ts, end_target)
        start = closest_indices(series.ts, start_target)
        if len(series) == 0:
            empty = np.full(n, -1, dtype=np.int64)
            out[step] = StepIncrements(
                step, start_target, end_target, empty, empty, np.full(n, np.nan), np.zeros(n, dtype=bool)
            )
            continue
        scored = end != start
        delta = np.where(scored, series.prices[end] - series.prices[start], np.nan)
        out[step] = StepIncrements(step, start_target, end_target, series.ts[start], series.ts[end], delta, scored)
    return RoundTruth(int(round_ts), int(horizon), out)


def realized_path(series: PriceSeries, end_ts: int, horizon: int, time_increment: int) -> FloatArray:
    """Realized prices on a prediction's finest grid, as crunch-synth's volatility term reads them.

    ``crunch_synth.volatility.realized_price_path``: the grid :math:`t_i = R - h + i\\,\\delta`,
    :math:`i = 0 \\dots h/\\delta`, each point taking its closest stored price if that point is
    within :math:`\\delta/2` of :math:`t_i`, else NaN (a gap).

    Parameters
    ----------
    series : PriceSeries
        The prices the store holds at evaluation.
    end_ts : int
        The release time :math:`R` (``round_ts + horizon``).
    horizon, time_increment : int
        Seconds; :math:`\\delta` is the finest step.

    Returns
    -------
    numpy.ndarray
        Shape ``(horizon // time_increment + 1,)``.
    """
    if time_increment <= 0 or horizon <= 0:
        raise ValueError(f"horizon and time_increment must be positive (got {horizon}, {time_increment})")
    grid = (end_ts - horizon) + np.arange(horizon // time_increment + 1, dtype=np.int64) * time_increment
    path = np.full(grid.size, np.nan)
    index = closest_indices(series.ts, grid)
    if len(series) == 0:
        return path
    near = np.abs(series.ts[index] - grid) <= time_increment / 2
    path[near] = series.prices[index[near]]
    return path
