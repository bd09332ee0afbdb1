"""Window totals and the one definition of a window score.

A window is a range ``(since, until]`` of score times (``domain.periods``). A model's score over it
is, with the default aggregator, ``Σ value / count`` over its counted scores (scored predictions
and penalised FAILED/ABSENT ones): summed from the snapshots it covers, so it costs one GROUP BY.
With a custom aggregator (``MODEL_SCORE_AGGREGATOR``) it is ``aggregator(results)["value"]`` over
the same counted results, in ``(scored_at, prediction_id)`` order (``aggregated_score``). The
leaderboard windows, the report API and the checkpoints all use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from coordinator_core.errors import ConfigurationError


def window_score(value_sum: float, count: int) -> float | None:
    """Mean score of ``count`` counted predictions, ``None`` when there are none."""
    return value_sum / count if count else None


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Summed snapshot columns of one model over one window."""

    value_sum: float = 0.0
    prediction_count: int = 0
    scored_count: int = 0
    failed_count: int = 0
    absent_count: int = 0
    #: set by a custom aggregator: the window's score is then ``custom_score`` (see the module)
    custom: bool = False
    custom_score: float | None = None

    @property
    def score(self) -> float | None:
        if self.custom:
            return self.custom_score
        return window_score(self.value_sum, self.prediction_count)

    def __add__(self, other: WindowTotals) -> WindowTotals:
        return WindowTotals(
            self.value_sum + other.value_sum,
            self.prediction_count + other.prediction_count,
            self.scored_count + other.scored_count,
            self.failed_count + other.failed_count,
            self.absent_count + other.absent_count,
        )

    @classmethod
    def total(cls, parts: Iterable[WindowTotals]) -> WindowTotals:
        out = cls()
        for part in parts:
            out = out + part
        return out

    def as_dict(self) -> dict[str, float | int | None]:
        """The columns plus ``score`` (the read API's shape)."""
        return {
            "value_sum": self.value_sum,
            "prediction_count": self.prediction_count,
            "scored_count": self.scored_count,
            "failed_count": self.failed_count,
            "absent_count": self.absent_count,
            "score": self.score,
        }


def aggregated_score(
    aggregator: Callable[[list[dict[str, Any]]], Mapping[str, Any]], results: list[dict[str, Any]]
) -> float | None:
    """``aggregator(results)["value"]``: a custom aggregator's window score. It must return a mapping
    whose ``value`` is a finite number or ``None`` (no score); anything else names the setting."""
    if not results:
        return None
    out = aggregator(results)
    value = out.get("value") if isinstance(out, Mapping) else out
    if isinstance(out, Mapping) and "value" in out and value is None:
        return None
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(float(value))
    ):
        raise ConfigurationError(
            "MODEL_SCORE_AGGREGATOR: the aggregator must return a mapping whose 'value' is a finite number "
            f"(the window's score) or None, got {type(out).__name__} with value {value!r}"
        )
    return float(value)


def with_aggregate(
    totals: Mapping[str, WindowTotals],
    results: Mapping[str, Sequence[Mapping[str, Any]]],
    aggregator: Callable[[list[dict[str, Any]]], Mapping[str, Any]] | None,
) -> dict[str, WindowTotals]:
    """``totals`` with each model's score set by ``aggregator`` over its counted ``results`` (the
    same window); unchanged without an aggregator (the default mean)."""
    if aggregator is None:
        return dict(totals)
    return {
        model_id: replace(
            t, custom=True, custom_score=aggregated_score(aggregator, [dict(r) for r in results.get(model_id, ())])
        )
        for model_id, t in totals.items()
    }
