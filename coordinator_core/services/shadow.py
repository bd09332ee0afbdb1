"""Shadow scoring: what a candidate contract would pay, on the stored predictions, before switching.

Over the rounds built in ``[start, end)`` that were resolved, both the current and the candidate
contract re-score the stored predictions against the stored ground truths
(``inputs.actuals_jsonb``) with the scoring service's own pure rule (``domain.scoring.score_rounds``:
the contract's ``score``, ``MISSING_PREDICTION_POLICY``, the ranking direction), total them per
model as the snapshots do (Σ value / Σ counted), rank them with the ranking builder
(``build_ranking``, models without a scored prediction unranked) and turn the ranking into an
emission with ``checkpoint.emission_document`` (the checkpoint service's own money function).

Re-scored: SCORED predictions, and FAILED ones whose reason is the scoring rule's own failure (a
candidate rule may accept them). Every other FAILED or ABSENT prediction keeps its status and gets
the policy's penalty. Outputs are not validated again, and rounds that gave up (no ground truth)
have no score under either contract, as live. The current side is compared with the stored scores
(``reproduced``): it should equal them when the running contract is the one that scored them.

Read only: one unit of work, never committed, and no repository write is called.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from coordinator_core.config import Settings
from coordinator_core.contract import CrunchContract, is_virtual, resolve_object
from coordinator_core.domain.policy import MissingPolicy
from coordinator_core.domain.ranking import Participant, build_ranking, ranked_json
from coordinator_core.domain.scoring import PendingPrediction, score_rounds
from coordinator_core.domain.statuses import PredictionStatus
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.emission import percents
from coordinator_core.errors import ConfigurationError
from coordinator_core.ports import StoredInput, UnitOfWorkFactory
from coordinator_core.services.checkpoint import emission_document, strategy_of

RULE_FAILURE = "scoring function"  # the prefix of CrunchContract.score's failure reasons
PENDING = PredictionStatus.PENDING.value
SCORED = PredictionStatus.SCORED.value
FAILED = PredictionStatus.FAILED.value
ABSENT = PredictionStatus.ABSENT.value
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_candidate(path: str, variable: str = "--contract") -> CrunchContract:
    """The ``CrunchContract`` (or zero-argument factory) at ``module:attr``, as written: no
    environment override applies to a candidate."""
    target = resolve_object(path, variable)
    contract = target if isinstance(target, CrunchContract) else target() if callable(target) else None
    if not isinstance(contract, CrunchContract):
        raise ConfigurationError(f"{variable}: {path!r} is neither a CrunchContract nor a factory of one")
    return contract


@dataclass
class ShadowSide:
    """One contract's leaderboard and emission over the window."""

    ranking: list[dict[str, Any]] = field(default_factory=list)
    emission: dict[str, Any] = field(default_factory=dict)
    strategy: dict[str, Any] = field(default_factory=dict)
    ranking_key: str = ""
    direction: str = "desc"
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass
class ShadowReport:
    start: datetime
    end: datetime
    rounds: int
    predictions: int
    current: ShadowSide
    candidate: ShadowSide
    compared: int  # stored scores the current side was compared with
    reproduced: int  # of which it gave the same value
    diff: list[dict[str, Any]]  # per participant

    @property
    def up_to_date(self) -> bool:
        return self.rounds == 0


def _rescored(prediction: PendingPrediction) -> PendingPrediction:
    """The prediction as the scoring rule sees it: PENDING when its status came from scoring."""
    if prediction.status == SCORED or (
        prediction.status == FAILED and (prediction.failed_reason or "").startswith(RULE_FAILURE)
    ):
        return replace(prediction, status=PENDING, failed_reason=None)
    return prediction


