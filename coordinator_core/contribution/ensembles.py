"""Virtual ensembles: the ensemble of a round, built from the members' validated outputs.

Members and missing answers
    A member is a model asked in the round. Only members that **answered** take part: a FAILED or
    ABSENT prediction (an exception, a timeout, an output refused by the validator, no answer) has
    no output and is passed as ``None``; it is left out and the ensemble is the equal-weight
    combination of the others (``n`` = the number that answered). When no member answered the
    ensemble is **undefined**: the functions return ``None`` (the matrix form, NaN), never a
    default forecast.

Outputs (the normalised forms of :mod:`coordinator_core.outputs`), for ``n`` answering members
    * point forecasts ``{"value": x}``: the mean, :math:`\\bar x = \\frac1n \\sum_i x_i`
      (:func:`mean_point`; :func:`mean_ensemble` for a rounds × models matrix);
    * one density (``densitypdf`` format): the equal-weight mixture
      :math:`f(z) = \\frac1n \\sum_i f_i(z)` (:func:`mixture_density`), written **flat**: every
      member is expanded into its leaves (non-mixture densities) with the effective weight

      .. math:: \\omega_{i,l} = \\frac1n \\prod_{\\text{mixtures } m \\text{ above leaf } l} \\frac{w_m}{W_m},
                \\qquad W_m = \\sum_{c \\in m} w_c,

      the same normalisation as the games' evaluators (:mod:`coordinator_core.scoring.densities`),
      so the mixture's pdf is exactly the mean of the members' pdfs as the games evaluate them.
      Flat, because nesting each member one level deeper could exceed the three mixture levels
      ``densitypdf`` evaluates. The result is ``{"type": "mixture", "components": [{"density": leaf,
      "weight": ω}, ...]}``, leaves in member order, carrying the members' ``"step"`` at the top
      level (the members must agree on it);
    * density paths and multi-resolution answers (``{step: [densities...]}``): the mixture of every
      step's k-th densities (:func:`mixture_path`, :func:`mixture_multi_resolution`);
    * quantiles ``{"levels", "values"}``: the average of the values level by level (Vincentisation),
      :math:`\\bar q(\\alpha) = \\frac1n \\sum_i q_i(\\alpha)`, which keeps them non-decreasing
      (:func:`average_quantiles`). Every member must use the same levels.

The games' component limit
    The games refuse a density of more than ``MAX_DISTRIBUTION_COMPONENTS`` = 3 leaves
    (:data:`coordinator_core.outputs.CRUNCH_SYNTH_MAX_COMPONENTS`). The ensemble of ``n`` members has
    up to ``3 n`` leaves: it is **not** a game submission and is never sent to a game; it is scored
    by the coordinator's own scorers (:mod:`coordinator_core.scoring`: the grid CRPS and the pdf
    evaluate any number of leaves, at a cost linear in their number). The limit therefore does not
    apply; to validate an ensemble, pass ``max_components=count_components(ensemble)`` to
    :func:`coordinator_core.outputs.validate_density`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "Ensemble",
    "average_quantiles",
    "mean_ensemble",
    "mean_point",
    "mixture_density",
    "mixture_multi_resolution",
    "mixture_path",
]


@dataclass(frozen=True, slots=True)
class Ensemble:
    """The ensemble's output and the positions (in the members given) of the members that answered."""

    output: Any
    members: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.members)


def _answered(outputs: Sequence[Any | None]) -> list[int]:
    return [i for i, output in enumerate(outputs) if output is not None]


