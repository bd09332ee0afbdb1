"""Closed-form, ensemble, quantile, interval, log and point scores: hand-computed values and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from scipy import integrate

from coordinator_core.scoring.densities import DensityError
from coordinator_core.scoring.metrics import (
    crps_ensemble,
    crps_normal,
    crps_normal_mixture,
    direction_hit,
    interval_coverage,
    log_score,
    log_score_normal,
    mae,
    mse,
    pinball_loss,
)


def numeric_crps(cdf, y: float, lo: float = -60.0, hi: float = 60.0) -> float:
    """The definition, integrated numerically: int (F(z) - 1[z >= y])^2 dz."""
    left, _ = integrate.quad(lambda z: cdf(z) ** 2, lo, y, limit=200)
    right, _ = integrate.quad(lambda z: (1 - cdf(z)) ** 2, y, hi, limit=200)
    return left + right


def test_crps_normal_by_hand_and_by_definition() -> None:
    # y = mu: sigma (2 phi(0) - 1/sqrt(pi)) = 2 * 0.3989422804 - 0.5641895835 = 0.2336949772
    assert crps_normal(0.0, 0.0, 1.0) == pytest.approx(0.2336949772, rel=1e-9)
    assert crps_normal(3.0, 3.0, 2.0) == pytest.approx(2 * 0.2336949772, rel=1e-9)
    assert crps_normal(1.3, 0.2, 0.7) == pytest.approx(numeric_crps(st.norm(0.2, 0.7).cdf, 1.3), rel=1e-7)
    assert crps_normal([0.0, 1.0], 0.0, 1.0).shape == (2,)
    with pytest.raises(ValueError, match="sigma"):
        crps_normal(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        crps_normal(math.nan, 0.0, 1.0)


def test_crps_normal_mixture_by_definition_and_errors() -> None:
    mu, sigma, w = [0.1, -0.3, 1.0], [0.4, 2.1, 0.7], [1.0, 2.0, 7.0]  # normalised to 0.1, 0.2, 0.7
    expected = numeric_crps(
        lambda z: sum(wi / 10 * st.norm.cdf(z, m, s) for m, s, wi in zip(mu, sigma, w, strict=True)), 0.0
    )
    assert crps_normal_mixture(0.0, mu, sigma, w) == pytest.approx(expected, rel=1e-7)
    assert crps_normal_mixture(0.0, mu, sigma, w) == pytest.approx(0.46806866729387275, rel=1e-12)
    assert crps_normal_mixture(0.5, [0.0], [1.0]) == pytest.approx(crps_normal(0.5, 0.0, 1.0), rel=1e-12)
    by_columns = crps_normal_mixture(0.0, np.array([mu]).T, np.array([sigma]).T, np.array([w]).T, axis=0)
    assert by_columns == pytest.approx(0.46806866729387275, rel=1e-12)
    with pytest.raises(ValueError, match="negative"):
        crps_normal_mixture(0.0, mu, sigma, [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="sum to 0"):
        crps_normal_mixture(0.0, mu, sigma, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="sigma"):
        crps_normal_mixture(0.0, mu, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="components"):
        crps_normal_mixture(0.0, 0.0, 1.0)


def test_crps_ensemble_by_hand() -> None:
    # members 0 and 1, y = 0.3: E|X - y| = 0.5, E|X - X'| = 0.5 -> 0.25
    assert crps_ensemble(0.3, [0.0, 1.0]) == pytest.approx(0.25, rel=1e-15)
    # a one-member ensemble is the absolute error
    assert crps_ensemble(2.0, [5.0]) == pytest.approx(3.0)
    assert crps_ensemble([0.3, 2.0], [[0.0, 5.0], [1.0, 5.0]], axis=0).tolist() == pytest.approx([0.25, 3.0])
    with pytest.raises(ValueError, match="non-empty"):
        crps_ensemble(0.0, np.zeros((2, 0)))
    with pytest.raises(ValueError, match="NaN"):
        crps_ensemble(0.0, [0.0, math.nan])


def test_pinball_loss_by_hand() -> None:
    # q = 0.5 above y = 0.3 at alpha 0.2: (1 - 0.2)(0.5 - 0.3) = 0.16; below: alpha (y - q)
    assert pinball_loss(0.3, 0.5, 0.2) == pytest.approx(0.16)
    assert pinball_loss(0.7, 0.5, 0.2) == pytest.approx(0.04)
    assert pinball_loss(1.0, [0.0, 1.0, 2.0], [0.1, 0.5, 0.9]).tolist() == pytest.approx([0.1, 0.0, 0.1])
    with pytest.raises(ValueError, match="levels"):
        pinball_loss(0.0, 0.0, 1.5)


def test_interval_coverage_by_hand() -> None:
    assert interval_coverage([0.0, 1.0, 2.0, -0.1], 0.0, 1.0).tolist() == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="lower"):
        interval_coverage(0.0, 1.0, 0.0)


def test_log_scores_by_hand() -> None:
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    assert log_score_normal(0.0, 0.0, 1.0) == pytest.approx(half_log_2pi)
    assert log_score_normal(2.0, 0.0, 2.0) == pytest.approx(half_log_2pi + math.log(2.0) + 0.5)
    d = {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 2.0}}
    laplace = {"type": "builtin", "name": "laplace", "params": {"loc": 1.0, "scale": 0.5}}
    expon = {"type": "builtin", "name": "expon", "params": {"loc": 0.0, "scale": 1.0}}
    got = log_score([d, laplace, expon], [2.0, 1.0, -1.0])
    assert got[0] == pytest.approx(half_log_2pi + math.log(2.0) + 0.5)
    assert got[1] == pytest.approx(math.log(2 * 0.5))  # -ln(1 / (2 b)) at the mode
    assert got[2] == math.inf
    assert log_score([d], [2.0], pdf="densitypdf")[0] == pytest.approx(got[0])
    with pytest.raises(ValueError, match="shape"):
        log_score([d], [1.0, 2.0])
    with pytest.raises(DensityError):
        log_score([{"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": -1.0}}], [0.0])
    with pytest.raises(ValueError, match="sigma"):
        log_score_normal(0.0, 0.0, -1.0)


def test_point_errors_and_direction_by_hand() -> None:
    assert mse([1.0, 2.0], [0.0, 0.0]) == pytest.approx(2.5)
    assert mae([1.0, -2.0], [0.0, 0.0]) == pytest.approx(1.5)
    assert mse([[1.0, 3.0], [0.0, 0.0]], 0.0, axis=1).tolist() == [5.0, 0.0]
    assert mae([[1.0, 3.0], [0.0, 1.0]], 1.0, axis=0).tolist() == [0.5, 1.0]
    assert direction_hit([0.5, -0.5, 0.0, 0.0, 2.0], [1.0, 1.0, 0.0, 1.0, 3.0]).tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="no values"):
        mse([], [])
    with pytest.raises(ValueError, match="no values"):
        mae([], [])
    with pytest.raises(ValueError, match="NaN"):
        direction_hit([math.nan], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        mae([1.0], [math.nan])
