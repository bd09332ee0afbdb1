"""Prediction streams for the contribution and cluster tests.

* :func:`honest_world`: honest models, each independent noise around one common signal that predicts
  the realised value, with some FAILED/ABSENT answers (NaN);
* :func:`example_streams`: the shipped BTC data's rounds answered by the six example models
  (``examples/models/*/main.py``), re-implemented as functions of the close series, failures
  included (``flaky`` raises, ``sloppy`` answers a string, ``slow`` times out: NaN);
* the rewards of a world under both emission strategies, with one slot per clone cluster.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from coordinator_core.contribution.clusters import Clusters, cluster_capped_emission, emission_slots, find_clusters
from coordinator_core.contribution.contribution import (
    ABSOLUTE_ERROR_BPS,
    contribution_weighted_emission,
    point_contribution,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "coordinator_core" / "data" / "btc_usd_1h.csv"
WINDOW = 120  # FEED_CANDLES_WINDOW: candles given to the models each round
EXAMPLES = ("momentum", "mean_reversion", "flaky", "sloppy", "slow", "noisy")


# -- honest models --------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    predictions: np.ndarray  # (R, M), NaN = FAILED/ABSENT
    realized: np.ndarray  # (R,)
    model_ids: list[str]

    def with_column(self, model_id: str, column: np.ndarray) -> World:
        return World(np.column_stack([self.predictions, column]), self.realized, [*self.model_ids, model_id])


def honest_world(
    seed: int,
    models: int,
    rounds: int,
    *,
    persistence: float = 0.5,
    noise: tuple[float, float] = (0.5, 2.0),
    missing: float = 0.05,
) -> World:
    """``x_i = β_i s_t + σ_i ε_{t,i}`` with ``s`` an AR(1) signal of unit variance (``persistence``
    its coefficient), ``y_t = s_t + η_t``; ``σ_i / β_i`` drawn in ``noise`` (so the true
    correlation of two honest models is at most ``1 / (1 + noise[0]²)``), answers missing at random."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(size=rounds) * math.sqrt(1 - persistence**2)
    signal = np.empty(rounds)
    signal[0] = rng.normal()
    for t in range(1, rounds):
        signal[t] = persistence * signal[t - 1] + shocks[t]
    realized = signal + rng.normal(size=rounds)
    beta = rng.uniform(0.5, 2.0, size=models)
    sigma = beta * rng.uniform(*noise, size=models)
    x = beta * signal[:, None] + sigma * rng.normal(size=(rounds, models))
    x[rng.random((rounds, models)) < missing] = np.nan
    return World(x, realized, [f"m{i:03d}" for i in range(models)])


def lagged(column: np.ndarray, k: int) -> np.ndarray:
    """A copy that repeats ``column`` ``k`` rounds later (nothing to copy in its first ``k`` rounds)."""
    out = np.full_like(column, np.nan)
    out[k:] = column[: len(column) - k] if k else column
    return out


# -- rewards --------------------------------------------------------------------------------------
def window_scores(world: World, clusters: Clusters) -> dict[str, float]:
    """Each model's window score: the mean of its per-round ``absolute_error_bps``, a FAILED/ABSENT
    answer charged the round's worst valid score (``MISSING_PREDICTION_POLICY``'s default), that
    worst taken over the models that follow no other (a lagged copy, often the worst, would
    otherwise lower the charge of everyone else's missing rounds and reorder the ranking)."""
    x, y = world.predictions, world.realized
    scores = ABSOLUTE_ERROR_BPS.score(x, y[:, None])
    followers = clusters.followers
    floor = np.where([m in followers for m in world.model_ids], np.nan, scores)
    valid = ~np.isnan(floor)
    worst = np.where(valid, floor, np.inf).min(axis=1, keepdims=True)
    charged = np.where(np.isnan(scores), np.where(valid.any(axis=1, keepdims=True), worst, np.nan), scores)
    return dict(zip(world.model_ids, np.nanmean(charged, axis=0).tolist(), strict=True))


