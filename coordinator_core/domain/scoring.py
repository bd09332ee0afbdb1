"""Scoring a batch of resolved rounds: a pure function of the predictions, their ground truths,
the competition's scoring rule and the missing-prediction policy.

For every resolved round (input):

* each PENDING prediction is scored by the rule; a rule that raises or returns a bad shape fails
  that prediction only (status FAILED, the reason kept);
* FAILED and ABSENT predictions (including those just failed) are charged the policy's penalty,
  computed from the round's valid scores (``MissingPolicy.penalty``); with ``exclude`` they get no
  score row. The valid scores of the baseline leave out the virtual ensembles (``ensemble:<name>``,
  never paid) and the models in ``not_in_baseline`` (the followers of clone clusters): neither may
  move what a missing answer of a paid model is charged. ``statuses`` counts the paid models'
  predictions only (an ensemble's rows are written, not counted).

Every score row carries ``scored_at`` (the time its score belongs to) and is keyed by its
prediction, so writing the same batch twice changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coordinator_core.domain.policy import MissingPolicy
from coordinator_core.domain.ranking import is_virtual
from coordinator_core.domain.statuses import PredictionStatus
from coordinator_core.errors import ValidationError

SCORED = PredictionStatus.SCORED.value
FAILED = PredictionStatus.FAILED.value
PENDING = PredictionStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class PendingPrediction:
    """A stored prediction of a round being scored (any status)."""

    id: str
    model_id: str
    input_id: str
    status: str
    output: Mapping[str, Any]
    failed_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One row of ``scores``: a scored prediction, or a penalised FAILED/ABSENT one."""

    prediction_id: str
    model_id: str
    input_id: str
    prediction_status: str
    value: float
    success: bool
    failed_reason: str | None
    result: Mapping[str, Any]
    scored_at: datetime

    @property
    def id(self) -> str:
        return f"SCR_{self.prediction_id}"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A prediction's new status (SCORED or FAILED) and, when FAILED, why."""

    prediction_id: str
    status: str
    failed_reason: str | None = None


@dataclass
class ScoredBatch:
    scores: list[ScoreRow] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)


#: Scores the outputs of one round: ``(outputs, truth, scope)`` -> per output, the validated result
#: (a mapping with a finite ``value``) or the ``ValidationError`` that fails that prediction.
RoundRule = Callable[
    [Sequence[Any], Mapping[str, Any], Mapping[str, Any]], Sequence[Mapping[str, Any] | ValidationError]
]


def per_prediction(score: Callable[[Any, Any], Mapping[str, Any]]) -> RoundRule:
    """A round rule from a rule of one prediction that raises ``ValidationError``."""

    def rule(
        outputs: Sequence[Any], truth: Mapping[str, Any], scope: Mapping[str, Any]
    ) -> list[Mapping[str, Any] | ValidationError]:
        results: list[Mapping[str, Any] | ValidationError] = []
        for output in outputs:
            try:
                results.append(score(output, truth))
            except ValidationError as exc:
                results.append(exc)
        return results

    return rule


def score_rounds(
    rounds: Iterable[tuple[Mapping[str, Any], Sequence[PendingPrediction], Mapping[str, Any]]],
    score: RoundRule,
    policy: MissingPolicy,
    direction: str,
    scored_at: datetime | Sequence[datetime],
    not_in_baseline: Collection[str] = frozenset(),
) -> ScoredBatch:
    """Score every ``(ground_truth, predictions, scope)`` round; see the module docstring. ``score``
    sees the round's PENDING outputs at once. ``scored_at``: one time for every round, or one per
    round (in order)."""
    batch = ScoredBatch()
    items = list(rounds)
    times = [scored_at] * len(items) if isinstance(scored_at, datetime) else list(scored_at)
    if len(times) != len(items):
        raise ValueError(f"score_rounds: {len(times)} score times for {len(items)} rounds")
    for (truth, predictions, scope), at in zip(items, times, strict=True):
        values: list[float] = []
        scored = 0
        missing: list[tuple[PendingPrediction, str, str | None]] = []
        reason: str | None
        pending = [p for p in predictions if p.status == PENDING]
        results = iter(score([p.output for p in pending], truth, scope)) if pending else iter(())
        for prediction in predictions:
            if prediction.status != PENDING:
                missing.append((prediction, prediction.status, prediction.failed_reason))
                continue
            result = next(results)
            if isinstance(result, ValidationError):
                reason = str(result)
                batch.changes.append(StatusChange(prediction.id, FAILED, reason))
                missing.append((prediction, FAILED, reason))
                continue
            value = float(result["value"])
            if not is_virtual(prediction.model_id):
                scored += 1
                if prediction.model_id not in not_in_baseline:
                    values.append(value)
            batch.changes.append(StatusChange(prediction.id, SCORED))
            batch.scores.append(
                ScoreRow(
                    prediction.id,
                    prediction.model_id,
                    prediction.input_id,
                    SCORED,
                    value,
                    bool(result.get("success", True)),
                    result.get("failed_reason"),
                    result,
                    at,
                )
            )
        penalty = policy.penalty(values, direction)
        for prediction, status, reason in missing:
            if not is_virtual(prediction.model_id):
                batch.statuses[status] += 1
            if penalty is None:
                continue
            result = {"value": penalty, "success": False, "failed_reason": reason, "penalty": str(policy)}
            batch.scores.append(
                ScoreRow(
                    prediction.id,
                    prediction.model_id,
                    prediction.input_id,
                    status,
                    penalty,
                    False,
                    reason,
                    result,
                    at,
                )
            )
        batch.statuses[SCORED] += scored
    return batch
