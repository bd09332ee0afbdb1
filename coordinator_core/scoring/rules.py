"""Scoring rules for point forecasts of a return. Each is ``fn(prediction, ground_truth) -> dict``.

``prediction`` is the validated model output (default ``{"value": float}``: the predicted return
over the horizon); ``ground_truth`` is the resolved dict (``entry_price``, ``resolved_price``,
``return``, ``direction_up``). Every rule returns at least ``{"value": float}``, higher is better.
"""

from __future__ import annotations

import math
from typing import Any

BPS = 10_000.0


def _number(mapping: dict[str, Any], key: str, what: str) -> float:
    try:
        value = mapping[key]
    except KeyError:
        raise ValueError(f"{what} has no {key!r} key (got keys {sorted(mapping)})") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what}[{key!r}] must be a finite number (got {value!r})")
    return float(value)


def absolute_error_bps(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """Negative absolute error of the predicted return, in basis points (higher is better).

    .. math:: s = -10^4 \\cdot |\\hat r - r|

    A perfect forecast scores 0; predicting +1% when the subject moved -0.5% scores -150.
    """
    predicted = _number(prediction, "value", "prediction")
    realized = _number(ground_truth, "return", "ground_truth")
    return {"value": -BPS * abs(predicted - realized), "success": True, "failed_reason": None}


def directional_pnl_bps(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """Return earned by a unit position in the predicted direction, in basis points.

    .. math:: s = 10^4 \\cdot \\operatorname{sign}(\\hat r) \\cdot r

    A forecast of exactly 0 takes no position and scores 0.
    """
    predicted = _number(prediction, "value", "prediction")
    realized = _number(ground_truth, "return", "ground_truth")
    sign = (predicted > 0) - (predicted < 0)
    return {"value": BPS * sign * realized, "success": True, "failed_reason": None}