def ranking(world: World, clusters: Clusters) -> list[str]:
    """Best first: score descending, ties by model id (the default ranker's last tie-break)."""
    scores = window_scores(world, clusters)
    return sorted(world.model_ids, key=lambda m: (-scores[m], m))


def tier_rewards(world: World, clusters: Clusters) -> dict[str, int]:
    ranked = [(m, m, None, rank) for rank, m in enumerate(ranking(world, clusters), start=1)]
    return {r.model_id: r.reward_pct for r in cluster_capped_emission(ranked, clusters).model_rewards}


def contribution_rewards(world: World, clusters: Clusters) -> dict[str, int]:
    slots = emission_slots(clusters, ranking(world, clusters))
    reps = [s.representative for s in slots]
    cols = [world.model_ids.index(m) for m in reps]
    contribution = point_contribution(world.predictions[:, cols], world.realized, reps)
    emission = contribution_weighted_emission(contribution.as_dict(), {}, slots)
    return {r.model_id: r.reward_pct for r in emission.model_rewards}


# -- the shipped data and the example models ------------------------------------------------------
@cache
def closes() -> tuple[np.ndarray, np.ndarray]:
    """``(asof_ts, close)`` of the shipped hourly candles; round ``i`` is at the close of candle ``i``."""
    frame = pl.read_csv(DATA, try_parse_dates=True)
    opened = frame["ts"].dt.epoch("s").to_numpy().astype(np.int64)
    return opened + 3600, frame["close"].to_numpy().astype(np.float64)


def example_predictions(i: int, horizon: int) -> dict[str, float | None]:
    """The six example models' answers at round ``i`` (``None`` = FAILED), as their ``main.py`` compute them."""
    asof, close = closes()
    c = [float(v) for v in close[max(0, i - WINDOW + 1) : i + 1]]
    hour = int(asof[i]) // 3600
    out: dict[str, float | None] = {}
    m = c[-13:]
    out["momentum"] = math.expm1((math.log(m[-1]) - math.log(m[0])) / (len(m) - 1) * (horizon / 3600))
    r = c[-24:]
    mean = sum(r) / len(r)
    out["mean_reversion"] = 0.5 * (mean - r[-1]) / r[-1]
    fast = slow = c[0]
    for v in c[1:]:
        fast += 0.3 * (v - fast)
        slow += 0.05 * (v - slow)
    out["flaky"] = None if (hour + horizon // 3600) % 8 == 3 else 0.2 * (fast - slow) / slow
    out["sloppy"] = None if hour % 10 == 7 else c[-1] / c[-2] - 1
    d = c[-6:]
    timeout = hour % 40 == 11 and horizon == 3600
    out["slow"] = None if timeout else 0.3 * math.expm1(math.log(d[-1] / d[0]) / (len(d) - 1))
    n = c[-48:]
    returns = [math.log(b / a) for a, b in zip(n, n[1:], strict=False)]
    sigma = (sum(v * v for v in returns) / len(returns)) ** 0.5
    out["noisy"] = random.Random(f"{int(asof[i])}|{horizon}").gauss(0.0, sigma)
    return out


@cache
def example_streams(horizon: int) -> World:
    """Every round with a full candle window and a resolved return: ``(R, 6)`` answers, realised returns."""
    asof, close = closes()
    steps = horizon // 3600
    rows = range(WINDOW - 1, len(close) - steps)
    x = np.array([[np.nan if (v := example_predictions(i, horizon)[m]) is None else v for m in EXAMPLES] for i in rows])
    y = np.array([close[i + steps] / close[i] - 1 for i in rows])
    return World(x, y, list(EXAMPLES))


def clusters_of(world: World, **kwargs: float) -> Clusters:
    return find_clusters(world.predictions, world.model_ids, **kwargs)  # type: ignore[arg-type]
