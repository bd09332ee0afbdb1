"""The leaderboard's metric columns (``coordinator_core.domain.metrics``): hand-computed values and
independent references (scipy, a plain-Python bootstrap of the same resampling scheme)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from coordinator_core.contract import CrunchContract
from coordinator_core.domain.metrics import (
    BOOTSTRAP_RESAMPLES,
    ModelWindow,
    bootstrap_seed,
    default_metrics,
    max_drawdown,
    model_metrics,
    pit_values,
    sharpe,
)

ALL_POINT = default_metrics("point")


def test_point_metrics_by_hand() -> None:
    # rounds: p = [0.01, -0.02, 0.03, 0.0], r = [0.02, 0.01, 0.015, 0.005]
    data = ModelWindow(
        values=[-100.0, -300.0, -400.0, -50.0, -250.0],  # one more: a penalised FAILED prediction
        scheduled=6,
        scored=4,
        results=[
            {"value": -100.0, "hit": 1},
            {"value": -300.0, "hit": 0},
            {"value": -400.0, "hit": 0},
            {"value": -50.0},
        ],
        predictions=[0.01, -0.02, 0.03, 0.0],
        realised=[0.02, 0.01, 0.015, 0.005],
    )
    out = model_metrics(data, ALL_POINT, seed=1)
    assert out["coverage"] == pytest.approx(4 / 6)
    assert out["n"] == 5
    assert out["mean"] == pytest.approx(-1100 / 5)
    # signs p: +,-,+,0 ; r: +,+,+,+ -> two agreements in four
    assert out["hit_rate"] == pytest.approx(0.5)
    # pnl = [0.02, -0.01, 0.015, 0]: mean 0.00625, deviations .01375 -.01625 .00875 -.00625, ddof 1
    sd = math.sqrt((0.01375**2 + 0.01625**2 + 0.00875**2 + 0.00625**2) / 3)
    assert out["sharpe"] == pytest.approx(0.00625 / sd)
    assert out["sharpe"] == pytest.approx(0.4539, abs=1e-4)
    # cumulative 0, .02, .01, .025, .025: the fall from .02 to .01
    assert out["max_drawdown"] == pytest.approx(0.01)
    # ranks p: [3, 1, 4, 2]; r: [4, 2, 3, 1] -> d = [-1, -1, 1, 1], rho = 1 - 6*4/(4*15) = 0.6
    assert out["ic"] == pytest.approx(0.6)
    assert out["ic"] == pytest.approx(stats.spearmanr(data.predictions, data.realised).statistic)
    assert out["hit"] == pytest.approx(1 / 3)  # the extra key: mean over the results that have it
    low, high = out["mean_ci_low"], out["mean_ci_high"]
    assert low is not None and high is not None and low < out["mean"] < high
    assert list(out) == [
        "coverage",
        "n",
        "mean",
        "mean_ci_low",
        "mean_ci_high",
        "hit",
        "ic",
        "hit_rate",
        "sharpe",
        "max_drawdown",
    ]


def test_ic_matches_scipy_on_random_series() -> None:
    rng = np.random.default_rng(7)
    p, r = rng.normal(size=50), rng.normal(size=50)
    p[10] = p[11]  # a tie
    out = model_metrics(ModelWindow(predictions=list(p), realised=list(r)), ("ic",), seed=0)
    assert out["ic"] == pytest.approx(stats.spearmanr(p, r).statistic, abs=1e-12)


def test_bootstrap_is_the_percentile_interval_and_deterministic() -> None:
    values = [1.0, 2.0, 2.5, 4.0, 7.0, 3.0, 0.5, 9.0]
    seed = bootstrap_seed("m1", "score_recent")
    out = model_metrics(ModelWindow(values=values), ("mean_ci",), seed)
    again = model_metrics(ModelWindow(values=values), ("mean_ci",), seed)
    assert out == again
    other = model_metrics(ModelWindow(values=values), ("mean_ci",), bootstrap_seed("m2", "score_recent"))
    assert other != out  # seeded by the model
    # the same resamples drawn independently: scipy draws indices with rng.integers, batch by batch
    rng = np.random.default_rng(seed)
    data = np.asarray(values)
    indices = rng.integers(0, len(values), (BOOTSTRAP_RESAMPLES, len(values)))
    means = data[indices].mean(axis=1)
    assert out["mean_ci_low"] == pytest.approx(np.percentile(means, 2.5), rel=1e-9)
    assert out["mean_ci_high"] == pytest.approx(np.percentile(means, 97.5), rel=1e-9)


def test_undefined_values_are_none_and_json_safe() -> None:
    out = model_metrics(ModelWindow(values=[5.0], scheduled=0, predictions=[0.1], realised=[0.2]), ALL_POINT, seed=0)
    assert out["coverage"] is None and out["mean"] == 5.0
    assert out["mean_ci_low"] is None and out["mean_ci_high"] is None
    assert out["ic"] is None and out["sharpe"] is None
    assert out["hit_rate"] == 1.0 and out["max_drawdown"] == 0.0
    empty = model_metrics(ModelWindow(), ALL_POINT, seed=0)
    assert empty["n"] == 0 and empty["mean"] is None and empty["hit_rate"] is None and empty["max_drawdown"] is None
    # constant series: no rank correlation, no deviation
    flat = model_metrics(ModelWindow(predictions=[1.0] * 4, realised=[0.1, 0.2, 0.3, 0.4]), ("ic", "sharpe"), 0)
    assert flat == {"ic": None, "sharpe": pytest.approx(0.25 / stats.tstd([0.1, 0.2, 0.3, 0.4]))}
    assert sharpe([0.01, 0.01, 0.01]) is None
    json.dumps([out, empty, flat], allow_nan=False)


def test_max_drawdown_counts_from_zero() -> None:
    assert max_drawdown([-1.0, -2.0, 4.0, -3.0]) == pytest.approx(3.0)  # 0 -> -3 first, then 1 -> -2
    assert max_drawdown([-5.0, 1.0]) == pytest.approx(5.0)
    assert max_drawdown([1.0, 2.0]) == 0.0


def test_pit_coverage_by_hand() -> None:
    pits = [0.5, 0.3, 0.74, 0.76, 0.05, 0.95, 0.92, 0.1]
    out = model_metrics(ModelWindow(pits=pits), ("calibration",), 0)
    # central 50 %: [.25, .75] holds .5 .3 .74; 80 %: [.1, .9] also .76 .1; 90 %: [.05, .95] all eight
    assert out == {"pit_50": pytest.approx(3 / 8), "pit_80": pytest.approx(5 / 8), "pit_90": pytest.approx(1.0)}
    assert pit_values({"pit": [0.2, 1.5, "x", True, 0.9]}) == [0.2, 0.9]
    assert pit_values({"pit": 0.4}) == [0.4]
    assert pit_values({"value": 1}) == []


def test_extra_keys_clash_and_skip_non_numbers() -> None:
    results = [{"value": 1.0, "n": 3, "success": True, "late_from": "x", "edge": 2.0}, {"value": 2.0, "edge": 4.0}]
    out = model_metrics(ModelWindow(values=[1.0, 2.0], results=results), ("n", "keys"), 0)
    assert out == {"n": 2, "edge": 3.0, "result_n": 3.0}


def test_the_contract_chooses_and_refuses_unknown_metrics() -> None:
    assert CrunchContract().metric_names == ALL_POINT
    assert CrunchContract(output_kind="quantiles").metric_names == default_metrics("quantiles")
    assert "calibration" in default_metrics("density_path") and "ic" not in default_metrics("density_path")
    assert CrunchContract(metrics=("n", "ic")).metric_names == ("n", "ic")
    with pytest.raises(ValueError, match="metrics: unknown metric 'sortino'"):
        CrunchContract(metrics=("n", "sortino"))
    with pytest.raises(ValueError, match="metrics: 'ic' applies to point outputs"):
        CrunchContract(output_kind="quantiles", metrics=("ic",))
    with pytest.raises(ValueError, match="metrics: 'calibration' applies to"):
        CrunchContract(metrics=("calibration",))


def test_density_cdf_against_scipy_and_a_hand_mixture() -> None:
    from coordinator_core.scoring.densities import DensityError, density_cdf

    norm = {"type": "builtin", "name": "norm", "params": {"loc": 1.0, "scale": 2.0}}
    assert density_cdf(norm, 1.0) == pytest.approx(0.5)
    assert density_cdf(norm, 3.0) == pytest.approx(0.8413447460685429)  # Phi(1)
    t = {"type": "scipy", "name": "t", "params": {"df": 4.0}}
    mixture = {"type": "mixture", "components": [{"density": norm, "weight": 0.3}, {"density": t, "weight": 0.7}]}
    assert density_cdf(mixture, 0.5) == pytest.approx(
        0.3 * stats.norm.cdf(0.5, loc=1, scale=2) + 0.7 * stats.t.cdf(0.5, df=4), rel=1e-12
    )
    with pytest.raises(DensityError):
        density_cdf({"type": "statistics", "name": "normal", "params": {}}, 0.0)


def test_density_pits_use_the_observed_increments_of_the_coarsest_step() -> None:
    from coordinator_core.services.metrics import density_pits

    truth = {
        "round_ts": 0,
        "horizon_seconds": 120,
        "steps": [60, 120],
        "series": [[0, 100.0], [60, 101.0], [120, 99.5]],
    }
    unit = {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 1.0}}
    output = {"60": [unit, unit], "120": [{"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 0.5}}]}
    # the 120 s increment: 99.5 - 100 = -0.5, under N(0, 0.5^2): Phi(-1)
    assert density_pits(output, truth) == [pytest.approx(0.15865525393145707)]
    assert density_pits({"60": [unit, unit]}, truth) == []  # no density at the coarsest step
    flat = {**truth, "series": [[0, 100.0], [120, 100.0]]}
    assert density_pits(output, flat) == [pytest.approx(0.5)]
