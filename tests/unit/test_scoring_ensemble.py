"""Seeded path simulation and Synth's ensemble CRPS (price and volatility) against crunch-synth."""

from __future__ import annotations

import random
import warnings
import zlib

import numpy as np
import pytest
from crunch_synth.synth_score import SCORING_INTERVALS, calculate_crps_for_miner
from crunch_synth.utils.densitytosimulations import combine_multiscale_simulations
from crunch_synth.volatility import VOL_SCORING_BLOCKS, calculate_vol_crps_for_miner
from crunch_synth.volatility import block_volatilities as crunch_block_volatilities
from crunch_synth.volatility import crps_ensemble as crunch_crps_ensemble
from crunch_synth.volatility import simulate_price_paths as crunch_simulate_price_paths

from coordinator_core.scoring.ensemble import block_volatilities, crps_ensemble_nan, synth_price_crps, volatility_crps
from coordinator_core.scoring.simulation import (
    SimulationError,
    combine_multiscale,
    sample_density,
    simulate_price_paths,
    volatility_seed,
)

STEPS_1H = [60, 300, 900, 1800, 3600]


def norm(loc: float, scale: float) -> dict:
    return {"type": "builtin", "name": "norm", "params": {"loc": loc, "scale": scale}}


def mixture(*parts: tuple[dict, float]) -> dict:
    return {"type": "mixture", "components": [{"density": d, "weight": w} for d, w in parts]}


def varied_prediction() -> dict[int, list[dict]]:
    """Every kind of density the simulation handles, across the five 1h steps."""
    out: dict[int, list[dict]] = {}
    for step in STEPS_1H:
        a = step / 60
        densities = []
        for i in range(3600 // step):
            if i % 3 == 0:
                densities.append(norm(0.1 * a, 30 * a**0.5))
            elif i % 3 == 1:
                t = {"type": "builtin", "name": "t", "params": {"df": 4.0, "loc": 0.0, "scale": 20 * a**0.5, "x": 1}}
                laplace = {"type": "scipy", "name": "laplace", "params": {"loc": 0.0, "scale": 25 * a**0.5}}
                densities.append(mixture((norm(0.0, 30 * a**0.5), 0.6), (mixture((t, 1), (laplace, 2)), -0.4)))
            else:
                densities.append({"type": "statistics", "name": "normal", "params": {"mu": 0.0, "sigma": 28 * a**0.5}})
        out[step] = densities
    return out


def test_seed_is_crc32_of_asset_and_resolution_time() -> None:
    assert volatility_seed("BTC", 1_700_003_600) == zlib.crc32(b"BTC:1700003600")
    assert volatility_seed("ETH", 7) != volatility_seed("BTC", 7)


def test_simulated_paths_are_bit_identical_to_crunch_synth_and_leave_global_state_alone() -> None:
    prediction = varied_prediction()
    seed = volatility_seed("BTC", 1_700_003_600)
    np.random.seed(123)
    random.seed(123)
    state: tuple = np.random.get_state()  # type: ignore[assignment]
    before = (state[1].copy(), random.getstate())
    ours = simulate_price_paths(prediction, 30_000.0, seed)
    after: tuple = np.random.get_state()  # type: ignore[assignment]
    assert np.array_equal(after[1], before[0]) and random.getstate() == before[1]
    theirs = crunch_simulate_price_paths(prediction, 30_000.0, seed)
    assert ours.shape == (1000, 61)
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, simulate_price_paths(prediction, 30_000.0, seed + 1))


