"""Contracts that run the real games: one per game and forecast profile.

``game_contract(rules, profile)`` builds a :class:`~coordinator_core.contract.CrunchContract` whose
every rule is the game's (see the table in the README, "Run a real game"):

* rounds: one config per subject (``FEED_SUBJECTS``) with the profile's horizon, ``steps`` and
  interval (``FORECAST_PROFILES``); steps must divide the horizon;
* models are called as the games call them: ``tick({subject: [(ts, price), ...]})`` with the
  30-day history on a model's first tick and only new points after (``games.ticks``), then
  ``predict_all(subject, horizon, steps)``;
* outputs: densities (densitypdf) per step of the horizon at every step, at most the game's
  component limit per density (``outputs.validate_multi_resolution``);
* ground truth: the stored prices from the round's timestamp (the newest price the models had) to
  the settlement point (``services.score.path_truth``);
* score: the game's own round score, lower is better (``games.evaluation.score_rounds``: grid CRPS
  summed over every increment of every step, divided by the asset's bound; plus crunch-synth's
  volatility term on its 1 h horizon);
* ranking: ascending, over the mean round score of the window; ``score_recent`` spans the game's
  rolling window of 100 rounds (``TrackerEvaluator(score_window_size=100)``) at the profile's
  interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from coordinator_core.contract import (
    Aggregation,
    AggregationWindow,
    CallArgument,
    CrunchContract,
    ModelCalls,
    ModelMethod,
    PredictionScope,
    RoundProfile,
)
from coordinator_core.errors import ValidationError
from coordinator_core.games.constants import GameRules
from coordinator_core.games.evaluation import Round, score_rounds
from coordinator_core.games.ticks import HISTORY_SECONDS
from coordinator_core.scoring.paths import PriceSeries

ROLLING_ROUNDS = 100  # TrackerEvaluator(score_window_size=100): the games' recent score

GAME_CALLS = ModelCalls(
    tick=ModelMethod(name="tick", arguments=(CallArgument(value="data", type="JSON"),)),
    predict=ModelMethod(
        name="predict_all",
        arguments=(
            CallArgument(value="subject", type="STRING"),
            CallArgument(value="horizon_seconds", type="INT"),
            CallArgument(value="steps", type="JSON"),
        ),
    ),
)


def round_scorer(rules: GameRules, volatility: bool = True) -> Any:
    """``score_round(outputs, truth, scope)`` for ``CrunchContract``: every output of a round scored at
    once by the game's evaluator rules; a prediction the game would refuse fails with the reason."""

    def score_round(outputs: Sequence[Any], truth: Mapping[str, Any], scope: Mapping[str, Any]) -> list[Any]:
        series = PriceSeries.from_entries((int(ts), float(price)) for ts, price in truth["series"])
        spec = Round(ts=int(truth["round_ts"]), horizon=int(truth["horizon_seconds"]), steps=tuple(truth["steps"]))
        result = score_rounds(rules, str(truth["subject"]), series, [spec], [list(outputs)], volatility=volatility)[0]
        out: list[Any] = []
        for j in range(len(outputs)):
            if result.errors[j] is not None:
                out.append(ValidationError(f"{rules.name} cannot score this prediction: {result.errors[j]}"))
                continue
            total = float(result.total[j])
            if not math.isfinite(total):
                out.append(ValidationError(f"{rules.name} scores this prediction {total} (a density gives NaN)"))
                continue
            score: dict[str, Any] = {
                "value": total,
                "success": True,
                "failed_reason": None,
                "price_crps": float(result.price[j]),
                "volatility_crps": float(result.volatility[j]),
                "increments_scored": int(result.increments_scored[j]),
                "increments_skipped": int(result.increments_skipped[j]),
            }
            if result.volatility_errors[j]:
                score["volatility_error"] = result.volatility_errors[j]
            out.append(score)
        return out

    return score_round


def game_contract(rules: GameRules, profile: str, *, volatility: bool = True) -> CrunchContract:
    """The contract of ``rules``' forecast ``profile`` (``"1h"`` or ``"24h"``)."""
    spec = rules.forecast_profiles[profile]
    recent = max(1, math.ceil(ROLLING_ROUNDS * spec.interval / 3600))
    return CrunchContract(
        scope=PredictionScope(
            subject=rules.supported_assets[0],
            horizon_seconds=spec.horizon,
            step_seconds=min(spec.steps),
            steps=list(spec.steps),
        ),
        profile=RoundProfile(horizon=spec.horizon, steps=list(spec.steps), interval=spec.interval),
        supported_subjects=list(rules.crps_t),
        aggregation=Aggregation(
            windows={
                "score_recent": AggregationWindow(hours=recent),
                "score_week": AggregationWindow(hours=max(168, recent)),
            },
            ranking_key="score_recent",
            ranking_direction="asc",
        ),
        calls=GAME_CALLS,
        output_kind="density_path",
        max_components=rules.max_components,
        truth="price_path",
        score_round=round_scorer(rules, volatility=volatility),
        tick_format="price_ticks",
        tick_history_seconds=HISTORY_SECONDS,
    )
