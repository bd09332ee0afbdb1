"""Density specifications in the ``densitypdf`` format, evaluated in batches over numpy arrays.

A density is the dict the CrunchDAO games exchange (one per forecast increment)::

    {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 1.0}}
    {"type": "scipy", "name": "laplace", "params": {"loc": 0.0, "scale": 2.0}}
    {"type": "statistics", "name": "normal", "params": {"mu": 0.0, "sigma": 1.0}}
    {"type": "mixture", "components": [{"density": <density>, "weight": 0.7}, ...]}

:func:`parse_densities` turns many of them into a :class:`DensityBatch`: every leaf (a non-mixture
density) becomes one row of a parameter array of its family, with its effective weight

.. math:: \\omega_{\\text{leaf}} = \\prod_{\\text{mixtures } m \\text{ above it}} |w_m| / W_m,
          \\qquad W_m = \\sum_{c \\in m} |w_c| ,

so a nested mixture's pdf :math:`f(x) = \\sum_c (|w_c|/W)\\,f_c(x)` is a flat weighted sum. The
batch is then evaluated family by family with array parameters (:meth:`DensityBatch.pdf`).

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


def _pdf_norm(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    """Normal pdf times a factor: :math:`\\exp(a (x - \\mu)^2 + \\ln(\\text{factor}/(\\sigma\\sqrt{2\\pi})))`,
    :math:`a = -1/(2\\sigma^2)`.

    On a shared grid the exponent is the product ``[a, -2 a mu, a mu^2 + c] @ [x^2, x, 1]``; its
    rounding error is below 3e-12 relative in the pdf wherever the pdf exceeds 1e-300 as long as
    ``|mu| <= 64 sigma``; other rows subtract first.
    """
    loc, a, log_coef = p["loc"], p["_half_inv_var"], p["_log_coef"]
    if x.ndim == 2:
        out = np.subtract(x, loc)
        np.multiply(out, out, out=out)
        out *= a
        out += log_coef
        return _exp_floored(out)
    mu, a1 = loc[:, 0], a[:, 0]
    coefs = np.stack([a1, -2.0 * a1 * mu, a1 * mu * mu + log_coef[:, 0]], axis=1)
    out = coefs @ np.stack([x * x, x, np.ones_like(x)])
    far = np.abs(mu) > GEMM_SAFE_LOC * p["scale"][:, 0]
    if far.any():
        shifted = np.subtract(x, loc[far])
        out[far] = a[far] * (shifted * shifted) + log_coef[far]
    return _exp_floored(out)


def _pdf_expon(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) exp(-(x - loc) / scale) for x >= loc
    loc, scale = p["loc"], p["scale"]
    value = (1.0 / scale) * np.exp(-((x - loc) / scale))
    return np.where(_support(x >= loc, x < loc, impl), value, 0.0)


def _pdf_t(x: FloatArray, p: Params, impl: PdfImpl) -> FloatArray:
    # (1 / scale) c (1 + y^2 / df)^(-(df + 1) / 2),  c = G((df+1)/2) / (sqrt(df pi) G(df/2))
    df, loc, scale = p["df"], p["loc"], p["scale"]
    y = (x - loc) / scale
    return (1.0 / scale) * p["_c"] * (1 + (y**2) / df) ** (-(df + 1) / 2)


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
    scale = p["scale"]
    return (1 / (2 * scale)) * np.exp(-np.abs(x - p["loc"]) / scale)


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
    df = v[0]
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


# -- parsing ----------------------------------------------------------------------------------------


@dataclass
class _Collector:
    """Leaves of one family while parsing (python lists, turned into arrays at the end)."""

    kind: str
    name: str
    keys: tuple[str, ...]
    rows: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    columns: list[list[float]] = field(default_factory=list)

    def drop_row(self, row: int) -> None:
        while self.rows and self.rows[-1] == row:
            self.rows.pop()
            self.slots.pop()
            self.weights.pop()
            for column in self.columns:
                column.pop()

    def finish(self) -> LeafGroup:
        params = {k: np.asarray(col, dtype=np.float64) for k, col in zip(self.keys, self.columns, strict=True)}
        if self.kind == "builtin" and self.name == "norm":
            scale = params["scale"]
            params["_half_inv_var"] = -0.5 / (scale * scale)
            params["_log_coef"] = -np.log(scale * SQRT_2PI)
        return LeafGroup(
            kind=self.kind,
            name=self.name,
            rows=np.asarray(self.rows, dtype=np.intp),
            slots=np.asarray(self.slots, dtype=np.intp),
            weights=np.asarray(self.weights, dtype=np.float64),
            params=params,
        )


@dataclass(frozen=True)
class LeafGroup:
    """All leaves of one family: density row, position within the density, weight, parameters."""

    kind: str
    name: str
    rows: npt.NDArray[np.intp]
    slots: npt.NDArray[np.intp]
    weights: FloatArray
    params: Mapping[str, FloatArray]

    def evaluate(self, x: FloatArray, select: slice, impl: PdfImpl, factor: float = 1.0) -> FloatArray:
        """``factor`` times the pdf of the selected leaves at ``x`` (``(P,)`` shared, or a row per leaf)."""
        params = {k: v[select, None] for k, v in self.params.items()}
        with np.errstate(all="ignore"):
            if self.kind == "builtin" and self.name == "norm":
                if factor != 1.0:
                    params["_log_coef"] = params["_log_coef"] + math.log(factor)
                return _pdf_norm(x, params, impl)
            if self.kind == "scipy":
                dist, _, _ = _scipy_family(self.name)
                values = np.asarray(dist.pdf(x, **params), dtype=np.float64)
            elif self.kind == "statistics":
                values = _pdf_statistics_normal(x, params, impl)
            else:
                values = BUILTIN_FAMILIES[self.name].pdf(x, params, impl)
            if factor != 1.0:
                values *= factor
            return values


@dataclass(frozen=True)
class DensityBatch:
    """Densities parsed for batch evaluation (see :func:`parse_densities`).

    Attributes
    ----------
    size : int
        Number of densities (rows).
    impl : {"densitypdf", "crunch_synth"}
        Whose semantics the batch follows.
    groups : tuple of LeafGroup
        Leaves grouped by family, each sorted by row.
    errors : Mapping[int, str]
        Rows that cannot be evaluated (the evaluator raises), with the reason; their pdf is 0.
    one_leaf : bool
        True when every valid row is exactly one leaf of weight 1 (no accumulation needed).
    """

    size: int
    impl: PdfImpl
    groups: tuple[LeafGroup, ...]
    errors: Mapping[int, str]
    one_leaf: bool

    def pdf(self, x: npt.ArrayLike, start: int = 0, stop: int | None = None, factor: float = 1.0) -> FloatArray:
        """``factor`` times the pdf values of rows ``start:stop`` at ``x``.

        Parameters
        ----------
        x : array_like
            Shape ``(P,)`` (the same points for every row) or ``(stop - start, P)``.
        factor : float
            Multiplies the result (folded into the exponent for normals; the grid CRPS passes its
            step :math:`\\Delta` here).

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
        parts = []
        for group in self.groups:
            lo, hi = (int(i) for i in np.searchsorted(group.rows, [start, stop]))
            if lo == hi:
                continue
            rows = group.rows[lo:hi] - start
            points = xs if xs.ndim == 1 else xs[rows]
            parts.append((group, lo, hi, rows, group.evaluate(points, slice(lo, hi), self.impl, factor)))
        if self.one_leaf and len(parts) == 1 and parts[0][2] - parts[0][1] == stop - start:
            return parts[0][4]  # every row is one leaf of this group, in row order
        out = np.zeros((stop - start, xs.shape[-1]))
        if self.one_leaf:
            for _, _, _, rows, values in parts:
                out[rows] = values
            return out
        top = max((int(group.slots[lo:hi].max()) for group, lo, hi, _, _ in parts), default=-1)
        with np.errstate(all="ignore"):
            for slot in range(top + 1):
                for group, lo, hi, rows, values in parts:
                    mask = group.slots[lo:hi] == slot
                    if mask.any():
                        out[rows[mask]] += group.weights[lo:hi][mask, None] * values[mask]
        return out