def mean_ensemble(predictions: npt.ArrayLike) -> FloatArray:
    """Mean of the answering members per round: ``(R, M)`` point forecasts, NaN = FAILED/ABSENT.

    .. math:: \\bar x_t = \\frac{1}{n_t} \\sum_{i:\\ x_{t,i} \\text{ answered}} x_{t,i}

    Returns shape ``(R,)``; NaN for a round in which no member answered.

    Raises
    ------
    ValueError
        If ``predictions`` is not two-dimensional or holds an infinite value.
    """
    x = np.asarray(predictions, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"predictions must be a rounds x models matrix, got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("predictions hold an infinite value (a missing answer is NaN)")
    answered = ~np.isnan(x)
    count = answered.sum(axis=1)
    total = np.where(answered, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def mean_point(outputs: Sequence[Mapping[str, Any] | None], key: str = "value") -> Ensemble | None:
    """``{key: mean}`` of the answering members' point forecasts; ``None`` when none answered.

    Raises
    ------
    ValueError
        If an answering member's ``key`` is missing or not a finite number.
    """
    used = _answered(outputs)
    if not used:
        return None
    values = []
    for i in used:
        output = outputs[i]
        assert output is not None
        value = output.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"member {i}: {key!r} must be a finite number")
        values.append(float(value))
    return Ensemble({key: math.fsum(values) / len(values)}, tuple(used))


def _leaves(density: Mapping[str, Any], weight: float, out: list[dict[str, Any]], where: str) -> None:
    """Append the leaves of ``density`` with their effective weights (``weight`` × normalised path)."""
    if density.get("type") != "mixture":
        leaf = {k: v for k, v in density.items() if k != "step"}
        if "params" in leaf and isinstance(leaf["params"], Mapping):
            leaf["params"] = dict(leaf["params"])
        out.append({"density": leaf, "weight": weight})
        return
    components = density.get("components")
    if not isinstance(components, Sequence) or not components:
        raise ValueError(f"{where}: a mixture needs a non-empty components list")
    total = math.fsum(float(c["weight"]) for c in components)
    if not total > 0 or any(float(c["weight"]) < 0 for c in components):
        raise ValueError(f"{where}: mixture weights must be >= 0 with a positive sum (validate the outputs first)")
    for c in components:
        _leaves(c["density"], weight * float(c["weight"]) / total, out, where)


def _mixture(densities: Sequence[Mapping[str, Any]], where: str) -> dict[str, Any]:
    steps = {d.get("step") for d in densities}
    if len(steps) > 1:
        raise ValueError(f"{where}: the members' densities carry different steps {sorted(map(str, steps))}")
    components: list[dict[str, Any]] = []
    share = 1.0 / len(densities)
    for i, density in enumerate(densities):
        _leaves(density, share, components, f"{where}member {i}")
    step = steps.pop()
    body = {"type": "mixture", "components": components}
    return {"step": step, **body} if step is not None else body


def mixture_density(densities: Sequence[Mapping[str, Any] | None]) -> Ensemble | None:
    """The equal-weight, flat mixture of the answering members' densities (see the module docstring).

    ``densities`` are validated densities (``validate_density``'s normalised form), ``None`` for a
    member that did not answer. ``None`` when none answered.

    Raises
    ------
    ValueError
        If the members carry different ``step`` values, or a mixture has no components or
        weights that do not sum to a positive number.
    """
    used = _answered(densities)
    if not used:
        return None
    return Ensemble(_mixture([d for d in densities if d is not None], ""), tuple(used))


def mixture_path(paths: Sequence[Sequence[Mapping[str, Any]] | None]) -> Ensemble | None:
    """The k-th ensemble density of a path is the mixture of the members' k-th densities.

    Raises
    ------
    ValueError
        If the answering members' paths differ in length, or as :func:`mixture_density`.
    """
    used = _answered(paths)
    if not used:
        return None
    given = [p for p in paths if p is not None]
    lengths = {len(p) for p in given}
    if len(lengths) != 1:
        raise ValueError(f"the members' paths have different lengths {sorted(lengths)}")
    out = [_mixture([p[k] for p in given], f"[{k}] ") for k in range(lengths.pop())]
    return Ensemble(out, tuple(used))


def _step(key: Any) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isdigit():
        return int(key)
    raise ValueError(f"a step key must be an int or its decimal text, got {key!r}")


def mixture_multi_resolution(
    answers: Sequence[Mapping[Any, Sequence[Mapping[str, Any]]] | None],
) -> Ensemble | None:
    """``{step: [mixture, ...]}`` of the answering members' ``predict_all`` answers (int keys, in
    the first answering member's step order); step keys may be ints or their decimal text.

    Raises
    ------
    ValueError
        If the answering members answer different steps, or as :func:`mixture_path`.
    """
    used = _answered(answers)
    if not used:
        return None
    given = [{_step(k): v for k, v in a.items()} for a in answers if a is not None]
    steps = list(given[0])
    if any(set(a) != set(steps) for a in given):
        raise ValueError("the members answer different steps")
    out: dict[int, list[dict[str, Any]]] = {}
    for step in steps:
        paths = [a[step] for a in given]
        if len({len(p) for p in paths}) != 1:
            raise ValueError(f"step {step}: the members' paths have different lengths")
        out[step] = [_mixture([p[k] for p in paths], f"steps.{step}[{k}] ") for k in range(len(paths[0]))]
    return Ensemble(out, tuple(used))


def average_quantiles(outputs: Sequence[Mapping[str, Any] | None]) -> Ensemble | None:
    """``{"levels", "values"}`` with each value the mean of the answering members' values at that level.

    Raises
    ------
    ValueError
        If the answering members use different levels.
    """
    used = _answered(outputs)
    if not used:
        return None
    given = [o for o in outputs if o is not None]
    levels = [float(v) for v in given[0]["levels"]]
    for i, output in zip(used, given, strict=True):
        if [float(v) for v in output["levels"]] != levels:
            raise ValueError(f"member {i}: levels {list(output['levels'])} differ from {levels}")
    values = [math.fsum(float(o["values"][k]) for o in given) / len(given) for k in range(len(levels))]
    # a mean of non-decreasing sequences is non-decreasing; fsum keeps ties exact
    return Ensemble({"levels": levels, "values": values}, tuple(used))
