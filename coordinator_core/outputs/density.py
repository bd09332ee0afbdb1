"""One predictive density in the ``densitypdf`` format, as the games' trackers produce it.

Accepted (``densitypdf`` 0.1.4, and the copy Crunch-Synth scores with,
``crunch_synth/utils/density_pdf.py``)::

    {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 1.0}}
    {"type": "scipy",   "name": "t",    "params": {"df": 4.0, "loc": 0.0, "scale": 2.0}}
    {"type": "mixture", "components": [{"density": <density>, "weight": 0.7}, ...]}

The trackers put the offset of each density inside it, ``"step": k*step`` next to ``"type"``
(the example trackers of both games do). Condor's ``TrackerBase.predict`` docstring shows a
wrapper instead, ``{"step": k*step, "prediction": <density>}``: it is accepted too and
**normalised to the flat form** ``{"step": k*step, "type": …}`` — the only form the games' own
evaluators can score (``density_pdf`` of the wrapper raises "Unknown density type"), and the only
one ``predict_all`` rounds and counts (on the wrapper it silently does neither).

Rules (each refusal is a ``ValidationError`` whose reason starts with the field's path):

* ``type``: ``builtin``, ``scipy`` or ``mixture``. (``statistics`` is refused: densitypdf 0.1.4's
  ``density_pdf`` raises ``TypeError`` on it.)
* ``name``: one of the 15 families of densitypdf's builtin evaluator (``FAMILIES``), for ``scipy``
  too: the same families by their scipy names. Other scipy distributions are refused so that
  every accepted density has a known parameter domain and a bounded evaluation cost.
* ``params``: exactly the family's parameters for ``builtin`` (its evaluator has no defaults:
  a missing one is a ``KeyError`` at scoring); for ``scipy`` the shape parameters, with ``loc``
  and ``scale`` optional (scipy's defaults 0 and 1). No other key. Every value a finite number
  (not a boolean); ``scale`` and every shape parameter > 0 (``loc`` any finite number).
* ``mixture``: a non-empty ``components`` list of ``{"density", "weight"}``; weights finite and
  ≥ 0 (the games take ``abs(weight)``: a negative weight would silently change the mixture),
  summing to 1 within ``WEIGHT_SUM_TOLERANCE`` = 1e-4 (``predict_all`` rounds each weight to 6
  significant digits, an error of at most 5e-7 per weight: the tolerance covers up to 200
  components, while 0.33 × 3 = 0.99 is refused).
* nesting: at most ``MAX_NESTING`` = 3 mixture levels (``densitypdf.density_pdf`` raises
  ``RecursionError`` beyond: its ``max_depth=3``).
* components: at most ``max_components`` leaves, counted as the games count them
  (``count_distribution_components``: a non-mixture is 1, a mixture the sum of its components,
  nested mixtures fully expanded) — 3 for both games today (their ``MAX_DISTRIBUTION_COMPONENTS``,
  "may be increased in the future": the limit is a parameter).
* ``step`` (top level only): a positive integer; equal to ``expected_step`` when given.

Normalised form: a new dict (the input is never mutated), keys in the order ``step`` (if any),
``type``, then ``name``, ``params`` or ``components``; every parameter and weight a Python float.
Values are not rounded (``predict_all`` already rounded them to 6 significant digits).

Not guaranteed: that an evaluator never overflows at extreme values. densitypdf's builtin ``t``
computes ``math.gamma((df + 1) / 2)``, which raises ``OverflowError`` for df > 342, and a scale
of 1e-320 makes ``1 / scale`` infinite; a scorer must still catch evaluation errors.
"""

from __future__ import annotations

import math
from typing import Any

from coordinator_core.outputs._common import (
    as_list,
    as_object,
    exact_keys,
    fail,
    index_path,
    integer,
    key_path,
    real,
    show,
)

__all__ = [
    "CONDOR_MAX_COMPONENTS",
    "CRUNCH_SYNTH_MAX_COMPONENTS",
    "DENSITY_TYPES",
    "FAMILIES",
    "MAX_NESTING",
    "WEIGHT_SUM_TOLERANCE",
    "count_components",
    "validate_density",
]

# MAX_DISTRIBUTION_COMPONENTS of crunch_synth 0.15.0 and condorgame 0.5.3 (constants.py); the
# integration tests check these against the installed packages.
CRUNCH_SYNTH_MAX_COMPONENTS = 3
CONDOR_MAX_COMPONENTS = 3
MAX_NESTING = 3
WEIGHT_SUM_TOLERANCE = 1e-4
DENSITY_TYPES = ("builtin", "scipy", "mixture")

# family -> its shape parameters (each > 0); every family also has loc (any) and scale (> 0).
# The names and parameters of densitypdf.builtin.builtin_density_pdf, which are scipy.stats's.
FAMILIES: dict[str, tuple[str, ...]] = {
    "norm": (),
    "lognorm": ("s",),
    "expon": (),
    "t": ("df",),
    "weibull_min": ("c",),
    "gamma": ("a",),
    "weibull_max": ("c",),
    "beta": ("a", "b"),
    "chi": ("df",),
    "chi2": ("df",),
    "rayleigh": (),
    "pareto": ("b",),
    "cauchy": (),
    "laplace": (),
    "f": ("dfn", "dfd"),
}


