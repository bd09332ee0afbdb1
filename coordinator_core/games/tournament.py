"""A tournament (batch) competition, as crunch-node and Numerai run them: a round is a dataset.

Every day (an *era*) the models receive, once, the features of many ids and answer one prediction
per id; the targets of an era are revealed ``HORIZON_DAYS`` later and the whole era is scored in
one batch: a model's score is the Spearman rank correlation of its predictions with the targets
(higher is better), over the ids it answered; answering fewer than ``MIN_COVERAGE`` of the era's
ids fails the prediction.

``CRUNCH_CONTRACT=coordinator_core.games.tournament:contract`` with ``MODELS_DIR=examples/tournament``.
The dataset (``data/tournament_eras.csv``, see ``data/README.md``) is synthetic and seeded:
``generate(path)`` writes it again, byte for byte.

Model input (``tick(data)``)::

    {"era": 17, "ids": ["id0000", ...], "features": [[f0, ..., f9], ...]}   # one row per id

Model output (``predict``): ``{"predictions": {"id0000": 0.12, ...}}``.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coordinator_core.config import PACKAGE_DIR
from coordinator_core.contract import (
    Aggregation,
    AggregationWindow,
    CrunchContract,
    PredictionScope,
    Schedule,
    ScheduledPredictionConfig,
)
from coordinator_core.errors import ValidationError

DATASET = PACKAGE_DIR / "data" / "tournament_eras.csv"
ORIGIN = datetime(2026, 1, 5, tzinfo=UTC)  # era 0 opens here (a Monday); one era a day
ERA = timedelta(days=1)
HORIZON_DAYS = 3
ERAS, IDS, FEATURES = 90, 200, 10
MIN_COVERAGE = 0.5
SUBJECT = "TOURNAMENT"


class TournamentOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    predictions: dict[str, float] = Field(min_length=1)

    @field_validator("predictions")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        bad = next((key for key, number in value.items() if not math.isfinite(number)), None)
        if bad is not None:
            raise ValueError(f"the prediction for {bad!r} is not a finite number")
        return value


# -- the dataset ---------------------------------------------------------------------------------------
def generate(path: Path = DATASET, seed: int = 2026) -> None:
    """Write the dataset: per era and id, ten features and a target = a slowly drifting linear
    signal of the first four features plus noise (signal-to-noise about 0.3)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["era", "id", *[f"f{k}" for k in range(FEATURES)], "target"])
        weights = [1.0, -0.6, 0.4, 0.2]
        for era in range(ERAS):
            weights = [w + rng.gauss(0, 0.05) for w in weights]
            for i in range(IDS):
                features = [round(rng.gauss(0, 1), 4) for _ in range(FEATURES)]
                signal = sum(w * f for w, f in zip(weights, features, strict=False))
                target = round(0.3 * signal + rng.gauss(0, 1), 4)
                writer.writerow([era, f"id{i:04d}", *features, target])


@cache
def dataset(path: str = str(DATASET)) -> dict[int, tuple[list[str], list[list[float]], list[float]]]:
    """``{era: (ids, features, targets)}``."""
    eras: dict[int, tuple[list[str], list[list[float]], list[float]]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            ids, features, targets = eras.setdefault(int(row["era"]), ([], [], []))
            ids.append(row["id"])
            features.append([float(row[f"f{k}"]) for k in range(FEATURES)])
            targets.append(float(row["target"]))
    return eras


def era_of(when: datetime) -> int:
    """The era open at ``when``."""
    return int((when - ORIGIN) // ERA)


def round_input(subject: str, now: datetime) -> dict[str, Any] | None:
    """The round's dataset: the features of the era open at ``now`` (``None`` outside the dataset)."""
    era = era_of(now)
    eras = dataset()
    if era not in eras:
        return None
    ids, features, _ = eras[era]
    return {"era": era, "ids": list(ids), "features": [list(row) for row in features]}


def resolve_truth(scope: Mapping[str, Any], meta: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The era's targets, once revealed (``HORIZON_DAYS`` after the era opened); ``None`` before."""
    era = meta.get("era")
    if not isinstance(era, int) or era not in dataset():
        return None
    if now < ORIGIN + era * ERA + timedelta(days=HORIZON_DAYS):
        return None
    ids, _, targets = dataset()[era]
    return {"era": era, "targets": dict(zip(ids, targets, strict=True))}


# -- scoring -------------------------------------------------------------------------------------------
def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(predictions: Sequence[float], targets: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (0 if either is constant)."""
    x, y = _ranks(predictions), _ranks(targets)
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def score_round(outputs: Sequence[Any], truth: Mapping[str, Any], scope: Mapping[str, Any]) -> list[Any]:
    """Per output: the rank correlation with the era's targets over the ids answered, with the
    coverage; fewer than ``MIN_COVERAGE`` of the era's ids answered fails that prediction."""
    targets: Mapping[str, float] = truth["targets"]
    results: list[Any] = []
    for output in outputs:
        answered = [key for key in output["predictions"] if key in targets]
        coverage = len(answered) / len(targets)
        if coverage < MIN_COVERAGE or len(answered) < 3:
            results.append(
                ValidationError(
                    f"predictions cover {len(answered)} of the era's {len(targets)} ids (at least {MIN_COVERAGE:.0%} needed)"
                )
            )
            continue
        value = spearman([output["predictions"][key] for key in answered], [targets[key] for key in answered])
        results.append({"value": value, "success": True, "failed_reason": None, "coverage": coverage})
    return results


def scoring_samples() -> list[tuple[list[Any], dict[str, Any], dict[str, Any]]]:
    """The scoring preflight's samples: the first era's targets against three distinct answers
    (the targets themselves, reversed, and the first feature)."""
    era = min(dataset())
    ids, features, targets = dataset()[era]
    answers = [targets, [-t for t in targets], [row[0] for row in features]]
    outputs = [{"predictions": dict(zip(ids, answer, strict=True))} for answer in answers]
    truth = {"era": era, "targets": dict(zip(ids, targets, strict=True))}
    return [(outputs, truth, {"subject": SUBJECT})]


contract = CrunchContract(
    output_type=TournamentOutput,
    scope=PredictionScope(subject=SUBJECT, horizon_seconds=HORIZON_DAYS * 86_400, step_seconds=HORIZON_DAYS * 86_400),
    scheduled_configs=[
        ScheduledPredictionConfig(
            scope_key="tournament",
            scope_template={"subject": SUBJECT},
            schedule=Schedule(prediction_interval_seconds=86_400, resolve_after_seconds=HORIZON_DAYS * 86_400),
        )
    ],
    aggregation=Aggregation(
        windows={"score_recent": AggregationWindow(hours=7 * 24), "score_season": AggregationWindow(hours=28 * 24)},
        ranking_key="score_recent",
        ranking_direction="desc",
    ),
    supported_subjects=[SUBJECT],
    round_input=round_input,
    truth="dataset",
    resolve_truth=resolve_truth,
    score_round=score_round,
    scoring_samples=scoring_samples,
)
