"""The leaderboard's metric columns (``domain.metrics``) over one window, read set-wise.

One read of the window's scores (``scores_between``: every model's rows at once), one ``GROUP BY``
of the predictions of the rounds scored in it (``prediction_counts``: a model's predictions of any
status of those rounds are its ``scheduled``, the SCORED ones its ``scored``, so FAILED/ABSENT ones
count even under ``MISSING_PREDICTION_POLICY=exclude``), and only for point metrics and density
calibration one batched read of those rounds' predictions and ground truth (for point metrics
only each SCORED prediction's ``value`` and its round's realised ``return``: ``point_pairs``);
never a query per model.

Calibration (PIT) values: those a scoring function reports under the result key ``pit``, and, for a
``density_path`` contract on ``price_path`` truth, ``density_pits`` of every SCORED prediction of the
window (the coarsest step's increments). Quantile and sample-path outputs have only the former. Computed when the leaderboard is rebuilt (``services.score.rebuild_leaderboard``)
and stored in each entry's ``stats``; ranks, scores and emissions never read them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from coordinator_core.contract import CrunchContract
from coordinator_core.domain.metrics import POINT, ModelWindow, bootstrap_seed, model_metrics, pit_values
from coordinator_core.domain.statuses import PredictionStatus
from coordinator_core.ports import UnitOfWork
from coordinator_core.scoring.densities import DensityError, density_cdf
from coordinator_core.scoring.paths import PriceSeries, observed_increments

SCORED = PredictionStatus.SCORED.value


def _finite(value: Any) -> float | None:
    """``value`` as a finite float; ``None`` when it is absent, not a number, a bool or not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        return None
    return float(value)


def density_pits(output: Mapping[str, Any], truth: Mapping[str, Any]) -> list[float]:
    """PIT values of a ``density_path`` prediction against a ``price_path`` truth: at the coarsest
    step of the round (``max(steps)``), ``F_i(Δ_i)`` for each scored increment ``i``, with ``Δ_i``
    the observed increments as the games resolve them (``scoring.paths.observed_increments`` on
    the stored truth series) and ``F_i`` the CDF of the ``i``-th density (``density_cdf``)."""
    steps = [int(s) for s in truth.get("steps") or []]
    if not steps or "series" not in truth:
        return []
    step = max(steps)
    densities = output.get(str(step))
    if not isinstance(densities, list):
        return []
    series = PriceSeries.from_entries((int(ts), float(price)) for ts, price in truth["series"])
    increments = observed_increments(series, int(truth["round_ts"]), int(truth["horizon_seconds"]), [step]).steps[step]
    out = []
    for i in np.flatnonzero(increments.scored):
        if i < len(densities):
            try:
                out.append(density_cdf(densities[i], float(increments.delta[i])))
            except (DensityError, KeyError, TypeError, ValueError):
                continue
    return out


def window_metrics(
    work: UnitOfWork, contract: CrunchContract, since: datetime, until: datetime, window: str
) -> dict[str, dict[str, float | None]]:
    """``{model_id: {column: value}}`` of the contract's metrics over ``(since, until]`` (the
    scores resolved in it), for every model with a score there; the bootstrap is seeded by
    ``(model_id, window)``."""
    names = contract.metric_names
    if not names:
        return {}
    rows = work.scores.scores_between(since, until)
    by_model: dict[str, list[Any]] = {}
    for row in rows:
        by_model.setdefault(row.model_id, []).append(row)
    input_ids = sorted({r.input_id for r in rows})
    counts = work.rounds.prediction_counts(input_ids) if input_ids else {}
    point_metrics = contract.output_kind == "point" and any(n in POINT for n in names)
    densities = "calibration" in names and contract.output_kind == "density_path" and contract.truth == "price_path"
    point: dict[str, tuple[list[float], list[float]]] = {}
    if point_metrics:
        scored_pairs = {
            (input_id, model_id): (round_at, predicted, realised)
            for model_id, input_id, round_at, predicted, realised in (
                work.rounds.point_pairs(input_ids) if input_ids else []
            )
        }
        for model_id, group in by_model.items():
            pairs = []
            for r in group:
                found = scored_pairs.get((r.input_id, model_id))
                if r.prediction_status != SCORED or found is None:
                    continue
                round_at, predicted, realised = found[0], _finite(found[1]), _finite(found[2])
                if predicted is not None and realised is not None:
                    pairs.append((round_at, r.input_id, predicted, realised))
            pairs.sort(key=lambda p: (p[0], p[1]))
            point[model_id] = ([p[2] for p in pairs], [p[3] for p in pairs])
    computed: dict[str, list[float]] = {}
    if densities:
        computed = _density_pits_of(work, rows)
    out = {}
    for model_id, group in by_model.items():
        group.sort(key=lambda r: (r.scored_at, r.prediction_id))
        successes = [r.result for r in group if r.success]
        forecasts, outcomes = point.get(model_id, ([], []))
        data = ModelWindow(
            values=[float(r.value) for r in group],
            scheduled=counts.get(model_id, (len(group), 0))[0],
            scored=counts.get(model_id, (0, 0))[1],
            results=successes,
            predictions=forecasts,
            realised=outcomes,
            pits=[u for result in successes for u in pit_values(result)] + computed.get(model_id, []),
        )
        out[model_id] = model_metrics(data, names, bootstrap_seed(model_id, window))
    return out


# The PIT values of a scored density prediction never change (its output and its round's truth are
# final once it is scored), so they are remembered per (database, score row): a leaderboard rebuild
# (every step of a backtest) reads and evaluates only the predictions scored since the previous one,
# instead of decoding every density of the window again. The score's value and time are part of the
# key, so a database rebuilt under the same name (a re-run with other models) never reads an old entry.
_PITS: OrderedDict[tuple[str, str, float, datetime], list[float]] = OrderedDict()
PITS_REMEMBERED = 200_000


def _density_pits_of(work: UnitOfWork, rows: Sequence[Any]) -> dict[str, list[float]]:
    """``{model_id: PIT values}`` of the SCORED predictions among the window's score ``rows``."""
    engine = getattr(work, "engine", None)
    # a unit of work without a database identity (the fakes) remembers nothing beyond this call
    remembered: OrderedDict[tuple[str, str, float, datetime], list[float]] = (
        _PITS if engine is not None else OrderedDict()
    )
    database = "" if engine is None else engine.url.render_as_string(hide_password=True)
    scored = [r for r in rows if r.prediction_status == SCORED]
    keys = {r.prediction_id: (database, r.prediction_id, float(r.value), r.scored_at) for r in scored}
    missing = [r for r in scored if keys[r.prediction_id] not in remembered]
    if missing:
        predictions = work.rounds.predictions_by_id([r.prediction_id for r in missing])
        inputs = work.rounds.stored_inputs(sorted({r.input_id for r in missing}))
        for r in missing:
            p, stored = predictions.get(r.prediction_id), inputs.get(r.input_id)
            pits = density_pits(p.output, stored.actuals) if p is not None and stored and stored.actuals else []
            remembered[keys[r.prediction_id]] = pits
        while len(remembered) > PITS_REMEMBERED:
            remembered.popitem(last=False)
    out: dict[str, list[float]] = {}
    for r in scored:
        out.setdefault(r.model_id, []).extend(remembered.get(keys[r.prediction_id], []))
    return out
