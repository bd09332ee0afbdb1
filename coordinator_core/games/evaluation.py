"""Score rounds exactly as each game's ``TrackerEvaluator`` does, batched over trackers (pure).

A **round** is one prediction request: at ``ts`` every tracker returns, for each step ``s`` of the
profile, ``horizon // s`` densities of the price increments ``price(ts + k s) - price(ts + (k-1) s)``
(``TrackerBase.predict_all``'s output, ``{step: [density, ...]}``). All trackers of a round share one
truth, so :func:`score_rounds` resolves it once and scores every tracker's densities together.

A round's score (both games, ``TrackerEvaluator._score_quarantines``)::

    price = (sum over steps s, in the round's step order, of
             sum over the scored increments i of CRPS_grid(density[s][i], observed[s][i], +-K_s t[asset]))
            / t[asset]

a **sum** over all increments of every resolution, not a mean, divided by the asset's bound
(:mod:`coordinator_core.scoring.grid_crps`, :mod:`coordinator_core.scoring.paths`). crunch-synth's
evaluator then adds, by default, for the 1h horizon of BTC, ETH, SOL, XRP and HYPE::

    total = price + VOL_CRPS_K[asset] * volatility_crps(paths simulated from the densities, realized path)

with 1,000 paths seeded by ``crc32(f"{asset}:{ts + horizon}")`` (:mod:`coordinator_core.scoring.simulation`,
:mod:`coordinator_core.scoring.ensemble`). When the realized path has no first point or fewer than
two points, the term is left out (price only); when the densities cannot be simulated (or give a
zero price or a non-finite CRPS) the evaluator warns and scores the price only, which is what
:func:`score_rounds` does, reporting the reason in ``volatility_errors`` (live scoring counts such a
prediction as failed).

What a round needs from the price feed
    * ``ts``: the timestamp of the last price the trackers had when predicting (the evaluator stamps
      the round with ``PriceStore.get_last_price`` at prediction time, see :func:`round_timestamp`).
      It is a stored point itself, so it is the closest price to the first targets: **nothing
      before ``ts`` is read** (the trackers' history never enters the score).
    * every stored point from ``ts`` to the **settlement point**, the first stored point at or after
      ``ts + horizon``. Its arrival makes the round due (``Quarantine.pop``: ``ts + horizon <=``
      the last stored timestamp); the targets ``ts + j g`` (``g`` the finest step: every minute
      for 1h rounds, every 5 minutes for 24h rounds) all take their closest price among these
      points, at any distance, so later points never change the score.
    * the volatility term (crunch-synth, 1h, BTC/ETH/SOL/XRP/HYPE) reads the same points: each minute
      ``ts, ts + 60, ..., ts + 3600`` takes its closest point if within 30 s, else is a gap; the
      simulation starts from the price at ``ts``.

    Pass the series as stored when the round is scored; ``Round.evaluated_at`` (the pop time) cuts it
    there and applies the store's 30-day window, which only matters for points that arrive late
    or out of order.

Differences from ``TrackerEvaluator`` (on purpose)
    * Each round keeps its own score. The evaluator stores one score per evaluation: the **mean**
      over the rounds that come due at that evaluation (``np.mean`` of their price scores, plus the
      mean of their volatility terms with 0 for those without one). With one round due per
      evaluation (the games' own driving: a prediction every ``interval``, rounds due one at a time)
      the two agree exactly.
    * A prediction the evaluator would raise on (a missing step, a wrong length, a density
      ``densitypdf`` or scipy cannot evaluate at a scored increment, too many components) crashes
      its evaluation; here that tracker gets NaN and a reason in ``errors``, the others are scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from coordinator_core.games.constants import GAMES, GameName, GameRules
from coordinator_core.scoring.ensemble import volatility_crps
from coordinator_core.scoring.grid_crps import crps_bounds, crps_on_grid_checked
from coordinator_core.scoring.paths import PriceSeries, RoundTruth, observed_increments, realized_path
from coordinator_core.scoring.simulation import SimulationError, simulate_price_paths, volatility_seed

FloatArray = npt.NDArray[np.float64]
#: ``{step: [density, ...]}`` as ``predict_all`` returns it (steps as ints, or as digit strings from JSON).
Prediction = Mapping[Any, Sequence[Any]]
#: Trackers whose simulated paths are scored together (1,000 paths x 61 points each).
VOLATILITY_BATCH = 16


@dataclass(frozen=True)
class Round:
    """One prediction round of one asset.

    Attributes
    ----------
    ts : int
        The round's timestamp: the last stored price timestamp when the trackers predicted.
    horizon : int
        Seconds.
    steps : tuple of int
        The step resolutions scored, in the order the evaluator sums them.
    evaluated_at : int or None
        When the round is scored (the evaluator's pop time: its last price timestamp then). The
        series is cut there and to the store's 30-day window; None uses the series as given.
    """

    ts: int
    horizon: int
    steps: tuple[int, ...]
    evaluated_at: int | None = None

    @property
    def resolution_ts(self) -> int:
        """``ts + horizon``: when the round comes due, and its volatility seed's timestamp."""
        return self.ts + self.horizon

    @classmethod
    def of_profile(cls, game: GameName | GameRules, profile: str, ts: int, evaluated_at: int | None = None) -> Round:
        """The round of a game's forecast profile (``"1h"`` or ``"24h"``) made at ``ts``."""
        spec = get_game(game).forecast_profiles[profile]
        return cls(ts=ts, horizon=spec.horizon, steps=spec.steps, evaluated_at=evaluated_at)


@dataclass(frozen=True)
class RoundScores:
    """Scores of one round for its ``N`` trackers (arrays of shape ``(N,)``, lower is better).

    Attributes
    ----------
    round : Round
    truth : RoundTruth
        The observed increments every tracker was scored against.
    total : numpy.ndarray
        ``price + volatility``; NaN where the tracker could not be scored (see ``errors``), and
        where the evaluator itself gets NaN (a scipy density with invalid parameters).
    price : numpy.ndarray
        The normalised price CRPS sum.
    volatility : numpy.ndarray
        The volatility term already in ``total`` (0 where there is none).
    volatility_scored : numpy.ndarray of bool
        Whether ``total`` includes a volatility term.
    increments_scored, increments_skipped : numpy.ndarray of int
        Increments scored and skipped (both ends on one stored point); the same for every tracker
        of the round since they share the truth, 0 scored for a tracker that failed.
    errors : tuple of (str or None)
        Why a tracker could not be scored (the evaluator would raise), else None.
    volatility_errors : tuple of (str or None)
        Why a tracker's volatility term failed (scored on price only), else None.
    """

    round: Round
    truth: RoundTruth
    total: FloatArray
    price: FloatArray
    volatility: FloatArray
    volatility_scored: npt.NDArray[np.bool_]
    increments_scored: npt.NDArray[np.int64]
    increments_skipped: npt.NDArray[np.int64]
    errors: tuple[str | None, ...]
    volatility_errors: tuple[str | None, ...]


def get_game(game: GameName | GameRules) -> GameRules:
    """The rules of ``"condorgame"`` or ``"crunch_synth"`` (a :class:`GameRules` passes through)."""
    if isinstance(game, GameRules):
        return game
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r} (known: {sorted(GAMES)})")
    return GAMES[game]


