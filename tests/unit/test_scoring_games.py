"""The games' constants against their packages, and round scoring: by hand, errors, volatility."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from pathlib import Path

import crunch_synth.constants as crunch_constants
import crunch_synth.synth_score as crunch_synth_score
import crunch_synth.volatility as crunch_volatility
import numpy as np
import pytest
from crunch_synth.prices import PriceStore
from crunch_synth.utils.distributions import round_distribution_digits

from coordinator_core.games.constants import (
    CONDORGAME,
    CRUNCH_SYNTH,
    FORECAST_PROFILES,
    SYNTH_SCORING_INTERVALS,
    SYNTH_TIME_INCREMENT,
    VOL_SCORING_BLOCKS,
)
from coordinator_core.games.evaluation import (
    Round,
    count_components,
    crps_bounds_for,
    get_game,
    overall_score,
    round_prediction,
    round_timestamp,
    score_rounds,
    validate_prediction,
)
from coordinator_core.scoring.grid_crps import crps_on_grid
from coordinator_core.scoring.paths import PriceSeries

CONDOR_CONSTANTS = (
    Path(__file__).resolve().parents[2] / ".venv-condor/lib/python3.12/site-packages/condorgame/constants.py"
)

pytestmark = pytest.mark.filterwarnings("ignore:sorted_dict.iloc is deprecated:DeprecationWarning")


def norm(loc: float, scale: float) -> dict:
    return {"type": "builtin", "name": "norm", "params": {"loc": loc, "scale": scale}}


def as_profiles(profiles: dict) -> dict:
    return {k: (v["horizon"], tuple(v["steps"]), v["interval"]) for k, v in profiles.items()}


def ours(profiles: object) -> dict:
    return {k: (v.horizon, v.steps, v.interval) for k, v in profiles.items()}  # type: ignore[attr-defined]


# -- constants --------------------------------------------------------------------------------------


def test_crunch_synth_constants_are_the_package_values() -> None:
    assert CRUNCH_SYNTH.supported_assets == tuple(crunch_constants.SUPPORTED_ASSETS)
    assert ours(CRUNCH_SYNTH.forecast_profiles) == as_profiles(crunch_constants.FORECAST_PROFILES)
    assert dict(CRUNCH_SYNTH.crps_t) == crunch_constants.CRPS_BOUNDS["t"]
    assert CRUNCH_SYNTH.base_step == crunch_constants.CRPS_BOUNDS["base_step"]
    assert CRUNCH_SYNTH.num_points == crunch_constants.CRPS_BOUNDS["num_points"] == 1024
    assert dict(CRUNCH_SYNTH.asset_weights or {}) == crunch_constants.ASSET_WEIGHTS
    assert CRUNCH_SYNTH.max_components == crunch_constants.MAX_DISTRIBUTION_COMPONENTS
    vol = CRUNCH_SYNTH.volatility
    assert vol is not None
    assert vol.horizon == crunch_volatility.VOL_CRPS_HORIZON and vol.assets == crunch_volatility.VOL_CRPS_ASSETS
    assert dict(vol.blocks) == crunch_volatility.VOL_SCORING_BLOCKS == dict(VOL_SCORING_BLOCKS)
    assert list(vol.blocks) == list(crunch_volatility.VOL_SCORING_BLOCKS)  # the order they are summed in
    assert dict(vol.k) == crunch_volatility.VOL_CRPS_K and vol.num_paths == crunch_volatility.VOL_CRPS_NUM_PATHS
    assert vol.lam == crunch_volatility.VOL_CRPS_LAMBDA
    assert {k: dict(v) for k, v in SYNTH_SCORING_INTERVALS.items()} == crunch_synth_score.SCORING_INTERVALS
    assert list(SYNTH_SCORING_INTERVALS[60]) == list(crunch_synth_score.SCORING_INTERVALS[60])
    assert dict(SYNTH_TIME_INCREMENT) == crunch_synth_score.TIME_INCREMENT
    assert PriceStore().window_days == CRUNCH_SYNTH.store_window_days


@pytest.mark.skipif(not CONDOR_CONSTANTS.exists(), reason="make env creates .venv-condor with condorgame")
def test_condorgame_constants_are_the_package_values() -> None:
    namespace: dict = {}
    exec(compile(CONDOR_CONSTANTS.read_text(), str(CONDOR_CONSTANTS), "exec"), namespace)  # plain assignments
    assert CONDORGAME.supported_assets == tuple(namespace["SUPPORTED_ASSETS"])
    assert ours(CONDORGAME.forecast_profiles) == as_profiles(namespace["FORECAST_PROFILES"])
    assert dict(CONDORGAME.crps_t) == namespace["CRPS_BOUNDS"]["t"]
    assert CONDORGAME.base_step == namespace["CRPS_BOUNDS"]["base_step"]
    assert CONDORGAME.num_points == namespace["CRPS_BOUNDS"]["num_points"] == 256
    assert CONDORGAME.max_components == namespace["MAX_DISTRIBUTION_COMPONENTS"]
    assert CONDORGAME.asset_weights is None and CONDORGAME.volatility is None


def test_both_games_share_the_two_profiles() -> None:
    assert FORECAST_PROFILES["1h"].steps == (60, 300, 900, 1800, 3600) and FORECAST_PROFILES["1h"].interval == 720
    assert FORECAST_PROFILES["24h"].horizon == 86_400 and FORECAST_PROFILES["24h"].interval == 3600


# -- helpers ----------------------------------------------------------------------------------------


def test_crps_bounds_per_game_asset_and_step() -> None:
    assert crps_bounds_for("crunch_synth", "BTC", 60) == (-1500, 1500)
    assert crps_bounds_for("crunch_synth", "XAUT", 3600)[1] == pytest.approx(33 * math.sqrt(12))
    assert crps_bounds_for("condorgame", "XAUT", 3600)[1] == pytest.approx(28 * math.sqrt(12))
    with pytest.raises(ValueError, match="no CRPS bound"):
        crps_bounds_for("condorgame", "XRP", 60)
    with pytest.raises(ValueError, match="unknown game"):
        get_game("synth")  # type: ignore[arg-type]


def test_round_timestamp_is_the_last_stored_price_at_prediction_time() -> None:
    series = PriceSeries(np.array([100, 161, 219]), np.array([1.0, 2.0, 3.0]))
    assert round_timestamp(series, 218) == 161
    assert round_timestamp(series, 219) == 219
    with pytest.raises(ValueError, match="no stored price"):
        round_timestamp(series, 99)
    spec = Round.of_profile("crunch_synth", "1h", 161, evaluated_at=3800)
    assert (spec.horizon, spec.steps, spec.resolution_ts) == (3600, (60, 300, 900, 1800, 3600), 3761)


def test_validate_prediction_follows_the_evaluator_and_predict_all() -> None:
    steps, horizon = (60, 3600), 3600
    good = {60: [norm(0, 1)] * 60, 3600: [norm(0, 1)]}
    assert validate_prediction("crunch_synth", good, horizon, steps) is None
    assert validate_prediction("crunch_synth", {60: good[60]}, horizon, steps) == "Missing predictions for step 3600"
    short = {60: good[60][:59], 3600: good[3600]}
    assert (
        validate_prediction("condorgame", short, horizon, steps) == "Prediction length mismatch for step 60: 59 != 60"
    )
    four = {"type": "mixture", "components": [{"density": norm(0, 1), "weight": 1}] * 4}
    assert "maximum allowed is 3" in str(
        validate_prediction("condorgame", {60: good[60], 3600: [four]}, horizon, steps)
    )
    assert "must map steps" in str(validate_prediction("condorgame", [1, 2], horizon, steps))
    assert "list of densities" in str(validate_prediction("condorgame", {60: "x", 3600: [norm(0, 1)]}, horizon, steps))
    assert validate_prediction("condorgame", {3600: [norm(0, 1)]}, horizon, (3600, 7200)) is None  # step > horizon
    nested = {"type": "mixture", "components": [{"density": four, "weight": 1}, {"density": norm(0, 1), "weight": 1}]}
    assert count_components(nested) == 5 and count_components(norm(0, 1)) == 1
    with pytest.raises(ValueError, match="mapping"):
        count_components([norm(0, 1)])


def test_round_prediction_equals_predict_all_rounding() -> None:
    mixture: dict = {
        "type": "mixture",
        "components": [
            {"density": norm(0.123456789, np.float64(12.3456789)), "weight": 0.333333333},
            {
                "density": {"type": "builtin", "name": "t", "params": {"df": 3, "loc": -1e-7, "scale": 98765.4321}},
                "weight": 2,
            },
        ],
    }
    expected = round_distribution_digits(copy.deepcopy(mixture), digits=6)
    assert round_prediction({60: [mixture]}) == {60: [expected]}
    assert mixture["components"][0]["weight"] == 0.333333333  # the input is not modified
    with pytest.raises(ValueError):
        round_prediction({60: [norm(math.nan, 1.0)]})
    with pytest.raises(ValueError):
        round_distribution_digits(norm(math.nan, 1.0))  # predict_all raises there too


def test_overall_score_per_game() -> None:
    scores = {"BTC": [1.0, 2.0, 3.0], "ETH": [10.0]}
    assert overall_score("condorgame", scores) == pytest.approx(4.0)  # one mean over every score
    assert CRUNCH_SYNTH.asset_weights is not None
    w_eth = CRUNCH_SYNTH.asset_weights["ETH"]
    assert overall_score("crunch_synth", scores) == pytest.approx((2.0 + w_eth * 10.0) / (1 + w_eth))
    assert overall_score("crunch_synth", {}) == 0.0 and overall_score("condorgame", {"BTC": []}) == 0.0
    with pytest.raises(ValueError, match="no weight"):
        overall_score("crunch_synth", {"DOGE": [1.0]})


# -- score_rounds -----------------------------------------------------------------------------------

TINY = dataclasses.replace(CRUNCH_SYNTH, num_points=3, crps_t={"X": 1.0}, volatility=None)
# one N(0, 1) on the grid (-1, 0, 1) against 0.5 or 1.0 (indicator 0, 0, 1 for both), by hand
# (see test_scoring_grid_crps): 0.5 (0.3775406688^2 + 1) + 0.5 (1 + 0)
C = 0.5 * (0.3775406688**2 + 1.0) + 0.5


def tiny_series() -> PriceSeries:
    return PriceSeries(np.array([0, 60, 120]), np.array([10.0, 10.5, 11.0]))


def test_a_round_score_is_the_sum_over_every_increment_divided_by_t_by_hand() -> None:
    rounds = [Round(0, 120, (60, 120))]
    prediction = {60: [norm(0.0, 1.0), norm(0.0, 1.0)], 120: [norm(0.0, 1.0)]}
    (result,) = score_rounds(TINY, "X", tiny_series(), rounds, [[prediction]])
    # increments 0.5, 0.5 (step 60) and 1.0 (step 120): three times C, divided by t = 1 (a sum, not a mean)
    assert result.price[0] == pytest.approx(3 * C, rel=1e-9)
    assert result.total[0] == result.price[0] and result.volatility[0] == 0.0
    assert result.increments_scored.tolist() == [3] and result.increments_skipped.tolist() == [0]
    halved = dataclasses.replace(TINY, crps_t={"X": 2.0})  # t also widens the grid: recompute, then divide by 2
    (wide,) = score_rounds(halved, "X", tiny_series(), rounds, [[prediction]])
    expected = crps_on_grid([norm(0.0, 1.0)] * 3, [0.5, 0.5, 1.0], -2.0, 2.0, num_points=3, evaluator="crunch_synth")
    assert wide.price[0] == pytest.approx(expected.sum() / 2.0, rel=1e-12)


def test_a_skipped_increment_is_not_scored_and_is_counted() -> None:
    series = PriceSeries(np.array([0, 120]), np.array([10.0, 11.0]))  # 60 ties between 0 and 120: takes 0
    prediction = {60: [norm(0.0, 1.0), norm(0.0, 1.0)], 120: [norm(0.0, 1.0)]}
    (result,) = score_rounds(TINY, "X", series, [Round(0, 120, (60, 120))], [[prediction]])
    # step 60: (0 -> 60) both on the point at 0: skipped; (60 -> 120): 1.0. step 120: 1.0
    assert result.increments_scored.tolist() == [2] and result.increments_skipped.tolist() == [1]
    assert result.price[0] == pytest.approx(2 * C, rel=1e-9)


def test_a_density_error_at_a_skipped_increment_does_not_matter() -> None:
    series = PriceSeries(np.array([0, 120]), np.array([10.0, 11.0]))
    broken = norm(0.0, -1.0)  # the evaluator raises on it, but only if it gets evaluated
    prediction = {60: [broken, norm(0.0, 1.0)], 120: [norm(0.0, 1.0)]}
    (result,) = score_rounds(TINY, "X", series, [Round(0, 120, (60, 120))], [[prediction]])
    assert result.errors == (None,) and result.price[0] == pytest.approx(2 * C, rel=1e-9)


def test_failing_trackers_get_nan_and_a_reason_while_the_others_are_scored() -> None:
    good = {60: [norm(0.0, 1.0)] * 2, 120: [norm(0.0, 1.0)]}
    missing = {60: [norm(0.0, 1.0)] * 2}
    broken = {60: [norm(0.0, 1.0), norm(0.0, 0.0)], 120: [norm(0.0, 1.0)]}
    json_keys = {"60": [norm(0.0, 1.0)] * 2, "120": [norm(0.0, 1.0)]}
    (result,) = score_rounds(
        TINY, "X", tiny_series(), [Round(0, 120, (60, 120))], [[good, missing, broken, None, json_keys]]
    )
    assert result.price[0] == pytest.approx(3 * C, rel=1e-9) and result.price[4] == result.price[0]
    assert np.isnan(result.total[1:4]).all()
    assert result.errors[1] == "Missing predictions for step 120"
    assert (
        result.errors[2] is not None and "step 60" in result.errors[2] and "scale must be positive" in result.errors[2]
    )
    assert result.errors[3] == "no prediction" and result.errors[4] is None
    assert result.increments_scored.tolist() == [3, 0, 0, 0, 3]


def test_score_rounds_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="no CRPS bound"):
        score_rounds("condorgame", "DOGE", tiny_series(), [], [])
    with pytest.raises(ValueError, match="prediction lists"):
        score_rounds("condorgame", "BTC", tiny_series(), [Round(0, 120, (60,))], [])
    with pytest.raises(ValueError, match="step"):
        score_rounds("condorgame", "BTC", tiny_series(), [Round(0, 120, (240,))], [[None]])
    with pytest.raises(ValueError, match="unknown game"):
        score_rounds("synth", "BTC", tiny_series(), [], [])  # type: ignore[arg-type]


def test_evaluated_at_cuts_the_series_where_the_evaluator_would_have_it() -> None:
    # the last target (120) is 20 s from a point at 100 and 10 s from one at 130 that arrives later
    series = PriceSeries(np.array([0, 60, 100, 130]), np.array([10.0, 10.5, 11.0, 12.0]))
    prediction = {120: [norm(0.0, 1.0)]}
    early, late = score_rounds(
        TINY,
        "X",
        series,
        [Round(0, 120, (120,), evaluated_at=120), Round(0, 120, (120,), evaluated_at=130)],
        [[prediction], [prediction]],
    )
    assert early.truth.steps[120].end_ts.tolist() == [100] and late.truth.steps[120].end_ts.tolist() == [130]


def one_minute_series(seed: int, minutes: int = 180, start: int = 1_767_225_600) -> PriceSeries:
    rng = np.random.default_rng(seed)
    ts = start + 60 * np.arange(minutes)
    return PriceSeries(ts, 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, minutes))))


def gaussian_prediction(sigma: float = 25.0) -> dict[int, list[dict]]:
    return {s: [norm(0.0, sigma * math.sqrt(s / 60))] * (3600 // s) for s in FORECAST_PROFILES["1h"].steps}


def test_crunch_synth_adds_the_volatility_term_of_its_own_evaluator() -> None:
    series = one_minute_series(1)
    spec = Round.of_profile("crunch_synth", "1h", int(series.ts[30]), evaluated_at=int(series.ts[-1]))
    prediction = gaussian_prediction()
    (result,) = score_rounds("crunch_synth", "BTC", series, [spec], [[prediction, gaussian_prediction(40.0)]])
    store = PriceStore()
    store.add_prices("BTC", list(zip(series.ts.tolist(), series.prices.tolist(), strict=True)))
    theirs = crunch_volatility.score_volatility("BTC", (spec.resolution_ts, prediction, list(spec.steps)), store)
    assert theirs is not None
    assert result.volatility_scored.tolist() == [True, True]
    assert result.volatility[0] == pytest.approx(theirs["vol_score"], rel=1e-12)
    assert result.total[0] == pytest.approx(result.price[0] + theirs["vol_score"], rel=1e-15)
    (plain,) = score_rounds("crunch_synth", "BTC", series, [spec], [[prediction]], volatility=False)
    assert plain.total[0] == plain.price[0] == result.price[0]
    (eth,) = score_rounds("crunch_synth", "XAUT", series, [spec], [[prediction]])  # not a volatility asset
    assert not eth.volatility_scored[0] and eth.total[0] == eth.price[0]
    (condor,) = score_rounds("condorgame", "BTC", series, [spec], [[prediction]])
    assert not condor.volatility_scored[0]


def test_no_volatility_term_without_a_first_realized_point() -> None:
    series = one_minute_series(2)
    ts = series.ts.copy()
    ts[30] -= 31  # more than half a minute from the round's start: path[0] is a gap
    series = PriceSeries(ts, series.prices)
    spec = Round.of_profile("crunch_synth", "1h", int(ts[30]) + 31, evaluated_at=int(ts[-1]))
    (result,) = score_rounds("crunch_synth", "BTC", series, [spec], [[gaussian_prediction()]])
    assert not result.volatility_scored[0] and result.total[0] == result.price[0] and result.errors == (None,)


def test_a_prediction_that_cannot_be_simulated_is_scored_on_price_only() -> None:
    series = one_minute_series(3)
    steps = (60, 420)  # 3600 // 420 = 8 increments of 7 minutes: not 60 / 7 of the finest ones
    spec = Round(int(series.ts[30]), 3600, steps, evaluated_at=int(series.ts[-1]))
    prediction = {60: [norm(0.0, 25.0)] * 60, 420: [norm(0.0, 66.0)] * 8}
    (result,) = score_rounds("crunch_synth", "BTC", series, [spec], [[prediction]])
    assert not result.volatility_scored[0] and result.total[0] == result.price[0]
    assert "incompatible steps" in str(result.volatility_errors[0]).lower()
    store = PriceStore()
    store.add_prices("BTC", list(zip(series.ts.tolist(), series.prices.tolist(), strict=True)))
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crunch_volatility.score_volatility("BTC", (spec.resolution_ts, prediction, list(steps)), store)


def test_a_round_reads_only_the_points_from_its_ts_to_the_settlement_point() -> None:
    rng = np.random.default_rng(4)
    ts = 1_767_225_600 + 60 * np.arange(400) + rng.integers(-25, 26, 400)
    keep = rng.random(400) > 0.1
    series = PriceSeries(ts[keep], 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, int(keep.sum())))))
    for i in range(100, 200):  # a round whose settlement point is also the closest to ts + horizon
        start = int(series.ts[i])  # a stored point, as a round's ts always is
        j = int(np.searchsorted(series.ts, start + 3600))
        if series.ts[j] - (start + 3600) < (start + 3600) - series.ts[j - 1]:
            break
    settlement = int(series.ts[j])
    spec = Round.of_profile("crunch_synth", "1h", start)
    inside = (series.ts >= start) & (series.ts <= settlement)
    needed = PriceSeries(series.ts[inside], series.prices[inside])
    prediction = gaussian_prediction()
    (full,) = score_rounds("crunch_synth", "BTC", series, [spec], [[prediction]])
    (cut,) = score_rounds("crunch_synth", "BTC", needed, [spec], [[prediction]])
    assert full.volatility_scored[0] and cut.volatility_scored[0]
    assert cut.total[0] == full.total[0] and cut.volatility[0] == full.volatility[0]
    one_less = PriceSeries(needed.ts[:-1], needed.prices[:-1])  # without the settlement point: not the same
    (early,) = score_rounds("crunch_synth", "BTC", one_less, [spec], [[prediction]])
    assert early.total[0] != full.total[0]
