"""Density specifications in the ``densitypdf`` format, evaluated in batches over numpy arrays.

A density is the dict the CrunchDAO games exchange (one per forecast increment)::

    {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 1.0}}
    {"type": "scipy", "name": "laplace", "params": {"loc": 0.0, "scale": 2.0}}
    {"type": "statistics", "name": "normal", "params": {"mu": 0.0, "sigma": 1.0}}
    {"type": "mixture", "components": [{"density": <density>, "weight": 0.7}, ...]}

:func:`parse_densities` turns many of them into a :class:`DensityBatch`. A nested mixture is
flattened into its leaves (non-mixture densities) in component order, each with its effective weight

.. math:: \\omega_{\\text{leaf}} = \\prod_{\\text{mixtures } m \\text{ above it}} |w_m| / W_m,
          \\qquad W_m = \\sum_{c \\in m} |w_c| ,

so its pdf :math:`f(x) = \\sum_{\\text{leaves}} \\omega_l f_l(x)` is a flat weighted sum. Densities
of one structure (the same families in the same order: "one normal", "normal + t + Laplace", ...)
form a :class:`DensityBlock` whose ``k``-th leaves are one parameter array per parameter, so a block
is evaluated with one vectorised call per leaf position and summed row-aligned.

Numerics: the normal, Student t and Laplace pdfs are computed in log space with the weight folded
into the exponent; exponents below -707 give 0 (numpy's vectorised ``exp`` leaves its fast path
just below; the values lost are under 1e-307). Against both games' own code the grid CRPS agrees
to a few 1e-15 relative (``tests/unit/test_scoring_grid_crps.py``).

Two implementations of the format are reproduced, selected by ``pdf``:

``"densitypdf"``
    the ``densitypdf`` package (0.1.4), point by point, as the Condor Game's evaluator calls it.
``"crunch_synth"``
    ``crunch_synth.utils.density_pdf.density_pdf_vectorized`` (crunch-synth 0.15.0), the
    vectorised copy Crunch-Synth's evaluator uses.

They agree on valid densities; where they part, each is followed:

* ``"statistics"`` densities: ``densitypdf`` always raises (its ``params.get("sigma", 1.0,
  params.get("scale", 1.0))`` passes three arguments to ``dict.get``: ``TypeError``);
  crunch-synth evaluates a normal with ``mu`` (else ``loc``, else 0) and ``sigma`` (else
  ``scale``, else 1), without checking the sign of ``sigma``.
* a mixture whose absolute weights sum to 0: ``densitypdf`` returns exactly 0; crunch-synth
  returns :math:`\\sum_c 0 \\cdot f_c(x)`, which is NaN where a component is NaN or infinite.
* nesting: ``densitypdf`` raises ``RecursionError`` for a density deeper than 3 mixture levels
  (a leaf at depth 4); crunch-synth has no limit.
* support tests with a NaN location: crunch-synth keeps points where ``x >= loc`` (so a NaN
  ``loc`` gives a pdf of 0); ``densitypdf`` rejects points where ``x < loc`` (so it gives NaN).
* an unknown scipy name is a ``ValueError`` in one and an ``AttributeError`` in the other; both
  are a :class:`DensityError` here.

Both raise, hence so does :func:`parse_densities` (as :class:`DensityError`): an unknown
``type`` or builtin ``name``, a missing parameter, a builtin parameter that must be positive and is
``<= 0`` (NaN passes the test, as in both), a constant that overflows in Python float arithmetic
(``math.gamma`` above 171.6, e.g. a Student t with ``df > 342``; ``scale ** a`` of a gamma), and
scipy keyword arguments the distribution does not take. A scipy density with invalid values
(``scale <= 0``) is not an error: scipy returns NaN, and so does its score.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.stats as st  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]
PdfImpl = Literal["densitypdf", "crunch_synth"]
PDF_IMPLS: tuple[PdfImpl, ...] = ("densitypdf", "crunch_synth")

#: Deepest mixture level ``densitypdf.density_pdf`` accepts (its ``max_depth`` default).
DENSITYPDF_MAX_DEPTH = 3
SQRT_2PI = float(np.sqrt(2 * np.pi))


class DensityError(ValueError):
    """A density the game's evaluator cannot evaluate (it raises); ``index`` is its position."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message if index is None else f"density {index}: {message}")
        self.reason = message
        self.index = index


