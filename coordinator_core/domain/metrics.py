"""Per-model leaderboard metrics over the ranking window: pure functions of arrays (no database).

A model's window data (``ModelWindow``): its counted score values in ``(scored_at, prediction_id)``
order (scored predictions and penalised FAILED/ABSENT ones, as the window score counts them), how
many predictions it had in the window (``scheduled``: any status) and how many were scored, the
numeric keys of its successful results, and, per SCORED round in round order, its point forecast
and the realised return (point contracts) or the PIT values its scoring function reported
(probabilistic contracts). ``model_metrics`` turns it into ``{column: float | None}``; a value is
``None`` (never NaN or inf) when it is undefined.

Columns (``METRICS`` names the groups a contract chooses, ``CrunchContract.metrics``):

* ``coverage`` = ``scored / scheduled`` (``None`` with nothing scheduled);
* ``n`` = the number of counted score values;
* ``mean`` = their arithmetic mean, and ``mean_ci`` adds ``mean_ci_low`` / ``mean_ci_high``: the
  95 % percentile bootstrap interval of the mean (``scipy.stats.bootstrap``, ``BOOTSTRAP_RESAMPLES``
  resamples, seeded by ``bootstrap_seed(model_id, window)``, so a rebuild gives the same numbers;
  ``None`` below 2 values);
* point forecasts, over the model's SCORED rounds with prediction ``p_t`` and realised return ``r_t``:
  ``ic`` = Spearman's rank correlation of ``(p_t)`` with ``(r_t)`` over the window
  (``scipy.stats.spearmanr``; ``None`` below 3 rounds or when either series is constant);
  ``hit_rate`` = the share of rounds with ``sign(p_t) == sign(r_t)``; ``sharpe`` = mean / sample
  standard deviation (``ddof=1``) of the directional PnL ``d_t = sign(p_t) r_t``, per round, not
  annualised (``None`` below 2 rounds or a zero deviation); ``max_drawdown`` = the largest fall
  of the cumulative PnL ``C_t = d_1 + … + d_t`` from its running peak, the peak including
  ``C_0 = 0`` (``max_t (max_{s<=t} C_s - C_t)``, ≥ 0, in return units);
* probabilistic forecasts (``calibration``): ``pit_50`` / ``pit_80`` / ``pit_90`` = the share of
  PIT values ``u = F(y)`` inside the central interval of that mass, ``|u - 1/2| <= c / 2``;
* ``keys``: every numeric key but ``value`` (booleans excepted) of the successful results, its mean
  over the window, in a column of the key's name (``result_<key>`` if it clashes with a column above).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

#: metric groups a contract may choose, and the output kinds each applies to (None: every kind)
METRICS: dict[str, tuple[str, ...] | None] = {
    "coverage": None,
    "n": None,
    "mean": None,
    "mean_ci": None,
    "ic": ("point",),
    "hit_rate": ("point",),
    "sharpe": ("point",),
    "max_drawdown": ("point",),
    "calibration": ("density_path", "quantiles", "sample_paths"),
    "keys": None,
}
COMMON = ("coverage", "n", "mean", "mean_ci", "keys")
POINT = ("ic", "hit_rate", "sharpe", "max_drawdown")
PIT_LEVELS = (50, 80, 90)
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
#: the columns of each group (``keys`` adds one per result key)
COLUMNS: dict[str, tuple[str, ...]] = {
    "coverage": ("coverage",),
    "n": ("n",),
    "mean": ("mean",),
    "mean_ci": ("mean_ci_low", "mean_ci_high"),
    "ic": ("ic",),
    "hit_rate": ("hit_rate",),
    "sharpe": ("sharpe",),
    "max_drawdown": ("max_drawdown",),
    "calibration": tuple(f"pit_{c}" for c in PIT_LEVELS),
}
ORDER = tuple(c for columns in COLUMNS.values() for c in columns)
RESERVED = frozenset(ORDER)


def ordered_columns(columns: Iterable[str]) -> list[str]:
    """Metric columns in their display order: the built-in ones in ``COLUMNS`` order, then the
    result keys by name (Postgres ``jsonb`` does not keep the stored order)."""
    names = set(columns)
    return [c for c in ORDER if c in names] + sorted(names - RESERVED)


def default_metrics(output_kind: str) -> tuple[str, ...]:
    """The metrics of a contract that does not choose: the common ones, plus the point ones for
    point forecasts or the calibration for probabilistic ones."""
    return (*COMMON, *(POINT if output_kind == "point" else ("calibration",)))


def check_metrics(names: Sequence[str], output_kind: str) -> tuple[str, ...]:
    """``names`` if every one is a known metric for ``output_kind``; else ``ValueError`` naming the
    field (``metrics``)."""
    for name in names:
        if name not in METRICS:
            raise ValueError(f"metrics: unknown metric {name!r} (known: {', '.join(METRICS)})")
        kinds = METRICS[name]
        if kinds is not None and output_kind not in kinds:
            raise ValueError(f"metrics: {name!r} applies to {'/'.join(kinds)} outputs, not {output_kind!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics: a metric is named twice ({list(names)})")
    return tuple(names)


@dataclass(frozen=True)
class ModelWindow:
    """One model's data over the ranking window (module docstring)."""

    values: Sequence[float] = ()
    scheduled: int = 0
    scored: int = 0
    results: Sequence[Mapping[str, Any]] = ()
    predictions: Sequence[float] = ()
    realised: Sequence[float] = ()
    pits: Sequence[float] = field(default_factory=tuple)


