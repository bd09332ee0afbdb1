"""Price paths simulated from multi-resolution densities, draw for draw as crunch-synth does.

crunch-synth 0.15.0 (``volatility.simulate_price_paths``, over
``utils/densitytosimulations.py``) turns a 1h prediction into price paths for its volatility term:

1. seed numpy's legacy global generator **and** python's ``random`` with the same integer
   (``zlib.crc32(f"{asset}:{resolution_ts}")``, see :func:`volatility_seed`);
2. for every step, **in the prediction's own order**, and every density of that step in order,
   draw ``num_paths`` values (``simulate_points``, mode ``"point"``: the draws are the increments):

   * mixture: absolute weights normalised, ``choice(len(components), size=n, p=weights)``,
     then each component in order draws for the paths that chose it (none drawn for a component
     nobody chose); at most 3 nesting levels below the top (``RecursionError``) and 5 mixtures
     along a path;
   * ``"scipy"``: ``scipy.stats.<name>.rvs(size=n, **params)``;
   * ``"builtin"``: the same, keeping only ``loc``, ``scale`` and the distribution's shapes;
   * ``"statistics"`` normal: ``NormalDist(mu, sigma).samples(n)`` on python's ``random`` (on
     Python 3.11, ``random.gauss``; 3.12 changed it to the inverse CDF of ``random.random()``);

3. couple the resolutions coarse to fine (:func:`combine_multiscale`) and add the start price.

Here the two generators are private instances (``numpy.random.RandomState(seed)`` and
``random.Random(seed)``) that give the same streams without touching global state.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.stats as st  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]

#: Paths simulated per prediction (Synth miners submit 1,000).
NUM_PATHS = 1000
#: ``simulate_points`` defaults.
MAX_DEPTH = 3
MAX_MIXTURES = 5


class SimulationError(ValueError):
    """The densities cannot be turned into price paths (crunch-synth raises a ``ValueError`` too)."""


def volatility_seed(asset: str, resolution_ts: int) -> int:
    """Seed of a prediction's simulation: ``zlib.crc32(f"{asset}:{resolution_ts}".encode())``.

    ``resolution_ts`` is the quarantine's release time, ``round_ts + horizon``.
    """
    return zlib.crc32(f"{asset}:{int(resolution_ts)}".encode())


def _normal_samples(mu: float, sigma: float, n: int, rnd: random.Random) -> FloatArray:
    dist = statistics.NormalDist(mu=mu, sigma=sigma)  # StatisticsError (a ValueError) for sigma < 0
    mu, sigma = dist.mean, dist.stdev
    if sys.version_info < (3, 12):
        return np.array([rnd.gauss(mu, sigma) for _ in range(n)])
    inv_cdf = statistics._normal_dist_inv_cdf  # type: ignore[attr-defined]
    return np.array([inv_cdf(rnd.random(), mu, sigma) for _ in range(n)])


def sample_density(
    spec: Any,
    n: int,
    rs: np.random.RandomState,
    rnd: random.Random,
    *,
    depth: int = 0,
    mixtures: int = 0,
) -> FloatArray:
    """``n`` draws from one density, consuming ``rs`` and ``rnd`` as ``simulate_points`` consumes the
    global generators.

    Raises
    ------
    SimulationError
        Whatever ``simulate_points`` raises on (unknown type or name, too deep, invalid parameters).
    """
    if depth > MAX_DEPTH:
        raise SimulationError(f"exceeded maximum recursion depth of {MAX_DEPTH}")
    kind = spec.get("type")
    if kind == "mixture":
        mixtures += 1
        if mixtures > MAX_MIXTURES:
            raise SimulationError(f"exceeded maximum mixture count {MAX_MIXTURES}")
        components = spec["components"]
        weights = np.array([abs(c["weight"]) for c in components], dtype=float)
        weights /= weights.sum()
        if weights.size and np.all(np.isfinite(weights)):
            # RandomState.choice(k, size=n, p=weights), step for step (same draws, less overhead)
            cdf = weights.cumsum()
            cdf /= cdf[-1]
            chosen = cdf.searchsorted(rs.random_sample(n), side="right")
        else:
            chosen = rs.choice(len(components), size=n, p=weights)  # raises as simulate_points does
        samples = np.empty(n)
        for j, component in enumerate(components):
            idx = np.where(chosen == j)[0]
            if len(idx) == 0:
                continue
            samples[idx] = sample_density(component["density"], len(idx), rs, rnd, depth=depth + 1, mixtures=mixtures)
        return samples
    if kind in ("scipy", "builtin"):
        name = spec["name"]
        dist = getattr(st, name, None) if isinstance(name, str) else None
        if dist is None or not hasattr(dist, "rvs"):
            raise SimulationError(f"unknown {kind} distribution {name!r}")
        params = dict(spec["params"])
        if name == "norm" and set(params) <= {"loc", "scale"}:
            loc, scale = params.get("loc", 0.0), params.get("scale", 1.0)
            if isinstance(loc, int | float) and isinstance(scale, int | float) and 0 < scale < math.inf:
                # scipy.stats.norm.rvs: standard normals times scale plus loc (same draws, less overhead)
                return rs.standard_normal(n) * scale + loc
        if kind == "builtin":
            accepted = {"loc", "scale", *(s.strip() for s in (dist.shapes or "").split(",") if s.strip())}
            params = {k: v for k, v in params.items() if k in accepted}
        return np.asarray(dist.rvs(size=n, random_state=rs, **params), dtype=np.float64)
    if kind == "statistics":
        if spec.get("name") != "normal":
            raise SimulationError(f"unsupported statistics distribution {spec.get('name')!r}")
        params = spec["params"]
        mu = params.get("mu", params.get("loc", 0.0))
        sigma = params.get("sigma", params.get("scale", 1.0))
        return _normal_samples(mu, sigma, n, rnd)
    raise SimulationError(f"unknown or missing 'type' in density {spec!r}")


def combine_multiscale(increments: Mapping[int, FloatArray]) -> FloatArray:
    """Couple simulated increments across resolutions and integrate the finest into paths.

    Steps are taken coarse to fine; for each parent step :math:`S` and the next finer step
    :math:`s` (ratio :math:`r = S // s`), every group of :math:`r` child increments is shifted so it
    sums to its parent increment:

    .. math:: c_{k,j} \\leftarrow c_{k,j} + \\frac{P_k - \\sum_{j'} c_{k,j'}}{r}

    Parameters
    ----------
    increments : mapping step -> array ``(N, horizon // step)``

    Returns
    -------
    numpy.ndarray
        ``(N, T + 1)``: 0 then the cumulative sums of the finest coupled increments.

    Raises
    ------
    SimulationError
        If a finer step's count is not ``ratio`` times its parent's.
    """
    if not increments:
        raise SimulationError("no increments to combine")
    levels = sorted(increments, reverse=True)
    constrained = {step: np.array(increments[step], dtype=float) for step in levels}
    n = constrained[levels[0]].shape[0]
    for parent, child in zip(levels[:-1], levels[1:], strict=True):
        ratio = parent // child
        parent_steps = constrained[parent].shape[1]
        if ratio * parent_steps != constrained[child].shape[1]:
            raise SimulationError(f"incompatible steps between {parent} and {child}")
        groups = constrained[child].reshape(n, parent_steps, ratio)
        correction = (constrained[parent] - groups.sum(axis=2)) / ratio
        constrained[child] = (groups + correction[:, :, None]).reshape(n, parent_steps * ratio)
    finest = constrained[levels[-1]]
    paths = np.zeros((n, finest.shape[1] + 1))
    paths[:, 1:] = np.cumsum(finest, axis=1)
    return paths


def simulate_price_paths(
    predictions: Mapping[int, Sequence[Any]],
    start_price: float,
    seed: int,
    num_paths: int = NUM_PATHS,
) -> FloatArray:
    """Price paths from a multi-resolution prediction, identical to crunch-synth's simulation.

    Parameters
    ----------
    predictions : mapping step -> list of densities
        Iterated in its own order (the order the tracker returned the steps in): the draws follow it.
    start_price : float
        Price at the start of the horizon (the realized path's first point).
    seed : int
        See :func:`volatility_seed`.
    num_paths : int

    Returns
    -------
    numpy.ndarray
        ``(num_paths, horizon // finest_step + 1)``: ``start_price + combine_multiscale(draws)``.

    Raises
    ------
    SimulationError
        For anything crunch-synth's simulation raises on (it reports every such error as
        "cannot simulate price paths from the densities").
    """
    rs = np.random.RandomState(seed)
    rnd = random.Random(seed)
    try:
        draws: dict[int, FloatArray] = {}
        for step, densities in predictions.items():
            columns = np.zeros((num_paths, len(densities)))
            for t, spec in enumerate(densities):
                columns[:, t] = sample_density(spec, num_paths, rs, rnd)
            draws[int(step)] = columns
        return start_price + combine_multiscale(draws)
    except SimulationError:
        raise
    except Exception as error:  # crunch-synth wraps every failure the same way
        raise SimulationError(f"cannot simulate price paths from the densities: {error}") from error