def crps_bounds_for(game: GameName | GameRules, asset: str, step: int) -> tuple[float, float]:
    """A game's CRPS grid bounds for an asset and step: :math:`\\pm K t_{\\text{asset}}`,
    :math:`K = \\sqrt{\\text{step}/300}` above the 300 s base step, else 1."""
    rules = get_game(game)
    if asset not in rules.crps_t:
        raise ValueError(f"{rules.name} has no CRPS bound for asset {asset!r} (known: {sorted(rules.crps_t)})")
    return crps_bounds(rules.crps_t[asset], step, rules.base_step)


def round_timestamp(series: PriceSeries, predicted_at: int) -> int:
    """The timestamp a round made at ``predicted_at`` carries: the last stored price at or before it.

    Raises
    ------
    ValueError
        If no price is stored by then (the evaluator cannot predict without one).
    """
    stop = int(np.searchsorted(series.ts, predicted_at, side="right"))
    if stop == 0:
        raise ValueError(f"no stored price at or before {predicted_at}")
    return int(series.ts[stop - 1])


def count_components(density: Any) -> int:
    """Leaf components of a density, nested mixtures expanded (``count_distribution_components``)."""
    if not isinstance(density, Mapping):
        raise ValueError(f"a density must be a mapping (got {type(density).__name__})")
    if density.get("type") != "mixture":
        return 1
    total = 0
    for component in density.get("components", []):
        total += count_components(component.get("density", {}) if isinstance(component, Mapping) else component)
    return total


