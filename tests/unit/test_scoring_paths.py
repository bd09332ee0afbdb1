"""Ground truth as a path: the closest-price rule, increments at every step, the stored window."""

from __future__ import annotations

import numpy as np
import pytest
from crunch_synth.prices import PriceStore
from crunch_synth.volatility import realized_price_path

from coordinator_core.scoring.paths import (
    PriceSeries,
    closest_indices,
    observed_increments,
    realized_path,
)

pytestmark = pytest.mark.filterwarnings("ignore:sorted_dict.iloc is deprecated:DeprecationWarning")


def jittered_series(seed: int, minutes: int = 600) -> PriceSeries:
    """1-minute points with second jitter, dropped minutes, one 9-minute hole and exact ties."""
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000 + 60 * np.arange(minutes) + rng.integers(-25, 26, minutes)
    keep = rng.random(minutes) > 0.1
    keep[200:209] = False
    ts = ts[keep]
    ts[50] = ts[49] + 60  # a later target lands exactly half-way on some grid below
    ts = np.unique(ts)
    prices = 30_000 + np.cumsum(rng.normal(0, 20, ts.size))
    return PriceSeries(ts, prices)


def store_of(series: PriceSeries) -> PriceStore:
    store = PriceStore()
    store.add_prices("BTC", list(zip(series.ts.tolist(), series.prices.tolist(), strict=True)))
    return store


def test_closest_price_by_hand() -> None:
    ts = [100, 160, 220]
    # before the first point -> first; after the last -> last, at any distance
    assert closest_indices(ts, [0, 10_000]).tolist() == [0, 2]
    # exact matches are themselves
    assert closest_indices(ts, [100, 160, 220]).tolist() == [0, 1, 2]
    # nearest neighbour; a tie (130 is 30 s from both 100 and 160) goes to the earlier point
    assert closest_indices(ts, [129, 130, 131, 190, 191]).tolist() == [0, 0, 1, 1, 2]
    assert closest_indices([], [5, 6]).tolist() == [-1, -1]


def test_closest_price_equals_price_store_get_closest_price() -> None:
    series = jittered_series(1)
    store = store_of(series)
    targets = np.arange(series.ts[0] - 500, series.ts[-1] + 500, 7)
    ours = closest_indices(series.ts, targets)
    for target, index in zip(targets.tolist(), ours.tolist(), strict=True):
        assert store.get_closest_price("BTC", target) == (int(series.ts[index]), float(series.prices[index]))


def test_increments_by_hand() -> None:
    # prices at 0, 60, 120, 180, 240 (+ 0 s), but nothing between 250 and 400
    series = PriceSeries(np.array([0, 60, 120, 180, 240, 400]), np.array([10.0, 11.0, 13.0, 12.0, 12.5, 20.0]))
    truth = observed_increments(series, round_ts=0, horizon=360, steps=[60, 180, 360])
    one = truth.steps[60]
    assert one.end_target.tolist() == [60, 120, 180, 240, 300, 360]
    # 300 -> 240 (60 s away vs 100); 360 -> 400 (40 s vs 120): (240, 300) both on 240 -> skipped
    assert one.end_ts.tolist() == [60, 120, 180, 240, 240, 400]
    assert one.scored.tolist() == [True, True, True, True, False, True]
    np.testing.assert_allclose(one.delta[one.scored], [1.0, 2.0, -1.0, 0.5, 7.5])
    three = truth.steps[180]
    assert three.start_ts.tolist() == [0, 180] and three.end_ts.tolist() == [180, 400]
    np.testing.assert_allclose(three.delta, [2.0, 8.0])
    assert truth.steps[360].delta.tolist() == [10.0]
    assert (truth.n_scored, truth.n_skipped) == (8, 1)
    assert truth.resolution_ts == 360


def test_increments_are_anchored_at_the_release_when_the_step_does_not_divide_the_horizon() -> None:
    series = PriceSeries(np.arange(0, 4000, 60), np.arange(0, 4000, 60).astype(np.float64))
    truth = observed_increments(series, round_ts=0, horizon=3600, steps=[420])
    # n = 8 increments; the last ends at 3600 and the first at 3600 - 7 * 420 = 660, not at 420
    assert truth.steps[420].end_target.tolist() == [660 + 420 * i for i in range(8)]


