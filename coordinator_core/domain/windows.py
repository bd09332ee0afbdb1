"""Window totals and the one definition of a window score.

A model's score over a set of snapshots is ``Σ value_sum / Σ prediction_count``: the mean of every
counted prediction (scored ones and penalised FAILED/ABSENT ones), weighted by count. The
leaderboard windows, the report API and the checkpoints all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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

    @property
    def score(self) -> float | None:
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