def validate_prediction(game: GameName | GameRules, prediction: Any, horizon: int, steps: Sequence[int]) -> str | None:
    """Why a game would refuse a prediction, or None.

    The evaluator's ``_validate_predictions`` (every step ``<= horizon`` present with
    ``horizon // step`` densities) and ``predict_all``'s ``validate_distribution`` (at most
    ``max_components`` leaf components per density).
    """
    rules = get_game(game)
    if not isinstance(prediction, Mapping):
        return f"a prediction must map steps to densities (got {type(prediction).__name__})"
    for step in steps:
        if step > horizon:
            continue
        expected = horizon // step
        densities = prediction.get(step)
        if densities is None:
            return f"Missing predictions for step {step}"
        if not isinstance(densities, Sequence) or isinstance(densities, str | bytes):
            return f"predictions for step {step} must be a list of densities"
        if len(densities) != expected:
            return f"Prediction length mismatch for step {step}: {len(densities)} != {expected}"
        for density in densities:
            try:
                count = count_components(density)
            except (ValueError, AttributeError) as error:
                return f"step {step}: {error}"
            if count > rules.max_components:
                return (
                    f"Distribution contains {count} total components (including nested mixtures), "
                    f"but the maximum allowed is {rules.max_components}."
                )
    return None


def _round_significant(value: float, digits: int) -> float:
    if value == 0.0:
        return 0.0
    try:
        order = math.floor(math.log10(abs(value)))
    except (ValueError, OverflowError) as error:
        raise ValueError(f"cannot round {value!r} to {digits} significant digits") from error
    return round(value, digits - order - 1)


def _round_density(density: Any, digits: int) -> Any:
    if not isinstance(density, Mapping):
        return density
    out = dict(density)
    if density.get("type") == "mixture":
        out["components"] = [
            {
                **component,
                "weight": _round_significant(component["weight"], digits),
                "density": _round_density(component["density"], digits),
            }
            for component in density["components"]
        ]
    elif isinstance(density.get("params"), Mapping):
        out["params"] = {
            k: _round_significant(v, digits) if isinstance(v, int | float) else v for k, v in density["params"].items()
        }
    return out


def round_prediction(prediction: Prediction, digits: int = 6) -> dict[int, list[Any]]:
    """A copy with every parameter and weight rounded to ``digits`` significant digits.

    What ``predict_all`` does to a tracker's densities before they are quarantined
    (``round_distribution_digits(dist, digits=6)``: ``round(v, digits - floor(log10|v|) - 1)``),
    so scoring sees the rounded values.

    Raises
    ------
    ValueError
        For a NaN or infinite value (``math.floor(math.log10(...))`` raises there too).
    """
    return {step: [_round_density(d, digits) for d in densities] for step, densities in prediction.items()}


def _normalise(prediction: Any) -> tuple[dict[int, Sequence[Any]] | None, str | None]:
    """Steps as ints (JSON gives strings), in the prediction's own order."""
    if not isinstance(prediction, Mapping):
        return None, f"a prediction must map steps to densities (got {type(prediction).__name__})"
    out: dict[int, Sequence[Any]] = {}
    for key, densities in prediction.items():
        if isinstance(key, bool) or not (
            isinstance(key, int | np.integer) or (isinstance(key, str) and key.strip().isdigit())
        ):
            return None, f"prediction keys must be steps in seconds (got {key!r})"
        out[int(key)] = densities
    return out, None


@dataclass
class _StepBatch:
    densities: list[Any] = field(default_factory=list)
    observations: list[FloatArray] = field(default_factory=list)
    segments: list[tuple[int, int, int, int]] = field(default_factory=list)  # round, tracker, start, stop