# -- families ---------------------------------------------------------------------------------------

Params = dict[str, FloatArray]
PdfFn = Callable[[FloatArray, Params, PdfImpl], FloatArray]


def _number(value: Any, what: str) -> float:
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    raise DensityError(f"{what} must be a number (got {value!r})")


def _support(keep: npt.NDArray[np.bool_], reject: npt.NDArray[np.bool_], impl: PdfImpl) -> npt.NDArray[np.bool_]:
    """crunch-synth keeps points where the support test holds; densitypdf drops points where it fails."""
    return keep if impl == "crunch_synth" else ~reject


#: Exponents are clamped here before ``exp`` (numpy's vectorised exp leaves its fast path for results
#: below about exp(-708)); the values it gives there, below ``EXP_FLOOR``, are then set to 0.
EXP_CLAMP = -707.0
EXP_FLOOR = math.exp(EXP_CLAMP)
#: Rows with ``|loc| <= GEMM_SAFE_LOC * scale`` get their exponents from one matrix product (below).
GEMM_SAFE_LOC = 64.0


def _exp_floored(arg: FloatArray) -> FloatArray:
    """``exp(arg)`` in place, with results below ``EXP_FLOOR`` (about 1e-307) set to exactly 0."""
    np.maximum(arg, EXP_CLAMP, out=arg)
    np.exp(arg, out=arg)
    np.copyto(arg, 0.0, where=arg <= EXP_FLOOR)
    return arg


