"""Scoring rules over numpy arrays: closed-form CRPS, ensemble CRPS, quantiles, intervals, log score,
point errors. Lower is better for every loss here; ``direction_hit`` and ``interval_coverage``
are indicators (1 = hit / covered).

Each function broadcasts its arguments like numpy and returns an array of the broadcast shape
(``axis`` arguments reduce over ensemble members, mixture components or quantile levels).
``scoringrules`` does the work for the closed forms and ensembles; the log score of
``densitypdf``-format densities evaluates them with :func:`coordinator_core.scoring.densities.density_pdf`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scoringrules as sr  # type: ignore[import-untyped]

from coordinator_core.scoring.densities import PdfImpl, density_pdf

FloatArray = npt.NDArray[np.float64]


def _floats(value: npt.ArrayLike, what: str) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if np.isnan(array).any():
        raise ValueError(f"{what} contains NaN")
    return array


def crps_normal(observations: npt.ArrayLike, mu: npt.ArrayLike, sigma: npt.ArrayLike) -> FloatArray:
    """Closed-form CRPS of :math:`N(\\mu, \\sigma^2)`.

    .. math:: \\mathrm{CRPS} = \\sigma\\Big(z\\,(2\\Phi(z) - 1) + 2\\varphi(z) - \\frac{1}{\\sqrt\\pi}\\Big),
              \\quad z = \\frac{y - \\mu}{\\sigma}

    Raises
    ------
    ValueError
        If a ``sigma`` is not positive or an argument is NaN.
    """
    y, m, s = _floats(observations, "observations"), _floats(mu, "mu"), _floats(sigma, "sigma")
    if np.any(s <= 0):
        raise ValueError("sigma must be positive")
    return np.asarray(sr.crps_normal(y, m, s, backend="numpy"), dtype=np.float64)


def crps_normal_mixture(
    observations: npt.ArrayLike,
    mu: npt.ArrayLike,
    sigma: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    axis: int = -1,
) -> FloatArray:
    """Closed-form CRPS of a mixture of normals, components along ``axis``.

    .. math:: \\mathrm{CRPS} = \\sum_i w_i A(y - \\mu_i, \\sigma_i^2)
              - \\tfrac12 \\sum_{i,j} w_i w_j A(\\mu_i - \\mu_j, \\sigma_i^2 + \\sigma_j^2),
              \\quad A(m, v) = m\\,(2\\Phi(m/\\sqrt v) - 1) + 2\\sqrt v\\,\\varphi(m/\\sqrt v)

    with the weights normalised to sum to 1 (equal weights when ``weights`` is None).

    Raises
    ------
    ValueError
        For a non-positive ``sigma``, a negative weight, weights summing to 0, or NaN arguments.
    """
    y, m, s = _floats(observations, "observations"), _floats(mu, "mu"), _floats(sigma, "sigma")
    m, s = np.broadcast_arrays(m, s)
    if m.ndim == 0:
        raise ValueError("mu and sigma need a components axis")
    if np.any(s <= 0):
        raise ValueError("sigma must be positive")
    if weights is None:
        w = np.ones_like(m)
    else:
        w = np.broadcast_to(_floats(weights, "weights"), m.shape)
    if np.any(w < 0):
        raise ValueError("weights must not be negative")
    total = w.sum(axis=axis, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("weights must not sum to 0")
    w = w / total
    m, s, w = (np.moveaxis(a, axis, -1) for a in (m, s, w))
    return np.asarray(sr.crps_mixnorm(y, m, s, w, backend="numpy"), dtype=np.float64)


def crps_ensemble(observations: npt.ArrayLike, members: npt.ArrayLike, axis: int = -1) -> FloatArray:
    """CRPS of the empirical distribution of an ensemble, members along ``axis``.

    .. math:: \\mathrm{CRPS} = \\frac1M \\sum_i |x_i - y| - \\frac{1}{2M^2} \\sum_{i,j} |x_i - x_j|

    (``scoringrules.crps_ensemble``, quantile-decomposition estimator: exact for the empirical
    distribution, :math:`O(M \\log M)`). For NaN members, see
    :func:`coordinator_core.scoring.ensemble.crps_ensemble_nan`.
    """
    fct = _floats(members, "members")
    if fct.ndim == 0 or fct.shape[axis] == 0:
        raise ValueError("members need a non-empty ensemble axis")
    y = _floats(observations, "observations")
    return np.asarray(sr.crps_ensemble(y, fct, m_axis=axis, estimator="qd", backend="numpy"), dtype=np.float64)


def pinball_loss(observations: npt.ArrayLike, quantiles: npt.ArrayLike, levels: npt.ArrayLike) -> FloatArray:
    """Pinball (quantile) loss of the predicted :math:`\\alpha`-quantile :math:`q`.

    .. math:: \\rho_\\alpha(y, q) = (\\mathbf 1[y < q] - \\alpha)(q - y)
              = \\max\\big(\\alpha (y - q),\\ (1 - \\alpha)(q - y)\\big)

    Broadcasts ``observations``, ``quantiles`` and ``levels`` (average over the level axis yourself
    for a CRPS approximation: :math:`\\mathrm{CRPS} \\approx 2\\,\\overline{\\rho}`).

    Raises
    ------
    ValueError
        If a level is outside [0, 1] or an argument is NaN.
    """
    y, q, a = _floats(observations, "observations"), _floats(quantiles, "quantiles"), _floats(levels, "levels")
    if np.any((a < 0) | (a > 1)):
        raise ValueError("quantile levels must be in [0, 1]")
    return np.asarray(sr.quantile_score(y, q, a, backend="numpy"), dtype=np.float64)


def interval_coverage(observations: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> FloatArray:
    """1.0 where the observation lies in the closed interval :math:`[l, u]`, else 0.0.

    .. math:: c = \\mathbf 1[l \\le y \\le u]

    Raises
    ------
    ValueError
        If a lower bound exceeds its upper bound or an argument is NaN.
    """
    y, lo, hi = _floats(observations, "observations"), _floats(lower, "lower"), _floats(upper, "upper")
    if np.any(lo > hi):
        raise ValueError("lower bounds must not exceed upper bounds")
    return ((lo <= y) & (y <= hi)).astype(np.float64)


def log_score(densities: Sequence[Any], observations: npt.ArrayLike, pdf: PdfImpl = "crunch_synth") -> FloatArray:
    """Negative log density of each observation under its ``densitypdf``-format density.

    .. math:: \\mathrm{LogS}(f, y) = -\\ln f(y)

    ``inf`` where :math:`f(y) = 0`.

    Raises
    ------
    DensityError
        For a density the chosen implementation cannot evaluate.
    ValueError
        If there is not one observation per density.
    """
    y = _floats(observations, "observations")
    if y.shape != (len(densities),):
        raise ValueError(f"observations must have shape ({len(densities)},) (got {y.shape})")
    values = density_pdf(densities, y[:, None], pdf=pdf)[:, 0]
    with np.errstate(divide="ignore"):
        return -np.log(values)


def log_score_normal(observations: npt.ArrayLike, mu: npt.ArrayLike, sigma: npt.ArrayLike) -> FloatArray:
    """Log score of :math:`N(\\mu, \\sigma^2)`: :math:`\\tfrac12 \\ln(2\\pi\\sigma^2) + (y - \\mu)^2 / (2\\sigma^2)`.

    Raises
    ------
    ValueError
        If a ``sigma`` is not positive or an argument is NaN.
    """
    y, m, s = _floats(observations, "observations"), _floats(mu, "mu"), _floats(sigma, "sigma")
    if np.any(s <= 0):
        raise ValueError("sigma must be positive")
    return np.asarray(sr.logs_normal(y, m, s, backend="numpy"), dtype=np.float64)


def mse(predictions: npt.ArrayLike, observations: npt.ArrayLike, axis: int | None = None) -> FloatArray:
    """Mean squared error :math:`\\frac1n \\sum (\\hat y - y)^2` over ``axis`` (None: all elements).

    Raises
    ------
    ValueError
        For NaN arguments or an empty reduction.
    """
    p, y = _floats(predictions, "predictions"), _floats(observations, "observations")
    error = np.broadcast_arrays(p, y)
    diff = error[0] - error[1]
    if diff.size == 0:
        raise ValueError("no values")
    return np.asarray(np.mean(diff * diff, axis=axis), dtype=np.float64)


def mae(predictions: npt.ArrayLike, observations: npt.ArrayLike, axis: int | None = None) -> FloatArray:
    """Mean absolute error :math:`\\frac1n \\sum |\\hat y - y|` over ``axis`` (None: all elements).

    Raises
    ------
    ValueError
        For NaN arguments or an empty reduction.
    """
    p, y = _floats(predictions, "predictions"), _floats(observations, "observations")
    error = np.broadcast_arrays(p, y)
    diff = error[0] - error[1]
    if diff.size == 0:
        raise ValueError("no values")
    return np.asarray(np.mean(np.abs(diff), axis=axis), dtype=np.float64)


def direction_hit(predictions: npt.ArrayLike, observations: npt.ArrayLike) -> FloatArray:
    """1.0 where the predicted change has the sign of the observed one, else 0.0.

    .. math:: h = \\mathbf 1[\\operatorname{sgn}\\hat y = \\operatorname{sgn} y]

    (a flat observation is hit only by a flat prediction).

    Raises
    ------
    ValueError
        For NaN arguments.
    """
    p, y = _floats(predictions, "predictions"), _floats(observations, "observations")
    return (np.sign(p) == np.sign(y)).astype(np.float64)