_FLOATS = (float, np.float64)


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


class _Parser:
    """Walks density dicts, appending each leaf to its family's collector."""

    def __init__(self, impl: PdfImpl) -> None:
        if impl not in PDF_IMPLS:
            raise ValueError(f"pdf must be one of {PDF_IMPLS} (got {impl!r})")
        self.impl = impl
        self.collectors: dict[tuple[str, str, tuple[str, ...]], _Collector] = {}
        self.builtin_collectors: dict[str, _Collector] = {}
        self.row = 0
        self.slot = 0  # leaves of the current row so far
        self.unit = True  # every leaf of the current row has weight 1

    def collector(self, kind: str, name: str, keys: tuple[str, ...]) -> _Collector:
        key = (kind, name, keys)
        found = self.collectors.get(key)
        if found is None:
            found = self.collectors[key] = _Collector(kind, name, keys, columns=[[] for _ in keys])
        return found

    def leaf(self, collector: _Collector, weight: float, values: list[float]) -> None:
        collector.rows.append(self.row)
        collector.slots.append(self.slot)
        collector.weights.append(weight)
        for column, value in zip(collector.columns, values, strict=True):
            column.append(value)
        self.slot += 1
        if weight != 1.0:
            self.unit = False

    def density(self, spec: Any, weight: float, depth: int, muted: bool) -> None:
        if depth > DENSITYPDF_MAX_DEPTH and self.impl == "densitypdf":
            raise DensityError(f"nested deeper than {DENSITYPDF_MAX_DEPTH} mixture levels (densitypdf max_depth)")
        if not _is_mapping(spec):
            raise DensityError(f"a density must be a mapping (got {type(spec).__name__})")
        kind = spec.get("type")
        if kind == "mixture":
            self.mixture(spec, weight, depth, muted)
        elif kind == "builtin":
            self.builtin(spec, weight, muted)
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
        if muted:
            return
        collector = self.builtin_collectors.get(name)
        if collector is None:
            collector = self.builtin_collectors[name] = self.collector("builtin", name, family.keys)
        self.leaf(collector, weight, values)

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
            self.leaf(self.collector("scipy", str(name), keys), weight, [values[k] for k in keys])

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
            self.leaf(self.collector("statistics", "normal", ("_coef", "mu", "sigma")), weight, [coef, mu, sigma])

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
            self.density(component["density"], weight * (w / total if total != 0 else w), depth + 1, mute)


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
    errors: dict[int, str] = {}
    one_leaf = True
    norm = parser.builtin_collectors["norm"] = parser.collector("builtin", "norm", ("loc", "scale"))
    norm_rows, norm_slots, norm_weights = norm.rows, norm.slots, norm.weights
    norm_loc, norm_scale = norm.columns
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
                        norm_slots.append(0)
                        norm_weights.append(1.0)
                        norm_loc.append(loc)
                        norm_scale.append(scale)
                        continue
        parser.row, parser.slot, parser.unit = row, 0, True
        try:
            parser.density(spec, 1.0, 0, False)
        except (DensityError, RecursionError, TypeError) as error:  # TypeError: unhashable names...
            for collector in parser.collectors.values():
                collector.drop_row(row)
            errors[row] = error.reason if isinstance(error, DensityError) else f"{type(error).__name__}: {error}"
            continue
        if parser.slot != 1 or not parser.unit:
            one_leaf = False
    groups = tuple(c.finish() for c in parser.collectors.values() if c.rows)
    return DensityBatch(size=len(densities), impl=pdf, groups=groups, errors=errors, one_leaf=one_leaf)


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
