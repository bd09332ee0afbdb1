"""Contribution and clone clusters over a window of stored rounds (the services' side of
``coordinator_core.contribution``).

The window ``(since, until]`` holds the rounds with a score in it (scores belong to their round's
resolution time, ``services.score``). For each round: its ground truth (``actuals``), its config
(``scope_key``) and time, and each model's stored output, kept only when the prediction was SCORED
(FAILED and ABSENT answers are missing: NaN in the matrices). Virtual ensembles are never members.

Contribution (``window_contribution``), on the contract's first ensemble
    * point forecasts, ``mean`` ensemble and a built-in scoring rule (``absolute_error_bps``,
      ``directional_pnl_bps``: ``contribution.POINT_RULES``) on the truth's ``return``: the closed
      form ``point_contribution``, ``O(R x M)``;
    * anything else (densities, quantiles, a custom rule): the exact one-out effect under the
      contract's own scoring rule: per round, the ensemble of the answering members and each
      one-out ensemble are built with the same functions as at predict time and scored together
      (``CrunchContract.score_batch``); ``c = s(E) - s(E^-i)`` (``desc``) or ``s(E^-i) - s(E)``
      (``asc``). A round where the rule fails for the full ensemble or a one-out ensemble gives no
      contribution for the models concerned.

    A model's contribution is the mean of ``c`` over the rounds it answered with at least one other
    member (``Contribution.mean``), ``None`` when there is no such round.

Clusters (``window_clusters``)
    One stream per config: the rounds of the window in round-time order, one column per model (the
    ``value`` of a point forecast, NaN when not SCORED); ``find_clusters`` per config with the
    contract's ``ClusterRule``, merged over the configs (``union_clusters``); each evidence pair is
    kept with its config. Only point forecasts are clustered (other output kinds: no clusters).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from coordinator_core.contract import CrunchContract, is_virtual
from coordinator_core.contribution import (
    POINT_RULES,
    Clusters,
    PairEvidence,
    PointRule,
    emission_slots,
    find_clusters,
    point_contribution,
    union_clusters,
)
from coordinator_core.domain.statuses import PredictionStatus
from coordinator_core.errors import ValidationError
from coordinator_core.ports import UnitOfWork

SCORED = PredictionStatus.SCORED.value


@dataclass(frozen=True)
class WindowRound:
    input_id: str
    scope_key: str
    round_at: datetime
    truth: Mapping[str, Any]
    scope: Mapping[str, Any]
    outputs: Mapping[str, Mapping[str, Any]]  # model_id -> output, SCORED predictions of paid models


def window_rounds(work: UnitOfWork, since: datetime, until: datetime) -> list[WindowRound]:
    """The rounds with a score in ``(since, until]``, in ``(round_at, id)`` order."""
    input_ids = work.scores.input_ids_between(since, until)
    if not input_ids:
        return []
    inputs = work.rounds.stored_inputs(input_ids)
    outputs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for p in work.rounds.predictions_of(input_ids):
        if p.status == SCORED and not is_virtual(p.model_id):
            outputs.setdefault(p.input_id, {})[p.model_id] = p.output
    rounds = [
        WindowRound(
            i.id,
            str(i.scope.get("scope_key") or ""),
            i.round_at,
            dict(i.actuals or {}),
            i.scope,
            outputs.get(i.id, {}),
        )
        for i in inputs.values()
        if i.actuals is not None
    ]
    return sorted(rounds, key=lambda r: (r.round_at, r.input_id))


def _model_ids(rounds: Sequence[WindowRound], excluded: Collection[str] = ()) -> list[str]:
    return sorted({m for r in rounds for m in r.outputs if m not in excluded})


def _value(output: Mapping[str, Any]) -> float:
    value = output.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return math.nan
    return float(value)


def closed_form_rule(contract: CrunchContract) -> PointRule | None:
    """The closed-form twin of the contract's scoring function when it is one of the built-in
    point rules itself (the very function, not one of the same name)."""
    from coordinator_core.scoring import rules

    for name, rule in POINT_RULES.items():
        if getattr(rules, name, None) is not None and contract.scoring_function is getattr(rules, name):
            return rule
    return None


def window_contribution(
    contract: CrunchContract, rounds: Sequence[WindowRound], excluded: Collection[str] = ()
) -> dict[str, float | None]:
    """``{model_id: mean one-out contribution}`` to the first ensemble over ``rounds`` (module
    docstring); models in ``excluded`` take no part (a cluster's members other than its
    representative, so that a copy changes nobody's contribution). Empty without an ensemble."""
    if not contract.ensembles:
        return {}
    kind = contract.ensembles[0].kind
    model_ids = _model_ids(rounds, excluded)
    if not model_ids:
        return {}
    rule = closed_form_rule(contract)
    closed = (
        kind == "mean"
        and contract.score_round is None
        and rule is not None
        and all(isinstance(r.truth.get("return"), int | float) for r in rounds)
    )
    if closed and rule is not None:
        x = np.array([[_value(r.outputs[m]) if m in r.outputs else math.nan for m in model_ids] for r in rounds])
        y = np.array([float(r.truth["return"]) for r in rounds])
        return point_contribution(x.reshape(len(rounds), len(model_ids)), y, model_ids, rule).as_dict()
    return _scored_contribution(contract, kind, rounds, model_ids)


def _scored_contribution(
    contract: CrunchContract, kind: str, rounds: Sequence[WindowRound], model_ids: Sequence[str]
) -> dict[str, float | None]:
    from coordinator_core.services.predict import ensemble_output

    sign = 1.0 if contract.aggregation.ranking_direction == "desc" else -1.0
    sums = dict.fromkeys(model_ids, 0.0)
    counts = dict.fromkeys(model_ids, 0)
    for r in rounds:
        members = [m for m in model_ids if m in r.outputs]
        if len(members) < 2:
            continue
        try:
            full = ensemble_output(kind, [dict(r.outputs[m]) for m in members])
            loo = [ensemble_output(kind, [dict(r.outputs[o]) for o in members if o != m]) for m in members]
        except ValueError:
            continue
        results = contract.score_batch([full, *loo], r.truth, r.scope)
        first = results[0]
        if isinstance(first, ValidationError):
            continue
        for m, result in zip(members, results[1:], strict=True):
            if isinstance(result, ValidationError):
                continue
            sums[m] += sign * (float(first["value"]) - float(result["value"]))
            counts[m] += 1
    return {m: (sums[m] / counts[m] if counts[m] else None) for m in model_ids}


@dataclass(frozen=True)
class WindowClusters:
    """The clusters merged over the configs, and each evidence pair with the config it was found on."""

    clusters: Clusters
    evidence: tuple[tuple[str, PairEvidence], ...] = ()


def window_clusters(contract: CrunchContract, rounds: Sequence[WindowRound]) -> WindowClusters:
    """The clone clusters of the window's point-forecast streams, one stream per config (module
    docstring); no clusters when the rule is disabled or the outputs are not point forecasts."""
    rule = contract.clusters
    model_ids = _model_ids(rounds)
    empty = WindowClusters(Clusters(tuple(model_ids), (), rule.threshold, rule.max_lag, rule.min_overlap))
    if not rule.enabled or contract.output_kind != "point" or len(model_ids) < 2:
        return empty
    by_config: dict[str, list[WindowRound]] = {}
    for r in rounds:
        by_config.setdefault(r.scope_key, []).append(r)
    parts, evidence = [], []
    for config, group in sorted(by_config.items()):
        x = np.array([[_value(r.outputs[m]) if m in r.outputs else math.nan for m in model_ids] for r in group])
        part = find_clusters(
            x.reshape(len(group), len(model_ids)),
            model_ids,
            threshold=rule.threshold,
            max_lag=rule.max_lag,
            min_overlap=rule.min_overlap,
        )
        parts.append(part)
        evidence += [(config, p) for p in part.pairs]
    if not parts:
        return empty
    merged = union_clusters(parts)
    return WindowClusters(
        Clusters(merged.model_ids, merged.clusters, rule.threshold, rule.max_lag, rule.min_overlap), tuple(evidence)
    )


def clusters_json(found: WindowClusters, slots: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The stored form (``checkpoints.meta_jsonb.clusters``): the rule, each cluster with its members,
    leaders, the representative that holds its slot and the evidence pairs (with their config),
    and the followers left out of the missing-prediction baseline."""
    slots = slots or {}
    clusters = found.clusters
    return {
        "threshold": clusters.threshold,
        "max_lag": clusters.max_lag,
        "min_overlap": clusters.min_overlap,
        "clusters": [
            {
                "members": list(c.members),
                "leaders": list(c.leaders),
                "representative": next((slots[m] for m in c.members if m in slots), None),
                "pairs": [
                    {
                        "config": config,
                        "a": p.a,
                        "b": p.b,
                        "correlation": p.correlation,
                        "lag": p.lag,
                        "overlap": p.overlap,
                    }
                    for config, p in found.evidence
                    if p.a in c.members
                ],
            }
            for c in clusters.clusters
        ],
        "followers": sorted(clusters.followers),
    }


def annotate_entries(
    contract: CrunchContract, rounds: Sequence[WindowRound], entries: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A checkpoint's ranked ``entries`` (JSON form, rank order) annotated for the emission:

    * ``slot``: for each member of a clone cluster (``window_clusters``), the id of the model
      holding the cluster's slot (``emission_slots``: the best-ranked leader);
    * ``contribution`` (with an ensemble in the contract): the one-out contribution over the
      rounds, computed without the members that do not hold their cluster's slot, a member
      showing its slot's.

    Returns the entries and the clusters' stored form (``None`` when the rule is off)."""
    out = [dict(e) for e in entries]
    if not out:
        return out, None
    found = window_clusters(contract, rounds)
    ranked = [str(e["model_id"]) for e in out]
    slots = {
        m: s.representative for s in emission_slots(found.clusters, ranked) if len(s.members) > 1 for m in s.members
    }
    for entry in out:
        if str(entry["model_id"]) in slots:
            entry["slot"] = slots[str(entry["model_id"])]
    if contract.ensembles:
        others = {m for m, representative in slots.items() if m != representative}
        contribution = window_contribution(contract, rounds, excluded=others)
        for entry in out:
            entry["contribution"] = contribution.get(str(entry.get("slot") or entry["model_id"]))
    return out, clusters_json(found, slots) if contract.clusters.enabled else None