class _Side:
    def __init__(self, contract: CrunchContract, policy: MissingPolicy) -> None:
        self.contract, self.policy = contract, policy
        self.totals: dict[str, WindowTotals] = {}
        self.statuses: Counter[str] = Counter()
        self.values: dict[str, float] = {}

    def score(self, rounds: Sequence[tuple[Mapping[str, Any], Sequence[PendingPrediction], Mapping[str, Any]]]) -> None:
        batch = score_rounds(
            rounds, self.contract.score_batch, self.policy, self.contract.aggregation.ranking_direction, EPOCH
        )
        self.statuses.update(batch.statuses)
        for row in batch.scores:
            part = WindowTotals(
                row.value,
                1,
                int(row.success),
                int(row.prediction_status == FAILED),
                int(row.prediction_status == ABSENT),
            )
            self.totals[row.model_id] = self.totals.get(row.model_id, WindowTotals()) + part
            self.values[row.prediction_id] = row.value

    def result(self, participants: Mapping[str, Participant]) -> ShadowSide:
        aggregation = self.contract.aggregation
        key = aggregation.ranking_key
        entries = build_ranking(
            {key: {m: t for m, t in self.totals.items() if not is_virtual(m)}},  # ensembles are never paid
            key,
            participants,
            key,
            aggregation.ranking_direction,
            self.contract.rank,
            require_scored=True,
        )
        ranking = ranked_json(entries)
        return ShadowSide(
            ranking,
            emission_document(self.contract, ranking),
            strategy_of(self.contract),
            key,
            aggregation.ranking_direction,
            self.statuses,
        )


def emission_diff(current: ShadowSide, candidate: ShadowSide, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per participant (``cruncher_id``): both shares in frac64 and percent, and the change."""

    def shares(side: ShadowSide) -> dict[str, int]:
        return {str(r["cruncher_id"]): int(r["reward_pct"]) for r in side.emission.get("cruncher_rewards") or []}

    before, after = shares(current), shares(candidate)
    shown_before = percents(list(before.items()))
    shown_after = percents(list(after.items()))
    rows = []
    for participant in sorted(set(before) | set(after)):
        a, b = before.get(participant, 0), after.get(participant, 0)
        rows.append(
            {
                "participant": names.get(participant, participant),
                "participant_id": participant,
                "current_pct": a,
                "current_percent": shown_before.get(participant, 0.0),
                "candidate_pct": b,
                "candidate_percent": shown_after.get(participant, 0.0),
                "change_pct": b - a,
            }
        )
    return sorted(rows, key=lambda r: (-abs(r["change_pct"]), r["participant_id"]))


def shadow_score(
    uow: UnitOfWorkFactory,
    current: CrunchContract,
    candidate: CrunchContract,
    settings: Settings,
    start: datetime,
    end: datetime,
    batch_size: int = 500,
) -> ShadowReport:
    """Both contracts over the rounds built in ``[start, end)``; see the module docstring."""
    policy = MissingPolicy.parse(settings.missing_prediction_policy)
    sides = (_Side(current, policy), _Side(candidate, policy))
    rounds = predictions = compared = reproduced = 0
    models: set[str] = set()
    after: tuple[datetime, str] | None = None
    with uow() as work:  # never committed
        while True:
            inputs: list[StoredInput] = work.rounds.resolved_inputs(start, end, after, batch_size)
            if not inputs:
                break
            after = (inputs[-1].round_at, inputs[-1].id)
            truths = {i.id: i.actuals for i in inputs if i.actuals is not None}
            stored = work.rounds.predictions_of(list(truths))
            by_input: dict[str, list[PendingPrediction]] = {}
            for prediction in stored:
                by_input.setdefault(prediction.input_id, []).append(_rescored(prediction))
                models.add(prediction.model_id)
            scopes = {i.id: i.scope for i in inputs}
            batch = [(truths[i], group, scopes[i]) for i, group in by_input.items()]
            for side in sides:
                side.score(batch)
            rounds += len(by_input)
            predictions += len(stored)
            scores = work.scores.scores_of([p.id for p in stored])
            for prediction_id, row in scores.items():
                if prediction_id in sides[0].values:
                    compared += 1
                    reproduced += math.isclose(sides[0].values[prediction_id], row.value, rel_tol=1e-12, abs_tol=1e-12)
            if len(inputs) < batch_size:
                break
        participants = work.models.participants(sorted(models))
    now, then = sides[0].result(participants), sides[1].result(participants)
    names = {p.player_id: p.label for p in participants.values()}
    return ShadowReport(
        start, end, rounds, predictions, now, then, compared, reproduced, emission_diff(now, then, names)
    )