def score_rounds(
    game: GameName | GameRules,
    asset: str,
    series: PriceSeries,
    rounds: Sequence[Round],
    predictions: Sequence[Sequence[Prediction | None]],
    *,
    volatility: bool = True,
) -> list[RoundScores]:
    """Score rounds of one asset as the game's ``TrackerEvaluator`` does, every tracker at once.

    Parameters
    ----------
    game : {"condorgame", "crunch_synth"} or GameRules
    asset : str
        Must have a CRPS bound in the game.
    series : PriceSeries
        The stored prices (see the module docstring for which points a round reads).
    rounds : sequence of Round
    predictions : sequence (one per round) of sequences (one per tracker) of predictions
        ``{step: [density, ...]}`` as ``predict_all`` returns them (rounded, see
        :func:`round_prediction`); string step keys are accepted; None for a missing prediction.
        Rounds may have different numbers of trackers.
    volatility : bool
        crunch-synth's ``score_volatility`` (default True, like its evaluator); ignored for condorgame.

    Returns
    -------
    list of RoundScores
        One per round, in order; each round's own score (not averaged with rounds due with it).

    Raises
    ------
    ValueError
        For an unknown game or asset, ``len(rounds) != len(predictions)``, or an invalid round.
    """
    rules = get_game(game)
    if asset not in rules.crps_t:
        raise ValueError(f"{rules.name} has no CRPS bound for asset {asset!r} (known: {sorted(rules.crps_t)})")
    if len(rounds) != len(predictions):
        raise ValueError(f"{len(rounds)} rounds but {len(predictions)} prediction lists")
    t_asset = rules.crps_t[asset]

    views: list[PriceSeries] = []
    truths: list[RoundTruth] = []
    valid: list[list[dict[int, Sequence[Any]] | None]] = []
    errors: list[list[str | None]] = []
    batches: dict[int, _StepBatch] = {}
    for r, (spec, entries) in enumerate(zip(rounds, predictions, strict=True)):
        as_of = spec.evaluated_at if spec.evaluated_at is not None else (int(series.ts[-1]) if len(series) else 0)
        view = series.as_stored_at(as_of, rules.store_window_days)
        truth = observed_increments(view, spec.ts, spec.horizon, spec.steps)
        views.append(view)
        truths.append(truth)
        round_valid: list[dict[int, Sequence[Any]] | None] = []
        round_errors: list[str | None] = []
        for entry in entries:
            if entry is None:
                round_valid.append(None)
                round_errors.append("no prediction")
                continue
            normal, reason = _normalise(entry)
            reason = reason or validate_prediction(rules, normal, spec.horizon, spec.steps)
            round_valid.append(normal if reason is None else None)
            round_errors.append(reason)
        valid.append(round_valid)
        errors.append(round_errors)
        for step in spec.steps:
            increments = truth.steps[step]
            scored = np.flatnonzero(increments.scored).tolist()
            batch = batches.setdefault(step, _StepBatch())
            for j, normal in enumerate(round_valid):
                if normal is None:
                    continue
                densities = normal[step]
                start = len(batch.densities)
                batch.densities.extend(densities[i] for i in scored)
                batch.observations.append(increments.delta[scored])
                batch.segments.append((r, j, start, start + len(scored)))

    step_sums: dict[tuple[int, int, int], float] = {}
    for step, batch in batches.items():
        lo, hi = crps_bounds(t_asset, step, rules.base_step)
        observations = np.concatenate(batch.observations) if batch.observations else np.empty(0)
        values, reasons = crps_on_grid_checked(
            batch.densities, observations, lo, hi, num_points=rules.num_points, evaluator=rules.evaluator
        )
        for r, j, start, stop in batch.segments:
            failed = next((reason for reason in reasons[start:stop] if reason is not None), None)
            if failed is not None:
                if errors[r][j] is None:
                    errors[r][j] = f"step {step}: {failed}"
                continue
            step_sums[(r, j, step)] = float(np.sum(values[start:stop]))

    results: list[RoundScores] = []
    for r, spec in enumerate(rounds):
        n = len(valid[r])
        price = np.full(n, np.nan)
        for j in range(n):
            if errors[r][j] is not None:
                valid[r][j] = None
                continue
            total = 0.0
            for step in spec.steps:
                total += step_sums[(r, j, step)]
            price[j] = total / t_asset
        vol, vol_scored, vol_errors = _volatility_terms(rules, asset, spec, views[r], valid[r], volatility)
        ok = np.array([e is None for e in errors[r]], dtype=bool)
        truth = truths[r]
        results.append(
            RoundScores(
                round=spec,
                truth=truth,
                total=np.where(vol_scored, price + vol, price),
                price=price,
                volatility=vol,
                volatility_scored=vol_scored,
                increments_scored=np.where(ok, truth.n_scored, 0).astype(np.int64),
                increments_skipped=np.full(n, truth.n_skipped, dtype=np.int64),
                errors=tuple(errors[r]),
                volatility_errors=tuple(vol_errors),
            )
        )
    return results