def count_components(density: dict[str, Any]) -> int:
    """Leaf components of a *validated* density, as the games count them."""
    if density.get("type") != "mixture":
        return 1
    return sum(count_components(c["density"]) for c in density["components"])


def validate_density(
    raw: Any,
    *,
    max_components: int,
    path: str = "density",
    expected_step: int | None = None,
    max_nesting: int = MAX_NESTING,
) -> dict[str, Any]:
    """The normalised density, or ``ValidationError`` naming the field (see the module docstring)."""
    obj = as_object(raw, path)
    step: int | None = None
    if "prediction" in obj:  # the wrapper {"step": k*step, "prediction": <density>}
        exact_keys(obj, path, ("step", "prediction"))
        step = _step(obj["step"], key_path(path, "step"), expected_step)
        inner_path = key_path(path, "prediction")
        inner = as_object(obj["prediction"], inner_path)
        if "step" in inner:
            inner_step = _step(inner["step"], key_path(inner_path, "step"), None)
            if inner_step != step:
                fail(key_path(inner_path, "step"), f"{inner_step} differs from the wrapper's step {step}")
        body = _density(inner, inner_path, 0, max_nesting, max_components, allow_step=True)
    else:
        if "step" in obj:
            step = _step(obj["step"], key_path(path, "step"), expected_step)
        elif expected_step is not None:
            fail(key_path(path, "step"), f"missing (expected {expected_step}: each density carries its offset)")
        body = _density(obj, path, 0, max_nesting, max_components, allow_step=True)
    leaves = count_components(body)
    if leaves > max_components:
        fail(
            key_path(path, "components") if body["type"] == "mixture" else path,
            f"{leaves} leaf components (nested mixtures expanded, as the games count them); the limit is {max_components}",
        )
    return {"step": step, **body} if step is not None else body


def _step(value: Any, path: str, expected: int | None) -> int:
    step = integer(value, path)
    if step <= 0:
        fail(path, f"must be > 0, got {step}")
    if expected is not None and step != expected:
        fail(path, f"expected {expected}, got {step}")
    return step


def _density(
    obj: dict[Any, Any], path: str, depth: int, max_nesting: int, max_components: int, *, allow_step: bool = False
) -> dict[str, Any]:
    if "type" not in obj:
        fail(key_path(path, "type"), f"missing (one of {', '.join(DENSITY_TYPES)})")
    dtype = obj["type"]
    if dtype not in DENSITY_TYPES:
        extra = " (densitypdf 0.1.4 cannot evaluate it; use builtin norm)" if dtype == "statistics" else ""
        fail(key_path(path, "type"), f"must be one of {', '.join(DENSITY_TYPES)}, got {show(dtype)}{extra}")
    optional = ("step",) if allow_step else ()
    if dtype == "mixture":
        exact_keys(obj, path, ("type", "components"), optional)
        return _mixture(obj, path, depth, max_nesting, max_components)
    exact_keys(obj, path, ("type", "name", "params"), optional)
    name = obj["name"]
    if not isinstance(name, str) or name not in FAMILIES:
        fail(
            key_path(path, "name"),
            f"unknown distribution {show(name)} for type {dtype!r}; use one of {', '.join(FAMILIES)}",
        )
    return {"type": dtype, "name": name, "params": _params(obj["params"], key_path(path, "params"), dtype, name)}


def _params(raw: Any, path: str, dtype: str, name: str) -> dict[str, float]:
    params = as_object(raw, path)
    shapes = FAMILIES[name]
    if dtype == "builtin":
        exact_keys(params, path, (*shapes, "loc", "scale"))
    else:
        exact_keys(params, path, shapes, ("loc", "scale"))
    clean: dict[str, float] = {}
    for key in (*shapes, "loc", "scale"):
        if key not in params:
            continue
        value = real(params[key], key_path(path, key))
        if key != "loc" and not value > 0:
            fail(key_path(path, key), f"must be > 0, got {show(value)}")
        clean[key] = value
    return clean


def _mixture(obj: dict[Any, Any], path: str, depth: int, max_nesting: int, max_components: int) -> dict[str, Any]:
    components_path = key_path(path, "components")
    if depth >= max_nesting:
        fail(path, f"mixtures nested more than {max_nesting} levels deep (densitypdf evaluates at most {max_nesting})")
    components = as_list(obj["components"], components_path)
    if not components:
        fail(components_path, "must not be empty")
    if len(components) > max_components:  # each component is at least one leaf: refuse before walking
        fail(components_path, f"{len(components)} components; the limit is {max_components} leaf components")
    clean = []
    total = 0.0
    for i, component in enumerate(components):
        item_path = index_path(components_path, i)
        item = as_object(component, item_path)
        exact_keys(item, item_path, ("density", "weight"))
        weight = real(item["weight"], key_path(item_path, "weight"))
        if weight < 0:
            fail(key_path(item_path, "weight"), f"must be >= 0, got {show(weight)}")
        density_path = key_path(item_path, "density")
        density = as_object(item["density"], density_path)
        clean.append(
            {"density": _density(density, density_path, depth + 1, max_nesting, max_components), "weight": weight}
        )
        total += weight
    if not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=WEIGHT_SUM_TOLERANCE):
        fail(components_path, f"weights must sum to 1 (±{WEIGHT_SUM_TOLERANCE:g}), got {total:.10g}")
    return {"type": "mixture", "components": clean}