def test_step_order_of_the_prediction_decides_the_draws() -> None:
    prediction = {step: [norm(0.0, 10.0)] * (3600 // step) for step in (3600, 60)}
    reordered = {60: prediction[60], 3600: prediction[3600]}
    a = simulate_price_paths(prediction, 100.0, 5)
    b = simulate_price_paths(reordered, 100.0, 5)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(b, crunch_simulate_price_paths(reordered, 100.0, 5))


def test_combine_multiscale_by_hand() -> None:
    # one path: parent increment 10 over 2 children (1, 3): correction (10 - 4) / 2 = 3 -> (4, 6)
    paths = combine_multiscale({120: np.array([[10.0]]), 60: np.array([[1.0, 3.0]])})
    np.testing.assert_array_equal(paths, [[0.0, 4.0, 10.0]])
    rng = np.random.default_rng(0)
    draws = {s: rng.normal(size=(7, 3600 // s)) for s in STEPS_1H}
    np.testing.assert_allclose(
        combine_multiscale(draws),
        combine_multiscale_simulations({str(k): v for k, v in draws.items()}, {str(k): k for k in draws}),
        rtol=0,
        atol=0,
    )
    with pytest.raises(SimulationError, match="incompatible"):
        combine_multiscale({120: np.zeros((1, 1)), 60: np.zeros((1, 3))})
    with pytest.raises(SimulationError):
        combine_multiscale({})


def test_sample_density_errors() -> None:
    rs, rnd = np.random.RandomState(0), random.Random(0)
    deep = mixture((mixture((mixture((mixture((norm(0, 1), 1)), 1)), 1)), 1))
    for spec, fragment in (
        (deep, "depth"),
        ({"type": "kde"}, "type"),
        ({"type": "scipy", "name": "nope", "params": {}}, "unknown"),
        ({"type": "statistics", "name": "laplace", "params": {}}, "unsupported"),
    ):
        with pytest.raises(SimulationError, match=fragment):
            sample_density(spec, 10, rs, rnd)
    with pytest.raises(SimulationError, match="cannot simulate"):
        simulate_price_paths({60: [norm(0.0, -1.0)]}, 100.0, 1)  # scipy refuses a negative scale


def test_ensemble_crps_by_hand_and_against_synth() -> None:
    # members 0 and 1, y = 0.3: E|X - y| = 0.5, E|X - X'| = 0.5 -> 0.25
    assert crps_ensemble_nan(0.3, [0.0, 1.0]) == pytest.approx(0.25, rel=1e-15)
    assert crps_ensemble_nan(0.3, [0.0, np.nan, 1.0]) == pytest.approx(0.25, rel=1e-15)  # NaN ignored
    assert np.isnan(crps_ensemble_nan(np.nan, [0.0, 1.0]))
    assert np.isnan(crps_ensemble_nan(0.0, [np.nan, np.nan]))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 300))
    x[2, :7] = np.nan
    y = rng.normal(size=4)
    expected = [crunch_crps_ensemble(y[i], x[i]) for i in range(4)]
    np.testing.assert_allclose(crps_ensemble_nan(y, x), expected, rtol=1e-12)
    np.testing.assert_allclose(crps_ensemble_nan(y[:2], x[:2]), expected[:2], rtol=1e-12)
    with pytest.raises(ValueError):
        crps_ensemble_nan(0.0, np.zeros((3, 0)))


def test_block_volatilities_equal_crunch_synth_including_gaps() -> None:
    rng = np.random.default_rng(2)
    paths = 100 + np.cumsum(rng.normal(0, 1, (50, 61)), axis=1)
    paths[3, 10:14] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for steps in (5, 15, 60):
            np.testing.assert_allclose(
                block_volatilities(paths, steps), crunch_block_volatilities(paths, steps), rtol=1e-14, equal_nan=True
            )
    # by hand: returns of 1, 2, 4 -> +100%, +100% (in bps 10000, 10000): std 0
    assert block_volatilities(np.array([[1.0, 2.0, 4.0]]), 2).tolist() == [[0.0]]
    with pytest.raises(ValueError):
        block_volatilities(paths, 0)


def test_volatility_and_price_crps_equal_synth_for_a_batch_of_trackers() -> None:
    rng = np.random.default_rng(3)
    real = 30_000 + np.cumsum(np.r_[0.0, rng.normal(0, 30, 60)])
    real[[5, 6, 40]] = np.nan
    prediction = varied_prediction()
    batch = np.stack([simulate_price_paths(prediction, real[0], s) for s in (1, 2, 3)])
    vol = volatility_crps(batch, real, 60, VOL_SCORING_BLOCKS)
    price = synth_price_crps(batch, real, 60, SCORING_INTERVALS[60])
    for i in range(3):
        assert vol[i] == pytest.approx(calculate_vol_crps_for_miner(batch[i], real, 60)[0], rel=1e-12)
        assert price[i] == pytest.approx(calculate_crps_for_miner(batch[i], real, 60, SCORING_INTERVALS[60]), rel=1e-12)
    paths_24h = 30_000 + np.cumsum(rng.normal(0, 30, (2, 200, 289)), axis=-1)
    real_24h = 30_000 + np.cumsum(rng.normal(0, 30, 289))
    got = synth_price_crps(paths_24h, real_24h, 300, SCORING_INTERVALS[300])
    for i in range(2):
        assert got[i] == pytest.approx(
            calculate_crps_for_miner(paths_24h[i], real_24h, 300, SCORING_INTERVALS[300]), rel=1e-12
        )


def test_a_zero_price_rejects_the_paths_and_shapes_are_checked() -> None:
    paths = np.full((1, 10, 61), 100.0)
    paths[0, 3, 7] = 0.0
    real = np.full(61, 100.0)
    assert synth_price_crps(paths, real, 60, SCORING_INTERVALS[60]).tolist() == [-1.0]
    assert calculate_crps_for_miner(paths[0], real, 60, SCORING_INTERVALS[60]) == -1.0
    with pytest.raises(ValueError, match="disagree"):
        synth_price_crps(paths, real[:-1], 60, SCORING_INTERVALS[60])
    with pytest.raises(ValueError, match="disagree"):
        volatility_crps(paths, real[:-1], 60, VOL_SCORING_BLOCKS)
    # no observed block at all: every block size is left out
    assert volatility_crps(paths, np.full(61, np.nan), 60, VOL_SCORING_BLOCKS).tolist() == [0.0]


def test_draws_stay_identical_on_the_edges_of_the_fast_paths() -> None:
    # a zero scale draws nothing (scipy returns loc), integer parameters, a scipy normal, one component
    prediction = {
        3600: [{"type": "scipy", "name": "norm", "params": {"loc": 1, "scale": 0}}],
        1800: [norm(0, 30), mixture((norm(0.0, 20.0), 3))],
        60: [mixture(({"type": "scipy", "name": "norm", "params": {"loc": 0.5, "scale": 12.0}}, 1.0))] * 60,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = crunch_simulate_price_paths(prediction, 100.0, 9)
    np.testing.assert_array_equal(simulate_price_paths(prediction, 100.0, 9), theirs)