def _volatility_terms(
    rules: GameRules,
    asset: str,
    spec: Round,
    view: PriceSeries,
    predictions: Sequence[dict[int, Sequence[Any]] | None],
    enabled: bool,
) -> tuple[FloatArray, npt.NDArray[np.bool_], list[str | None]]:
    """crunch-synth's volatility term of every tracker of a round (``score_volatility``)."""
    n = len(predictions)
    vol = np.zeros(n)
    scored = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    rule = rules.volatility
    if not enabled or rule is None or asset not in rule.assets:
        return vol, scored, reasons
    pending: dict[tuple[int, int], list[tuple[int, FloatArray]]] = {}
    real_paths: dict[tuple[int, int], FloatArray] = {}

    def flush(key: tuple[int, int]) -> None:
        items = pending.pop(key, [])
        if not items:
            return
        values = volatility_crps(np.stack([p for _, p in items]), real_paths[key], key[0], rule.blocks)
        for (j, _), value in zip(items, values, strict=True):
            if not math.isfinite(float(value)):
                reasons[j] = "non-finite volatility CRPS"
                continue
            vol[j] = rule.k[asset] * float(value)
            scored[j] = True

    for j, prediction in enumerate(predictions):
        if prediction is None:
            continue
        increment = min(prediction)
        horizon = increment * len(prediction[increment])
        if horizon != rule.horizon:
            continue
        key = (increment, horizon)
        if key not in real_paths:
            real_paths[key] = realized_path(view, spec.resolution_ts, horizon, increment)
        real = real_paths[key]
        if math.isnan(real[0]) or np.count_nonzero(~np.isnan(real)) < 2:
            continue
        try:
            paths = simulate_price_paths(prediction, float(real[0]), volatility_seed(asset, spec.resolution_ts))
        except SimulationError as error:
            reasons[j] = str(error)
            continue
        if paths.shape[1] != horizon // increment + 1:
            reasons[j] = f"number of price points invalid {paths.shape[1]} != {horizon // increment + 1}"
            continue
        if np.any(paths == 0):
            reasons[j] = "zero price encountered in simulated paths"
            continue
        pending.setdefault(key, []).append((j, paths))
        if len(pending[key]) >= VOLATILITY_BATCH:
            flush(key)
    for key in list(pending):
        flush(key)
    return vol, scored, reasons


def overall_score(game: GameName | GameRules, asset_scores: Mapping[str, Sequence[float]]) -> float:
    """A tracker's overall score over assets, as the game's ``overall_score`` computes it.

    * condorgame: the plain mean of every score of every asset together;
    * crunch-synth: :math:`\\sum_a w_a \\bar s_a / \\sum_a w_a` over assets with scores, the
      per-asset means weighted by ``ASSET_WEIGHTS``.

    0.0 when there is no score (as both evaluators return).

    Raises
    ------
    ValueError
        For an asset without a weight in crunch-synth (its evaluator returns None there).
    """
    rules = get_game(game)
    if rules.asset_weights is None:
        everything = [float(s) for scores in asset_scores.values() for s in scores]
        return float(np.mean(everything)) if everything else 0.0
    weighted = total = 0.0
    for asset, scores in asset_scores.items():
        if not len(scores):
            continue
        if asset not in rules.asset_weights:
            raise ValueError(f"{rules.name} has no weight for asset {asset!r}")
        weight = rules.asset_weights[asset]
        weighted += weight * float(np.mean([float(s) for s in scores]))
        total += weight
    return weighted / total if total else 0.0
