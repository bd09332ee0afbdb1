"""Density paths: the densities of one (subject, horizon, step), and the multi-resolution answer.

``predict(asset, horizon, step)`` returns ``horizon // step`` densities, the k-th (k = 1…n) over
the price increment between t + (k−1)·step and t + k·step, carrying ``"step": k*step``.
``predict_all(asset, horizon, steps)`` returns ``{step: [densities…]}`` for every requested step
(after JSON the keys are strings: ``{"300": […]}``).

Configuration (``ConfigurationError``, not the model's fault): steps must be positive integers,
distinct, and each must divide the horizon. The games' ``predict_all`` silently skips a step
longer than the horizon and their evaluator floors ``horizon // step``; here both are refused
up front, so a round never asks for a path that cannot be scored.

Model output (``ValidationError`` naming the field, e.g. ``steps.300[4].step: expected 1500, got 1800``):

* a path is a list of exactly ``horizon // step`` densities (an empty list — what
  ``predict_all`` returns when ``predict`` had no answer — is refused like any wrong length);
  the k-th density's ``step`` key must be ``k*step``; each density is validated by
  ``validate_density`` (flat or wrapper form, normalised to the flat form);
* the multi-resolution answer is an object whose keys are exactly the requested steps, each an
  int or its decimal text (``"300"``; not ``"0300"``, ``"300.0"`` or ``" 300"``); a step given
  both as ``300`` and ``"300"`` is refused.

Normalised forms: a path is a list of normalised densities; the multi-resolution answer is a dict
with **int** keys in the order of ``steps`` (a JSON store turns them back into strings, which the
validator accepts, so validating a stored answer again gives the same value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coordinator_core.errors import ConfigurationError
from coordinator_core.outputs._common import as_list, as_object, fail, index_path, key_path, show, step_key
from coordinator_core.outputs.density import MAX_NESTING, validate_density

__all__ = ["check_steps", "validate_density_path", "validate_multi_resolution"]


def check_steps(horizon: int, steps: Sequence[int]) -> tuple[int, ...]:
    """The steps as a tuple, or ``ConfigurationError`` naming the problem."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon <= 0:
        raise ConfigurationError(f"horizon must be a positive integer number of seconds, got {show(horizon)}")
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps:
        raise ConfigurationError(f"steps must be a non-empty list of step seconds, got {show(steps)}")
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
            raise ConfigurationError(f"steps: {show(step)} is not a positive integer number of seconds")
        if horizon % step:
            raise ConfigurationError(
                f"steps: {step} s does not divide the horizon {horizon} s (a path has horizon // step densities)"
            )
    if len(set(steps)) != len(steps):
        raise ConfigurationError(f"steps: a step is listed twice in {list(steps)}")
    return tuple(steps)


def validate_density_path(
    raw: Any,
    *,
    horizon: int,
    step: int,
    max_components: int,
    path: str | None = None,
    max_nesting: int = MAX_NESTING,
) -> list[dict[str, Any]]:
    """The ``horizon // step`` normalised densities of one path, or ``ValidationError``."""
    check_steps(horizon, [step])
    return _path(raw, horizon, step, max_components, f"steps.{step}" if path is None else path, max_nesting)


def validate_multi_resolution(
    raw: Any,
    *,
    horizon: int,
    steps: Sequence[int],
    max_components: int,
    path: str = "steps",
    max_nesting: int = MAX_NESTING,
) -> dict[int, list[dict[str, Any]]]:
    """``{step: [densities…]}`` for exactly ``steps`` (int keys, in that order), or ``ValidationError``."""
    wanted = check_steps(horizon, steps)
    obj = as_object(raw, path)
    given: dict[int, Any] = {}
    for key in list(obj)[: len(wanted) + 1]:  # one more than asked for is enough to name an extra key
        step = step_key(key, path)
        if step in given:
            fail(key_path(path, step), f"step {step} is given twice (as {show(step)} and {show(str(step))})")
        if step not in wanted:
            fail(key_path(path, step), f"not asked for (asked for steps {', '.join(map(str, wanted))})")
        given[step] = obj[key]
    for step in wanted:
        if step not in given:
            fail(key_path(path, step), f"missing (asked for steps {', '.join(map(str, wanted))})")
    return {
        step: _path(given[step], horizon, step, max_components, key_path(path, step), max_nesting) for step in wanted
    }


def _path(raw: Any, horizon: int, step: int, max_components: int, path: str, max_nesting: int) -> list[dict[str, Any]]:
    densities = as_list(raw, path)
    expected = horizon // step
    if len(densities) != expected:
        fail(path, f"expected {expected} densities (horizon {horizon} // step {step}), got {len(densities)}")
    return [
        validate_density(
            density,
            max_components=max_components,
            path=index_path(path, k - 1),
            expected_step=k * step,
            max_nesting=max_nesting,
        )
        for k, density in enumerate(densities, start=1)
    ]