def finite(value: float | None) -> float | None:
    """``value`` as a float, ``None`` when missing, NaN or infinite (JSON-safe)."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def bootstrap_seed(model_id: str, window: str) -> int:
    """A fixed seed per (model, window): SHA-256 of ``"<model_id>|<window>"``, first 8 bytes."""
    return int.from_bytes(hashlib.sha256(f"{model_id}|{window}".encode()).digest()[:8], "big")


def mean_ci(values: npt.ArrayLike, seed: int) -> tuple[float | None, float | None]:
    """The 95 % percentile bootstrap interval of the mean (``None`` below 2 values)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        return None, None
    if np.all(data == data[0]):  # every resample has the same mean
        return float(data[0]), float(data[0])
    res = stats.bootstrap(
        (data,),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return finite(res.confidence_interval.low), finite(res.confidence_interval.high)


def information_coefficient(predictions: Sequence[float], realised: Sequence[float]) -> float | None:
    """Spearman's rank correlation of the predictions with the realised returns (``None`` below 3
    pairs or when either series is constant)."""
    p, r = np.asarray(predictions, dtype=np.float64), np.asarray(realised, dtype=np.float64)
    if p.size < 3 or np.all(p == p[0]) or np.all(r == r[0]):
        return None
    return finite(stats.spearmanr(p, r).statistic)


def directional_pnl(predictions: Sequence[float], realised: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``sign(p_t) * r_t`` per round."""
    return np.sign(np.asarray(predictions, dtype=np.float64)) * np.asarray(realised, dtype=np.float64)


def sharpe(pnl: npt.ArrayLike) -> float | None:
    """Mean / sample standard deviation (``ddof=1``) per round; ``None`` below 2 rounds or with no
    deviation."""
    data = np.asarray(pnl, dtype=np.float64)
    if data.size < 2:
        return None
    deviation = float(np.std(data, ddof=1))
    return finite(float(np.mean(data)) / deviation) if deviation > 0 else None


def max_drawdown(pnl: npt.ArrayLike) -> float | None:
    """``max_t (max_{s<=t} C_s - C_t)`` of the cumulative PnL, ``C_0 = 0`` included (``None``
    without rounds)."""
    data = np.asarray(pnl, dtype=np.float64)
    if data.size == 0:
        return None
    cumulative = np.concatenate(([0.0], np.cumsum(data)))
    return finite(float(np.max(np.maximum.accumulate(cumulative) - cumulative)))


def pit_coverage(pits: Sequence[float], level: int) -> float | None:
    """The share of PIT values inside the central ``level`` % interval: ``|u - 1/2| <= level/200``."""
    u = np.asarray(pits, dtype=np.float64)
    u = u[np.isfinite(u)]
    if u.size == 0:
        return None
    return float(np.mean(np.abs(u - 0.5) <= level / 200 + 1e-12))


def key_means(results: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """The mean of every numeric key but ``value`` over the results that have it."""
    sums: dict[str, list[float]] = {}
    for result in results:
        for key, value in result.items():
            if key == "value" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(float(value)):
                sums.setdefault(str(key), []).append(float(value))
    return {key: finite(float(np.mean(v))) for key, v in sorted(sums.items())}


def model_metrics(data: ModelWindow, names: Sequence[str], seed: int) -> dict[str, float | None]:
    """The chosen metric columns of one model (module docstring), in ``names`` order."""
    out: dict[str, float | None] = {}
    values = np.asarray(data.values, dtype=np.float64)
    pnl = directional_pnl(data.predictions, data.realised) if any(n in POINT for n in names) else None
    for name in names:
        if name == "coverage":
            out["coverage"] = data.scored / data.scheduled if data.scheduled else None
        elif name == "n":
            out["n"] = float(values.size)
        elif name == "mean":
            out["mean"] = finite(float(np.mean(values))) if values.size else None
        elif name == "mean_ci":
            out["mean_ci_low"], out["mean_ci_high"] = mean_ci(values, seed)
        elif name == "ic":
            out["ic"] = information_coefficient(data.predictions, data.realised)
        elif name == "hit_rate":
            p, r = np.asarray(data.predictions, dtype=np.float64), np.asarray(data.realised, dtype=np.float64)
            out["hit_rate"] = float(np.mean(np.sign(p) == np.sign(r))) if p.size else None
        elif name == "sharpe":
            assert pnl is not None
            out["sharpe"] = sharpe(pnl)
        elif name == "max_drawdown":
            assert pnl is not None
            out["max_drawdown"] = max_drawdown(pnl)
        elif name == "calibration":
            for level in PIT_LEVELS:
                out[f"pit_{level}"] = pit_coverage(data.pits, level)
        elif name == "keys":
            for key, mean in key_means(data.results).items():
                out[f"result_{key}" if key in RESERVED else key] = mean
    return out


def pit_values(result: Mapping[str, Any]) -> list[float]:
    """The PIT values a scoring function reported in its result (key ``pit``: a number or a list of
    numbers in [0, 1]); none otherwise."""
    raw = result.get("pit")
    items = raw if isinstance(raw, list | tuple) else [raw]
    return [
        float(v)
        for v in items
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)) and 0 <= v <= 1
    ]