def test_increments_equal_the_evaluator_loop_on_a_jittered_series() -> None:
    series = jittered_series(2)
    store = store_of(series)
    for round_ts in (int(series.ts[10]), int(series.ts[150]), int(series.ts[190])):
        horizon, steps = 3600, [60, 300, 900, 1800, 3600]
        truth = observed_increments(series, round_ts, horizon, steps)
        release = round_ts + horizon
        for step in steps:
            n = horizon // step
            rolling = release - step * (n - 1)
            expected_delta, expected_scored = [], []
            for _ in range(n):  # TrackerEvaluator._score_quarantines, term by term
                current = store.get_closest_price("BTC", rolling)
                previous = store.get_closest_price("BTC", rolling - step)
                rolling += step
                expected_scored.append(current[0] != previous[0])
                if current[0] != previous[0]:
                    expected_delta.append(current[1] - previous[1])
            got = truth.steps[step]
            assert got.scored.tolist() == expected_scored
            assert got.delta[got.scored].tolist() == expected_delta
        assert truth.n_skipped > 0  # the 9-minute hole skips 1-minute increments


def test_empty_series_skips_everything() -> None:
    truth = observed_increments(PriceSeries(np.array([], dtype=np.int64), np.array([])), 0, 3600, [60, 3600])
    assert truth.n_scored == 0 and truth.n_skipped == 61
    assert np.isnan(realized_path(PriceSeries(np.array([], dtype=np.int64), np.array([])), 3600, 3600, 60)).all()


def test_as_stored_at_cuts_at_evaluation_and_keeps_thirty_days() -> None:
    day = 86_400
    ts = np.arange(0, 40 * day, 3600)
    series = PriceSeries(ts, ts.astype(float))
    view = series.as_stored_at(35 * day + 1800)
    assert view.ts[-1] == 35 * day
    assert view.ts[0] == 5 * day  # newest - 30 days is kept (bisect_left on the cutoff)
    store = PriceStore()
    store.add_prices("X", [(int(t), float(t)) for t in ts if t <= 35 * day + 1800])
    assert list(store.data["X"].keys()) == view.ts.tolist()
    assert len(series.as_stored_at(-1)) == 0


def test_from_entries_sorts_and_keeps_the_last_duplicate() -> None:
    series = PriceSeries.from_entries([(120, 3.0), (60, 1.0), (120, 4.0)])
    assert series.ts.tolist() == [60, 120] and series.prices.tolist() == [1.0, 4.0]
    with pytest.raises(ValueError, match="integer"):
        PriceSeries.from_entries([(60.5, 1.0)])  # type: ignore[list-item]


def test_realized_path_equals_crunch_synth() -> None:
    series = jittered_series(3)
    store = store_of(series)
    end = int(series.ts[100]) + 3600
    ours = realized_path(series, end, 3600, 60)
    theirs = realized_price_path(store, "BTC", end, 3600, 60)
    np.testing.assert_array_equal(ours, theirs)
    assert np.isnan(ours).any() and not np.isnan(ours).all()


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        PriceSeries(np.array([2, 1]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="one length"):
        PriceSeries(np.array([1, 2]), np.array([1.0]))
    with pytest.raises(ValueError, match="integer seconds"):
        PriceSeries(np.array([1.5, 2.0]), np.array([1.0, 2.0]))
    series = PriceSeries(np.array([0, 60]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="step"):
        observed_increments(series, 0, 3600, [7200])
    with pytest.raises(ValueError, match="horizon"):
        observed_increments(series, 0, 0, [60])
    with pytest.raises(ValueError, match="round_ts"):
        observed_increments(series, 1.5, 3600, [60])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct"):
        observed_increments(series, 0, 3600, [60, 60])
    with pytest.raises(ValueError, match="empty"):
        observed_increments(series, 0, 3600, [])
    with pytest.raises(ValueError, match="positive"):
        realized_path(series, 3600, 3600, 0)
    with pytest.raises(ValueError, match="1-D"):
        closest_indices(np.zeros((2, 2)), [1])