def _log_mult(mult: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(mult)


def _weighted_norm(x: FloatArray, p: Params, mult: FloatArray) -> FloatArray:
    """``mult`` times the normal pdf: :math:`\\exp(a (x - \\mu)^2 + \\ln(m / (\\sigma\\sqrt{2\\pi})))`,
    :math:`a = -1/(2\\sigma^2)`.

    On a shared grid the exponent is ``a x^2 + (-2 a mu) x + (a mu^2 + c)``, row-broadcast; its
    rounding error is below 3e-12 relative in the pdf wherever the pdf exceeds 1e-300 as long as
    ``|mu| <= 64 sigma``; other rows subtract first.
    """
    loc, a = p["loc"], p["_half_inv_var"]
    log_coef = p["_log_coef"] + _log_mult(mult)
    if x.ndim == 2:
        out = np.subtract(x, loc)
        np.multiply(out, out, out=out)
        out *= a
        out += log_coef
        return _exp_floored(out)
    mu, a1 = loc[:, 0], a[:, 0]
    # broadcast, not a GEMM: BLAS picks another kernel (and rounding) for one row than for many,
    # and a prediction's score must not depend on its batch-mates
    out = np.multiply(a1[:, None], x * x)
    out += (-2.0 * a1 * mu)[:, None] * x
    out += (a1 * mu * mu + log_coef[:, 0])[:, None]
    far = np.abs(mu) > GEMM_SAFE_LOC * p["scale"][:, 0]
    if far.any():
        shifted = np.subtract(x, loc[far])
        out[far] = a[far] * (shifted * shifted) + log_coef[far]
    return _exp_floored(out)


def _weighted_t(x: FloatArray, p: Params, mult: FloatArray) -> FloatArray:
    """``mult`` times the Student t pdf, :math:`\\exp(\\ln(m c / s) - \\tfrac{\\nu+1}{2}\\,\\mathrm{log1p}(y^2/\\nu))`."""
    df, loc, scale = p["df"], p["loc"], p["scale"]
    out = np.subtract(x, loc)
    np.multiply(out, out, out=out)
    out *= 1.0 / (scale * scale * df)
    np.log1p(out, out=out)
    out *= -(df + 1) / 2
    out += np.log(p["_c"] / scale) + _log_mult(mult)
    return _exp_floored(out)


def _weighted_laplace(x: FloatArray, p: Params, mult: FloatArray) -> FloatArray:
    """``mult`` times the Laplace pdf, :math:`\\exp(\\ln(m / (2 s)) - |x - \\mu| / s)`."""
    scale = p["scale"]
    out = np.subtract(x, p["loc"])
    np.abs(out, out=out)
    out *= -1.0 / scale
    out += np.log(1.0 / (2 * scale)) + _log_mult(mult)
    return _exp_floored(out)


def _pdf_norm(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / (scale sqrt(2 pi))) exp(-0.5 z^2),  z = (x - loc) / scale
    return _weighted_norm(x, p, np.ones_like(p["loc"]))


def _pdf_expon(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) exp(-(x - loc) / scale) for x >= loc
    loc, scale = p["loc"], p["scale"]
    value = (1.0 / scale) * np.exp(-((x - loc) / scale))
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_t(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) c (1 + y^2 / df)^(-(df + 1) / 2),  c = G((df+1)/2) / (sqrt(df pi) G(df/2))
    return _weighted_t(x, p, np.ones_like(p["loc"]))


def _weibull(y: FloatArray, c: FloatArray, scale: FloatArray) -> FloatArray:
    return (c / scale) * (y ** (c - 1)) * np.exp(-(y**c))


def _pdf_weibull_min(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (c / scale) y^(c-1) exp(-y^c),  y = (x - loc) / scale, x >= loc
    loc = p["loc"]
    value = _weibull((x - loc) / p["scale"], p["c"], p["scale"])
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_weibull_max(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (c / scale) y^(c-1) exp(-y^c),  y = (loc - x) / scale, x <= loc
    loc = p["loc"]
    value = _weibull((loc - x) / p["scale"], p["c"], p["scale"])
    return np.where(_support(x <= loc, x > loc, impl), value, 0.0)


def _pdf_gamma(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # t^(a-1) exp(-t / scale) / (G(a) scale^a),  t = x - loc >= 0
    a, loc, scale = p["a"], p["loc"], p["scale"]
    t = x - loc
    value = (t ** (a - 1)) * np.exp(-t / scale) / p["_c"]
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_beta(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # y^(a-1) (1-y)^(b-1) / (scale B(a, b)),  y = (x - loc) / scale in [0, 1]
    a, b, loc, scale = p["a"], p["b"], p["loc"], p["scale"]
    y = (x - loc) / scale
    value = (1 / (scale * p["_c"])) * (y ** (a - 1)) * ((1 - y) ** (b - 1))
    upper = loc + scale
    keep = (x >= loc) & (x <= upper)
    return np.where(_support(keep, (x < loc) | (x > upper), impl), value, 0.0)


def _pdf_lognorm(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # exp(-ln((x - loc) / scale)^2 / (2 s^2)) / ((x - loc) s sqrt(2 pi)),  x > loc
    s, loc, scale = p["s"], p["loc"], p["scale"]
    shifted = x - loc
    z = np.log(shifted / scale)
    value = 1 / (shifted * s * np.sqrt(2 * np.pi)) * np.exp(-(z**2) / (2 * s * s))
    return np.where(_support(x > loc, x <= loc, impl), value, 0.0)


def _pdf_chi(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) c y^(df-1) exp(-y^2 / 2),  c = 2^(1 - df/2) / G(df/2)
    df, loc, scale = p["df"], p["loc"], p["scale"]
    y = (x - loc) / scale
    value = (1 / scale) * p["_c"] * (y ** (df - 1)) * np.exp(-(y**2) / 2)
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_chi2(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) c y^(df/2 - 1) exp(-y / 2),  c = 1 / (2^(df/2) G(df/2))
    df, loc, scale = p["df"], p["loc"], p["scale"]
    y = (x - loc) / scale
    value = (1 / scale) * p["_c"] * (y ** (df / 2 - 1)) * np.exp(-y / 2)
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_rayleigh(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (z / scale^2) exp(-z^2 / (2 scale^2)),  z = x - loc >= 0
    loc, scale = p["loc"], p["scale"]
    z = x - loc
    value = (z / scale**2) * np.exp(-0.5 * (z**2) / scale**2)
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_pareto(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) b z^(-b-1),  z = (x - loc) / scale >= 1
    b, loc, scale = p["b"], p["loc"], p["scale"]
    value = (1 / scale) * b * (((x - loc) / scale) ** (-b - 1))
    edge = loc + scale
    return np.where(_support(x >= edge, x < edge, impl), value, 0.0)


def _pdf_cauchy(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # 1 / (pi scale (1 + z^2))
    scale = p["scale"]
    z = (x - p["loc"]) / scale
    return 1 / (np.pi * scale * (1 + z**2))


def _pdf_laplace(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # exp(-|x - loc| / scale) / (2 scale)
    return _weighted_laplace(x, p, np.ones_like(p["loc"]))


def _pdf_f(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) c y^(dfn/2 - 1) (1 + (dfn/dfd) y)^(-(dfn+dfd)/2),  c = (dfn/dfd)^(dfn/2) / B(dfn/2, dfd/2)
    dfn, dfd, loc, scale = p["dfn"], p["dfd"], p["loc"], p["scale"]
    y = (x - loc) / scale
    value = (1 / scale) * p["_c"] * (y ** (dfn / 2 - 1)) * (1 + (dfn / dfd) * y) ** (-(dfn + dfd) / 2)
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_statistics_normal(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # crunch-synth: (1 / (sigma sqrt(2 pi))) exp(-0.5 ((x - mu) / sigma)^2), sigma unchecked
    return p["_coef"] * np.exp(-0.5 * ((x - p["mu"]) / p["sigma"]) ** 2)


def _const_t(v: list[float]) -> float:
    return _t_constant(v[0])


@functools.lru_cache(maxsize=1024)
def _t_constant(df: float) -> float:
    return math.gamma((df + 1) / 2.0) / (math.sqrt(df * math.pi) * math.gamma(df / 2.0))


def _const_gamma(v: list[float]) -> float:
    a, scale = v[0], v[2]
    return math.gamma(a) * (scale**a)


def _const_beta(v: list[float]) -> float:
    a, b = v[0], v[1]
    return math.gamma(a) * math.gamma(b) / math.gamma(a + b)


def _const_chi(v: list[float]) -> float:
    df = v[0]
    return (2.0 ** (1.0 - 0.5 * df)) / math.gamma(0.5 * df)


def _const_chi2(v: list[float]) -> float:
    df = v[0]
    return 1.0 / (math.pow(2.0, 0.5 * df) * math.gamma(0.5 * df))


def _const_f(v: list[float]) -> float:
    dfn, dfd = v[0], v[1]
    beta_val = math.gamma(dfn / 2.0) * math.gamma(dfd / 2.0) / math.gamma((dfn + dfd) / 2.0)
    return (1.0 / beta_val) * (dfn / dfd) ** (dfn / 2.0)


@dataclass(frozen=True)
class _Family:
    params: tuple[str, ...]
    positive: tuple[str, ...]
    pdf: PdfFn
    #: constant computed per leaf in python floats, as the evaluators do (raising where they raise)
    const: Callable[[list[float]], float] | None = None
    positive_index: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "positive_index", tuple(self.params.index(k) for k in self.positive))
        object.__setattr__(self, "keys", (*self.params, "_c") if self.const is not None else self.params)


#: Families whose pdf is computed in log space with the weight folded into the exponent.
_WEIGHTED: Mapping[str, Callable[[FloatArray, Params, FloatArray], FloatArray]] = {
    "norm": _weighted_norm,
    "t": _weighted_t,
    "laplace": _weighted_laplace,
}

#: The 15 builtin families of ``densitypdf`` (and crunch-synth's copy): parameters read, in order,
#: and those that must be positive (``<= 0`` raises ``ValueError`` in both).
BUILTIN_FAMILIES: Mapping[str, _Family] = {
    "norm": _Family(("loc", "scale"), ("scale",), _pdf_norm),
    "lognorm": _Family(("s", "loc", "scale"), ("s", "scale"), _pdf_lognorm),
    "expon": _Family(("loc", "scale"), ("scale",), _pdf_expon),
    "t": _Family(("df", "loc", "scale"), ("df", "scale"), _pdf_t, _const_t),
    "weibull_min": _Family(("c", "loc", "scale"), ("c", "scale"), _pdf_weibull_min),
    "gamma": _Family(("a", "loc", "scale"), ("a", "scale"), _pdf_gamma, _const_gamma),
    "weibull_max": _Family(("c", "loc", "scale"), ("c", "scale"), _pdf_weibull_max),
    "beta": _Family(("a", "b", "loc", "scale"), ("a", "b", "scale"), _pdf_beta, _const_beta),
    "chi": _Family(("df", "loc", "scale"), ("df", "scale"), _pdf_chi, _const_chi),
    "chi2": _Family(("df", "loc", "scale"), ("df", "scale"), _pdf_chi2, _const_chi2),
    "rayleigh": _Family(("loc", "scale"), ("scale",), _pdf_rayleigh),
    "pareto": _Family(("b", "loc", "scale"), ("b", "scale"), _pdf_pareto),
    "cauchy": _Family(("loc", "scale"), ("scale",), _pdf_cauchy),
    "laplace": _Family(("loc", "scale"), ("scale",), _pdf_laplace),
    "f": _Family(("dfn", "dfd", "loc", "scale"), ("dfn", "dfd", "scale"), _pdf_f, _const_f),
}

_SCIPY_CACHE: dict[str, tuple[st.rv_continuous, frozenset[str], frozenset[str]]] = {}


def _scipy_family(name: Any) -> tuple[st.rv_continuous, frozenset[str], frozenset[str]]:
    """(distribution, required keywords, accepted keywords) of a scipy continuous distribution."""
    cached = _SCIPY_CACHE.get(name) if isinstance(name, str) else None
    if cached is not None:
        return cached
    dist = getattr(st, name, None) if isinstance(name, str) else None
    if not isinstance(dist, st.rv_continuous):
        raise DensityError(f"unknown scipy continuous distribution {name!r}")
    shapes = frozenset(s.strip() for s in (dist.shapes or "").split(",") if s.strip())
    entry = (dist, shapes, shapes | {"loc", "scale"})
    _SCIPY_CACHE[name] = entry
    return entry


# -- batches ----------------------------------------------------------------------------------------

LeafKey = tuple[str, str, tuple[str, ...]]  # kind, name, parameter columns


@dataclass(frozen=True)
class LeafSlot:
    """The ``k``-th leaf of every density of a block: one family, parameters aligned with the rows."""

    kind: str
    name: str
    weights: FloatArray
    params: Mapping[str, FloatArray]

    def evaluate(self, x: FloatArray, select: slice, impl: PdfImpl, factor: float) -> FloatArray:
        """``factor * weight * pdf`` of the selected rows at ``x`` (``(P,)`` shared, or one row each)."""
        params = {k: v[select, None] for k, v in self.params.items()}
        mult = self.weights[select, None] * factor
        with np.errstate(all="ignore"):
            if self.kind == "builtin":
                weighted = _WEIGHTED.get(self.name)
                if weighted is not None:
                    return weighted(x, params, mult)
                values = BUILTIN_FAMILIES[self.name].pdf(x, params, impl)
            elif self.kind == "scipy":
                dist, _, _ = _scipy_family(self.name)
                values = np.asarray(dist.pdf(x, **params), dtype=np.float64)
            else:
                values = _pdf_statistics_normal(x, params, impl)
            values = values * mult
        return values


@dataclass(frozen=True)
class DensityBlock:
    """Densities of one structure (the same families in the same component order)."""

    rows: npt.NDArray[np.intp]
    slots: tuple[LeafSlot, ...]

    def evaluate(self, x: FloatArray, select: slice, impl: PdfImpl, factor: float = 1.0) -> FloatArray:
        """:math:`\\text{factor} \\sum_k \\omega_k f_k(x)` of the selected rows, summed in component order."""
        count = len(range(*select.indices(self.rows.size)))
        if not self.slots:
            return np.zeros((count, x.shape[-1]))
        out = self.slots[0].evaluate(x, select, impl, factor)
        for slot in self.slots[1:]:
            out += slot.evaluate(x, select, impl, factor)
        return out


@dataclass(frozen=True)
class DensityBatch:
    """Densities parsed for batch evaluation (see :func:`parse_densities`).

    Attributes
    ----------
    size : int
        Number of densities (rows).
    impl : {"densitypdf", "crunch_synth"}
        Whose semantics the batch follows.
    blocks : tuple of DensityBlock
        Every valid row in exactly one block (rows sorted within a block); a density whose pdf is
        identically 0 (an empty mixture, densitypdf's zero-weight mixture) is in a block without slots.
    errors : Mapping[int, str]
        Rows that cannot be evaluated (the evaluator raises), with the reason; they are in no block.
    """

    size: int
    impl: PdfImpl
    blocks: tuple[DensityBlock, ...]
    errors: Mapping[int, str]

    def pdf(self, x: npt.ArrayLike, start: int = 0, stop: int | None = None, factor: float = 1.0) -> FloatArray:
        """``factor`` times the pdf values of rows ``start:stop`` at ``x`` (rows in error: 0).

        Parameters
        ----------
        x : array_like
            Shape ``(P,)`` (the same points for every row) or ``(stop - start, P)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(stop - start, P)``: :math:`f_b(x) = \\sum_{\\text{leaves } l \\text{ of } b}
            \\omega_l f_l(x)`, summed in component order.
        """
        stop = self.size if stop is None else stop
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"rows {start}:{stop} out of range for {self.size} densities")
        xs = np.asarray(x, dtype=np.float64)
        if xs.ndim not in (1, 2) or (xs.ndim == 2 and xs.shape[0] != stop - start):
            raise ValueError(f"x must have shape (P,) or ({stop - start}, P); got {xs.shape}")
        out = np.zeros((stop - start, xs.shape[-1]))
        for block in self.blocks:
            lo, hi = (int(i) for i in np.searchsorted(block.rows, [start, stop]))
            if lo == hi:
                continue
            rows = block.rows[lo:hi] - start
            out[rows] = block.evaluate(xs if xs.ndim == 1 else xs[rows], slice(lo, hi), self.impl, factor)
        return out


@dataclass
class _BlockCollector:
    keys: tuple[LeafKey, ...]
    rows: list[int] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)
    columns: list[list[list[float]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.weights = [[] for _ in self.keys]
        self.columns = [[[] for _ in key[2]] for key in self.keys]

    def add(self, row: int, leaves: list[tuple[LeafKey, float, list[float]]]) -> None:
        self.rows.append(row)
        for weights, columns, (_, weight, values) in zip(self.weights, self.columns, leaves, strict=True):
            weights.append(weight)
            for column, value in zip(columns, values, strict=True):
                column.append(value)

    def finish(self) -> DensityBlock:
        slots = []
        for (kind, name, keys), weights, columns in zip(self.keys, self.weights, self.columns, strict=True):
            params = {k: np.asarray(col, dtype=np.float64) for k, col in zip(keys, columns, strict=True)}
            if kind == "builtin" and name == "norm":
                scale = params["scale"]
                params["_half_inv_var"] = -0.5 / (scale * scale)
                params["_log_coef"] = -np.log(scale * SQRT_2PI)
            slots.append(LeafSlot(kind, name, np.asarray(weights, dtype=np.float64), params))
        return DensityBlock(np.asarray(self.rows, dtype=np.intp), tuple(slots))


_FLOATS = (float, np.float64)


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


class _Parser:
    """Walks density dicts; the leaves of the current row wait in ``pending`` until it parsed whole."""

    def __init__(self, impl: PdfImpl) -> None:
        if impl not in PDF_IMPLS:
            raise ValueError(f"pdf must be one of {PDF_IMPLS} (got {impl!r})")
        self.impl = impl
        self.pending: list[tuple[LeafKey, float, list[float]]] = []
        self.builtin_keys = {name: ("builtin", name, family.keys) for name, family in BUILTIN_FAMILIES.items()}

    def density(self, spec: Any, weight: float, depth: int, muted: bool) -> None:
        if depth > DENSITYPDF_MAX_DEPTH and self.impl == "densitypdf":
            raise DensityError(f"nested deeper than {DENSITYPDF_MAX_DEPTH} mixture levels (densitypdf max_depth)")
        if not _is_mapping(spec):
            raise DensityError(f"a density must be a mapping (got {type(spec).__name__})")
        kind = spec.get("type")
        if kind == "builtin":
            self.builtin(spec, weight, muted)
        elif kind == "mixture":
            self.mixture(spec, weight, depth, muted)
        elif kind == "scipy":
            self.scipy(spec, weight, muted)
        elif kind == "statistics":
            self.statistics(spec, weight, muted)
        else:
            raise DensityError(f"unknown density type {kind!r}")

    def builtin(self, spec: Any, weight: float, muted: bool) -> None:
        name = spec.get("name")
        family = BUILTIN_FAMILIES.get(name) if type(name) is str else None
        if family is None:
            raise DensityError(f"unsupported builtin distribution {name!r}")
        params = spec.get("params")
        if not _is_mapping(params):
            raise DensityError("a density needs a 'params' mapping")
        try:
            values = [params[key] for key in family.params]
        except KeyError as error:
            raise DensityError(f"builtin {name}: missing parameter {error.args[0]!r}") from None
        for i, value in enumerate(values):
            if type(value) is not float:
                values[i] = _number(value, f"params[{family.params[i]!r}]")
        for i in family.positive_index:
            if values[i] <= 0:
                raise DensityError(f"builtin {name}: {family.params[i]} must be positive (got {values[i]!r})")
        if family.const is not None:
            try:
                values.append(float(family.const(values)))
            except (OverflowError, ZeroDivisionError, ValueError) as error:
                raise DensityError(f"builtin {name}: {type(error).__name__}: {error}") from None
        if not muted:
            self.pending.append((self.builtin_keys[name], weight, values))

    def scipy(self, spec: Any, weight: float, muted: bool) -> None:
        name = spec.get("name")
        _, required, accepted = _scipy_family(name)
        params = spec.get("params")
        if not _is_mapping(params):
            raise DensityError("a density needs a 'params' mapping")
        unknown = set(params) - accepted
        missing = required - set(params)
        if unknown or missing:
            raise DensityError(
                f"scipy {name}: takes {sorted(accepted)}, requires {sorted(required)} (got {sorted(params)})"
            )
        values = {k: _number(v, f"params[{k!r}]") for k, v in params.items()}
        values.setdefault("loc", 0.0)
        values.setdefault("scale", 1.0)
        keys = tuple(sorted(values))
        if not muted:
            self.pending.append((("scipy", str(name), keys), weight, [values[k] for k in keys]))

    def statistics(self, spec: Any, weight: float, muted: bool) -> None:
        if self.impl == "densitypdf":
            raise DensityError("densitypdf cannot evaluate 'statistics' densities (TypeError in its dict.get call)")
        if spec.get("name") != "normal":
            raise DensityError(f"unsupported statistics distribution {spec.get('name')!r}")
        params = spec.get("params")
        if not _is_mapping(params):
            raise DensityError("a density needs a 'params' mapping")
        mu = _number(params.get("mu", params.get("loc", 0.0)), "mu")
        sigma = _number(params.get("sigma", params.get("scale", 1.0)), "sigma")
        with np.errstate(all="ignore"):
            coef = float(np.float64(1.0) / (sigma * np.sqrt(2 * np.pi)))
        if not muted:
            self.pending.append((("statistics", "normal", ("_coef", "mu", "sigma")), weight, [coef, mu, sigma]))

    def mixture(self, spec: Any, weight: float, depth: int, muted: bool) -> None:
        components = spec.get("components")
        if type(components) is not list and (
            not isinstance(components, Sequence) or isinstance(components, str | bytes)
        ):
            raise DensityError("a mixture needs a 'components' list")
        weights = []
        for component in components:
            if not _is_mapping(component) or "density" not in component or "weight" not in component:
                raise DensityError("a mixture component needs 'density' and 'weight'")
            w = component["weight"]
            weights.append(abs(w if type(w) is float else _number(w, "weight")))
        total = 0.0
        for w in weights:
            total += w
        # densitypdf returns exactly 0 for a zero total weight; crunch-synth returns sum(0 * f_c)
        mute = muted or (total == 0 and self.impl == "densitypdf")
        for component, w in zip(components, weights, strict=True):
            share = weight * (w / total if total != 0 else w)
            inner = component["density"]
            if type(inner) is dict and inner.get("type") == "builtin" and depth < DENSITYPDF_MAX_DEPTH:
                self.builtin(inner, share, mute)
            else:
                self.density(inner, share, depth + 1, mute)


def parse_densities(densities: Sequence[Any], pdf: PdfImpl = "crunch_synth") -> DensityBatch:
    """Parse density dicts into a :class:`DensityBatch`, recording per row what cannot be evaluated.

    Parameters
    ----------
    densities : sequence of mapping
        Densities in the ``densitypdf`` format, one per row.
    pdf : {"densitypdf", "crunch_synth"}
        Which implementation's semantics to follow (see the module docstring).

    Returns
    -------
    DensityBatch
        Rows that the implementation would raise on are listed in ``errors`` (never raised here).
    """
    parser = _Parser(pdf)
    pending = parser.pending
    errors: dict[int, str] = {}
    blocks: dict[tuple[LeafKey, ...], _BlockCollector] = {}
    norm_key = parser.builtin_keys["norm"]
    lone_norm = blocks[(norm_key,)] = _BlockCollector((norm_key,))
    norm_rows, (norm_weights,), ((norm_loc, norm_scale),) = lone_norm.rows, lone_norm.weights, lone_norm.columns
    for row, spec in enumerate(densities):
        # fast path: a normal, alone or as the single component of a mixture (its weight is then
        # |w| / |w| = 1 exactly); anything else takes the general walk below
        if type(spec) is dict:
            leaf: Any = spec
            if spec.get("type") == "mixture":
                components = spec.get("components")
                leaf = None
                if type(components) is list and len(components) == 1 and type(components[0]) is dict:
                    weight: Any = components[0].get("weight")
                    if type(weight) in (int, float) and 0 < abs(weight) < math.inf:
                        leaf = components[0].get("density")
            if type(leaf) is dict and leaf.get("type") == "builtin" and leaf.get("name") == "norm":
                params: Any = leaf.get("params")
                if type(params) is dict:
                    loc: Any = params.get("loc")
                    scale: Any = params.get("scale")
                    if type(loc) in _FLOATS and type(scale) in _FLOATS and scale > 0:
                        norm_rows.append(row)
                        norm_weights.append(1.0)
                        norm_loc.append(loc)
                        norm_scale.append(scale)
                        continue
        try:
            parser.density(spec, 1.0, 0, False)
        except (DensityError, RecursionError, TypeError) as error:  # TypeError: unhashable names...
            errors[row] = error.reason if isinstance(error, DensityError) else f"{type(error).__name__}: {error}"
            pending.clear()
            continue
        signature = tuple(key for key, _, _ in pending)
        block = blocks.get(signature)
        if block is None:
            block = blocks[signature] = _BlockCollector(signature)
        block.add(row, pending)
        pending.clear()
    ordered = tuple(b.finish() for b in blocks.values() if b.rows)
    return DensityBatch(size=len(densities), impl=pdf, blocks=ordered, errors=errors)


def density_pdf(densities: Sequence[Any], x: npt.ArrayLike, pdf: PdfImpl = "crunch_synth") -> FloatArray:
    """Evaluate many densities at once.

    Parameters
    ----------
    densities : sequence of mapping
        ``B`` densities in the ``densitypdf`` format.
    x : array_like
        Shape ``(P,)`` (the same points for all) or ``(B, P)``, or ``(B,)`` with one point each when
        ``B != P`` is ambiguous: pass ``(B, 1)`` for one point per density.
    pdf : {"densitypdf", "crunch_synth"}

    Returns
    -------
    numpy.ndarray
        Shape ``(B, P)``.

    Raises
    ------
    DensityError
        For the first density the chosen implementation cannot evaluate.
    """
    batch = parse_densities(densities, pdf)
    if batch.errors:
        row = min(batch.errors)
        raise DensityError(batch.errors[row], row)
    return batch.pdf(x)


def density_cdf(density: Mapping[str, Any], x: float) -> float:
    """The CDF at ``x`` of one validated density (``outputs.validate_density``): a ``builtin`` or
    ``scipy`` family by its scipy name (``scipy.stats.<name>.cdf(x, **params)``), a mixture as
    :math:`\\sum_c (|w_c| / \\sum |w|) F_c(x)` over its components. Used for calibration (PIT), not
    for scoring.

    Raises
    ------
    DensityError
        For a type or family outside the validated format, or mixture weights summing to 0.
    """
    kind = density.get("type")
    if kind == "mixture":
        components = list(density.get("components") or [])
        weights = [abs(float(c["weight"])) for c in components]
        total = sum(weights)
        if total <= 0:
            raise DensityError("mixture weights sum to 0")
        return sum(w / total * density_cdf(c["density"], x) for w, c in zip(weights, components, strict=True))
    name = density.get("name")
    if kind not in ("builtin", "scipy") or not isinstance(name, str) or not hasattr(st, name):
        raise DensityError(f"no CDF for density type {kind!r} name {name!r}")
    return float(getattr(st, name).cdf(x, **dict(density.get("params") or {})))
