"""CRPS of densities on a finite grid, exactly as the CrunchDAO games' evaluators compute it.

Both ``condorgame`` (0.5.3) and ``crunch-synth`` (0.15.0) score a density :math:`f` of a price
increment against the observed increment :math:`x` with ``crps_integral``: on the grid
:math:`z_0 < \\dots < z_{P-1}`, ``numpy.linspace(t_min, t_max, P)``, :math:`\\Delta = z_1 - z_0`,

.. math::

    \\tilde f_i = f(z_i) / I \\ \\text{if}\\ I = \\operatorname{trap}(f, z) > 0
        \\quad(\\text{crunch-synth only; condorgame keeps } \\tilde f_i = f(z_i)),

    F_i = \\operatorname{clip}\\Big(\\Delta \\sum_{j \\le i} \\tilde f_j,\\ 0,\\ 1\\Big),
    \\qquad
    \\mathrm{CRPS} = \\operatorname{trap}\\big((F_i - \\mathbf 1[z_i \\ge x])^2,\\ z\\big),

where :math:`\\operatorname{trap}(y, z) = \\sum_i (z_{i+1} - z_i)(y_i + y_{i+1})/2`. The bounds
are :math:`\\pm K\\,t_{\\text{asset}}` with :math:`K = \\sqrt{\\text{step}/\\text{base\\_step}}` for
``step > base_step`` and :math:`K = 1` otherwise (:func:`crps_bounds`).

The condorgame evaluator evaluates :math:`f` point by point with ``densitypdf.density_pdf`` and does
**not** renormalise it; crunch-synth evaluates it with its vectorised copy
(``density_pdf_vectorized``) and renormalises. ``evaluator`` selects one of the two.

:func:`crps_on_grid` scores a whole batch at once: densities are grouped by grid (same bounds),
parsed into parameter arrays by family (:mod:`coordinator_core.scoring.densities`), and evaluated
on ``(rows, P)`` chunks; both trapezoid integrals are matrix-vector products with the trapezoid
weights :math:`w_0 = d_0/2,\\ w_i = (d_{i-1} + d_i)/2,\\ w_{P-1} = d_{P-2}/2`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from coordinator_core.scoring.densities import DensityBatch, DensityError, FloatArray, PdfImpl, parse_densities

Evaluator = Literal["condorgame", "crunch_synth"]
EVALUATORS: dict[Evaluator, tuple[PdfImpl, bool]] = {
    # evaluator -> (pdf implementation, renormalise by the trapezoid integral)
    "condorgame": ("densitypdf", False),
    "crunch_synth": ("crunch_synth", True),
}
#: Grid values evaluated together (rows x points): a block that stays in cache.
CHUNK_ELEMENTS = 32768


def crps_bounds(t_asset: float, step: int, base_step: int) -> tuple[float, float]:
    """Integration bounds of a step's CRPS, as both evaluators compute them.

    .. math:: K = \\sqrt{\\text{step}/\\text{base\\_step}} \\text{ if step > base\\_step, else } 1,
              \\qquad [t_{\\min}, t_{\\max}] = [-K t_{\\text{asset}},\\ K t_{\\text{asset}}]

    Raises
    ------
    ValueError
        If ``t_asset``, ``step`` or ``base_step`` is not positive.
    """
    if not (t_asset > 0 and step > 0 and base_step > 0):
        raise ValueError(f"t_asset, step and base_step must be positive (got {t_asset}, {step}, {base_step})")
    k = math.sqrt(step / base_step) if step > base_step else 1
    return -k * t_asset, k * t_asset


def trapezoid_weights(grid: FloatArray) -> FloatArray:
    """Weights :math:`w` with :math:`\\sum_i w_i y_i = \\operatorname{trap}(y, z)` for the grid ``z``.

    Raises
    ------
    ValueError
        For a grid that is not 1-D with at least two points.
    """
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(f"a grid needs at least two points on one axis (got shape {grid.shape})")
    d = np.diff(grid)
    w = np.empty_like(grid)
    w[0] = d[0] / 2.0
    w[-1] = d[-1] / 2.0
    w[1:-1] = (d[:-1] + d[1:]) / 2.0
    return w


def _broadcast(value: npt.ArrayLike, n: int, what: str) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{what} must be a scalar or have shape ({n},) (got {array.shape})")
    return array


def crps_on_grid_checked(
    densities: Sequence[Any],
    observations: npt.ArrayLike,
    t_min: npt.ArrayLike,
    t_max: npt.ArrayLike,
    *,
    num_points: int,
    evaluator: Evaluator,
) -> tuple[FloatArray, list[str | None]]:
    """Grid CRPS of every density against its observation, never raising for one density.

    Parameters
    ----------
    densities : sequence of mapping
        ``B`` densities (``densitypdf`` format).
    observations : array_like
        Shape ``(B,)``: the observed increments :math:`x`.
    t_min, t_max : array_like
        Scalars or shape ``(B,)``: each density's grid bounds (see :func:`crps_bounds`).
    num_points : int
        Grid size :math:`P` (condorgame 256, crunch-synth 1024).
    evaluator : {"condorgame", "crunch_synth"}
        Whose ``crps_integral`` to reproduce.

    Returns
    -------
    values : numpy.ndarray
        Shape ``(B,)``; NaN where the density cannot be evaluated (and where the evaluator itself
        gets NaN, e.g. a scipy density with ``scale <= 0``).
    errors : list of (str or None)
        Why each NaN-by-error row cannot be evaluated (the evaluator raises there), else None.

    Raises
    ------
    ValueError
        For inconsistent shapes, ``num_points < 2``, an unknown evaluator, or bounds that are not
        finite with ``t_min < t_max``.
    """
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {sorted(EVALUATORS)} (got {evaluator!r})")
    if not isinstance(num_points, int | np.integer) or num_points < 2:
        raise ValueError(f"num_points must be an integer >= 2 (got {num_points!r})")
    impl, renormalize = EVALUATORS[evaluator]
    n = len(densities)
    x = _broadcast(observations, n, "observations")
    lower = _broadcast(t_min, n, "t_min")
    upper = _broadcast(t_max, n, "t_max")
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)) and np.all(lower < upper)):
        raise ValueError("bounds must be finite with t_min < t_max")
    values = np.full(n, np.nan)
    errors: list[str | None] = [None] * n
    if n == 0:
        return values, errors
    pairs = np.stack([lower, upper], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    for g, (lo, hi) in enumerate(unique):
        rows = np.flatnonzero(inverse.reshape(-1) == g)
        grid = np.linspace(lo, hi, int(num_points))
        batch = parse_densities([densities[int(i)] for i in rows], impl)
        values[rows] = _crps_block(batch, x[rows], grid, renormalize)
        for local, reason in batch.errors.items():
            values[rows[local]] = np.nan
            errors[int(rows[local])] = reason
    return values, errors


def crps_on_grid(
    densities: Sequence[Any],
    observations: npt.ArrayLike,
    t_min: npt.ArrayLike,
    t_max: npt.ArrayLike,
    *,
    num_points: int,
    evaluator: Evaluator,
) -> FloatArray:
    """Grid CRPS of every density against its observation (see the module docstring for the formula).

    Same as :func:`crps_on_grid_checked`, but raises for the first density the evaluator could not
    evaluate.

    Raises
    ------
    DensityError
        With ``index``, for the first density the evaluator raises on.
    ValueError
        For inconsistent arguments.

    Examples
    --------
    >>> d = {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 1.0}}
    >>> float(crps_on_grid([d], [0.0], -10, 10, num_points=1024, evaluator="crunch_synth")[0])  # doctest: +ELLIPSIS
    0.2336...
    """
    values, errors = crps_on_grid_checked(
        densities, observations, t_min, t_max, num_points=num_points, evaluator=evaluator
    )
    for index, reason in enumerate(errors):
        if reason is not None:
            raise DensityError(reason, index)
    return values


_INDICATORS: dict[int, FloatArray] = {}


def _indicator_table(size: int) -> FloatArray:
    """Row ``k`` is :math:`\\mathbf 1[i \\ge k]` over ``size`` points (``k = 0..size``); row ``k`` is
    the indicator ``z >= x`` when ``k = searchsorted(z, x, "left")``, the first ``z_i >= x``
    (a NaN ``x`` sorts last: an all-zero row, as ``z >= nan`` is false everywhere)."""
    table = _INDICATORS.get(size)
    if table is None:
        table = _INDICATORS[size] = np.triu(np.ones((size + 1, size)))
    return table


def _crps_block(batch: DensityBatch, x: FloatArray, grid: FloatArray, renormalize: bool) -> FloatArray:
    """Grid CRPS of every row of ``batch`` on one grid, block by block, a cache-sized chunk at a time.

    The step :math:`\\Delta` is folded into the pdf (``u = \\Delta f``), so the CDF is
    ``cumsum(u)``, times :math:`\\Delta / (u \\cdot w)` when renormalising with a positive integral.
    """
    weights = trapezoid_weights(grid)
    dt = float(grid[1] - grid[0])
    out = np.full(batch.size, np.nan)
    chunk = max(1, CHUNK_ELEMENTS // grid.size)
    steps = _indicator_table(grid.size)
    with np.errstate(all="ignore"):
        for block in batch.blocks:
            for start in range(0, block.rows.size, chunk):
                stop = min(start + chunk, block.rows.size)
                rows = block.rows[start:stop]
                cdf = block.evaluate(grid, slice(start, stop), batch.impl, dt)
                if renormalize:
                    integral = _row_dot(cdf, weights)
                    scale = np.where(integral > 0, dt / integral, 1.0)
                np.cumsum(cdf, axis=1, out=cdf)
                if renormalize:
                    cdf *= scale[:, None]
                np.clip(cdf, 0.0, 1.0, out=cdf)
                cdf -= steps[np.searchsorted(grid, x[rows], side="left")]  # 1[z_i >= x]
                np.multiply(cdf, cdf, out=cdf)
                out[rows] = _row_dot(cdf, weights, overwrite=True)
    return out


def _row_dot(matrix: FloatArray, weights: FloatArray, overwrite: bool = False) -> FloatArray:
    """``matrix @ weights``, row by row in one fixed summation order (numpy's pairwise sum along each
    row), so a prediction's score never depends on how many others share its batch: BLAS picks a
    different kernel (and order) for one row than for many."""
    product = np.multiply(matrix, weights, out=matrix if overwrite else None)
    return product.sum(axis=1)
