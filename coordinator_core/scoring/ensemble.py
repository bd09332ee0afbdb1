"""CRPS of ensembles of price paths: Synth's (Bittensor subnet 50) price and volatility scores.

Ported rules, as ``crunch_synth/synth_score.py`` and ``crunch_synth/volatility.py`` (crunch-synth
0.15.0) state them after Synth's ``synth/validator/crps_calculation.py``:

* the ensemble CRPS of members :math:`x_1..x_M` against :math:`y`, NaN members ignored,

  .. math:: \\mathrm{CRPS} = \\frac1M \\sum_i |x_i - y| - \\frac1{2M^2} \\sum_{i,j} |x_i - x_j|

  (``scoringrules.crps_ensemble``'s quantile-decomposition estimator computes exactly this);
* the **price CRPS** of simulated paths against the realized path: for every scoring interval,
  the changes in basis points over that interval (``_abs`` intervals: the absolute prices, their
  CRPS then divided by the last realized price and times 1e4; ``_gaps`` intervals: the first change
  only), each observed change scored against the ensemble, summed; -1 when a path has a zero price;
* the **volatility CRPS**: for each block size, the std (ddof 1, in bps) of the 1-step returns of
  every block of every path, each observed block's realized volatility scored against the
  ensemble of simulated ones, summed and weighted.

All functions take a batch: paths of shape ``(..., M, T + 1)`` (leading axes, e.g. trackers).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import scoringrules as sr  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]


def crps_ensemble_nan(observations: npt.ArrayLike, members: npt.ArrayLike) -> FloatArray:
    """Ensemble CRPS, members along the last axis, NaN members ignored (Synth's ``crps_ensemble``).

    .. math:: \\mathrm{CRPS}(y; x_{1..n}) = \\frac{2}{n^2} \\sum_{i=1}^{n}
              \\big(\\mathbf 1[x_{(i)} > y]\\,n - (i - \\tfrac12)\\big)\\,(x_{(i)} - y)

    over the :math:`n` non-NaN sorted members (equal to :math:`E|X-y| - \\tfrac12 E|X-X'|`). NaN when
    :math:`y` is NaN or no member is left.

    Parameters
    ----------
    observations : array_like
        Shape ``S`` (broadcast against ``members[..., 0]``).
    members : array_like
        Shape ``S + (M,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``S``.
    """
    fct = np.asarray(members, dtype=np.float64)
    if fct.ndim == 0 or fct.shape[-1] == 0:
        raise ValueError("members need a non-empty last axis")
    obs = np.broadcast_to(np.asarray(observations, dtype=np.float64), fct.shape[:-1])
    missing = np.isnan(fct)
    if not missing.any():
        with np.errstate(all="ignore"):
            return np.asarray(sr.crps_ensemble(obs, fct, estimator="qd", backend="numpy"), dtype=np.float64)
    x = np.sort(fct, axis=-1)  # NaN last
    n = np.count_nonzero(~np.isnan(x), axis=-1)
    rank = np.arange(1, x.shape[-1] + 1) - 0.5
    y = obs[..., None]
    with np.errstate(invalid="ignore"):
        terms = np.where(x > y, n[..., None] - rank, -rank) * (x - y)
    terms = np.where(np.isnan(x), 0.0, terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 2.0 * terms.sum(axis=-1) / (n * n)
    return np.where((n == 0) | np.isnan(obs), np.nan, out)


def block_volatilities(paths: npt.ArrayLike, block_steps: int) -> FloatArray:
    """Realized volatility of every block of consecutive steps, in basis points.

    .. math:: r_k = 10^4 \\frac{p_{k+1} - p_k}{p_k}, \\qquad
              v_b = \\operatorname{std}_{\\text{ddof}=1}\\{ r_k : k \\in \\text{block } b,\\ r_k \\text{ not NaN} \\}

    NaN for a block with fewer than two observed returns; returns after the last whole block are
    dropped.

    Parameters
    ----------
    paths : array_like
        ``(..., T + 1)`` prices.
    block_steps : int
        Returns per block.

    Returns
    -------
    numpy.ndarray
        ``(..., T // block_steps)``.
    """
    if block_steps < 1:
        raise ValueError(f"block_steps must be >= 1 (got {block_steps})")
    p = np.asarray(paths, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = (np.diff(p, axis=-1) / p[..., :-1]) * 10_000
    n_blocks = returns.shape[-1] // block_steps
    blocks = returns[..., : n_blocks * block_steps].reshape(*returns.shape[:-1], n_blocks, block_steps)
    scorable = np.count_nonzero(~np.isnan(blocks), axis=-1) >= 2
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(blocks, axis=-1, ddof=1)
    return np.where(scorable, std, np.nan)


def volatility_crps(
    paths: npt.ArrayLike,
    real_path: npt.ArrayLike,
    time_increment: int,
    blocks: Mapping[str, tuple[int, float]],
) -> FloatArray:
    """Weighted volatility CRPS of simulated paths (``calculate_vol_crps_for_miner``), in Synth units.

    .. math:: V = \\sum_{\\text{block sizes } B} w_B \\sum_{b\\ \\text{observed}}
              \\mathrm{CRPS}\\big(v^{\\text{real}}_b;\\ \\{v^{(m)}_b\\}_m\\big)

    A block size with no observed block is left out.

    Parameters
    ----------
    paths : array_like
        ``(..., M, T + 1)`` simulated prices.
    real_path : array_like
        ``(T + 1,)`` realized prices, NaN for gaps.
    time_increment : int
        Seconds between path points.
    blocks : mapping name -> (block seconds, weight)
        E.g. ``{"vol_60min": (3600, 1.75), "vol_15min": (900, 0.4375), "vol_5min": (300, 0.1458...)}``.

    Returns
    -------
    numpy.ndarray
        Shape ``paths.shape[:-2]``.
    """
    sim = np.asarray(paths, dtype=np.float64)
    real = np.asarray(real_path, dtype=np.float64)
    if sim.ndim < 2 or real.shape != sim.shape[-1:]:
        raise ValueError(f"paths (..., M, T+1) and real_path (T+1,) disagree: {sim.shape} and {real.shape}")
    total = np.zeros(sim.shape[:-2])
    for seconds, weight in blocks.values():
        block_steps = int(seconds / time_increment)
        real_vol = block_volatilities(real[None, :], block_steps)[0]
        observed = np.flatnonzero(~np.isnan(real_vol))
        if observed.size == 0:
            continue
        sim_vol = block_volatilities(sim, block_steps)[..., observed]  # (..., M, k)
        crps = crps_ensemble_nan(real_vol[observed], np.moveaxis(sim_vol, -2, -1))  # (..., k)
        total = total + weight * crps.sum(axis=-1)
    return total


def _changes(paths: FloatArray, interval_steps: int, absolute: bool, gap: bool) -> FloatArray:
    prices = paths[..., ::interval_steps]
    if gap:
        prices = prices[..., :2]
    if absolute:
        return prices[..., 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.diff(prices, axis=-1) / prices[..., :-1]) * 10_000


def synth_price_crps(
    paths: npt.ArrayLike,
    real_path: npt.ArrayLike,
    time_increment: int,
    intervals: Mapping[str, int],
) -> FloatArray:
    """Synth's price CRPS of simulated paths (``calculate_crps_for_miner``); -1 when a path has a 0.

    For each interval of :math:`k` steps: changes :math:`c_j = 10^4 (p_{(j+1)k} - p_{jk}) / p_{jk}`
    (``_gaps``: :math:`j = 0` only; ``_abs``: the prices :math:`p_{(j+1)k}` themselves, with
    :math:`k` lowered while the realized path has a single point at that spacing), and

    .. math:: S = \\sum_{\\text{intervals}} \\sum_{j:\\ c^{\\text{real}}_j \\text{ observed}}
              \\mathrm{CRPS}(c^{\\text{real}}_j; \\{c^{(m)}_j\\}_m)
              \\ \\big(\\times 10^4 / p^{\\text{real}}_{T} \\text{ for } \\_abs\\big)

    Parameters
    ----------
    paths : array_like
        ``(..., M, T + 1)``.
    real_path : array_like
        ``(T + 1,)``, NaN for gaps.
    time_increment : int
    intervals : mapping name -> seconds
        E.g. crunch-synth's ``SCORING_INTERVALS[60]``.

    Returns
    -------
    numpy.ndarray
        Shape ``paths.shape[:-2]``.
    """
    sim = np.asarray(paths, dtype=np.float64)
    real = np.asarray(real_path, dtype=np.float64)
    if sim.ndim < 2 or real.shape != sim.shape[-1:]:
        raise ValueError(f"paths (..., M, T+1) and real_path (T+1,) disagree: {sim.shape} and {real.shape}")
    rejected = np.any(sim == 0, axis=(-2, -1))
    total = np.zeros(sim.shape[:-2])
    for name, seconds in intervals.items():
        steps = int(seconds / time_increment)
        absolute, gap = name.endswith("_abs"), name.endswith("_gaps")
        if absolute:
            while real[::steps].shape[0] == 1 and steps > 1:
                steps -= 1
        real_changes = _changes(real, steps, absolute, gap)
        observed = np.flatnonzero(~np.isnan(real_changes))
        if observed.size == 0:
            continue
        sim_changes = _changes(sim, steps, absolute, gap)[..., observed]  # (..., M, k)
        crps = crps_ensemble_nan(real_changes[observed], np.moveaxis(sim_changes, -2, -1))
        if absolute:
            crps = crps / real[-1] * 10_000
        total = total + crps.sum(axis=-1)
    return np.where(rejected & bool(intervals), -1.0, total)
