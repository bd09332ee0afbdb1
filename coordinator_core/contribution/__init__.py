"""Virtual ensembles, one-out contribution, clone clusters and the emission strategies built on them.

A pure library (numpy in, typed values out): the scoring service and the checkpoint call it.

* :mod:`~coordinator_core.contribution.ensembles` — the ensemble of a round from its members' outputs
  (mean of points, equal-weight density mixture, averaged quantiles; FAILED/ABSENT members left out);
* :mod:`~coordinator_core.contribution.contribution` — each model's one-out effect on the ensemble's
  score over a window (closed forms), and the contribution-weighted emission;
* :mod:`~coordinator_core.contribution.clusters` — lead-lag correlation clusters of prediction streams
  and the cluster-capped emission (one slot per cluster);
* :mod:`~coordinator_core.contribution.slots` — emission slots and their exact frac64 split.

Putting it together for a checkpoint (point forecasts)::

    clusters = find_clusters(predictions, model_ids)                 # (R, M) window of one config
    slots = emission_slots(clusters, ranked_model_ids)               # one slot per cluster
    reps = [s.representative for s in slots]
    cols = [model_ids.index(m) for m in reps]
    contrib = point_contribution(predictions[:, cols], realized, reps, ABSOLUTE_ERROR_BPS)
    emission = contribution_weighted_emission(contrib.as_dict(), participants, slots)
    # or, the spec's tiers with one slot per cluster:
    emission = cluster_capped_emission(ranked, clusters)
"""

from coordinator_core.contribution.clusters import (
    Cluster,
    Clusters,
    PairEvidence,
    Similarity,
    cluster_capped_emission,
    emission_slots,
    find_clusters,
    similarity,
    union_clusters,
)
from coordinator_core.contribution.contribution import (
    ABSOLUTE_ERROR_BPS,
    DIRECTIONAL_PNL_BPS,
    POINT_RULES,
    SQUARED_ERROR,
    Contribution,
    PointRule,
    contribution_weighted_emission,
    crps_mixture_contribution,
    log_score_contribution,
    normal_mixture_energy,
    point_contribution,
)
from coordinator_core.contribution.ensembles import (
    Ensemble,
    average_quantiles,
    mean_ensemble,
    mean_point,
    mixture_density,
    mixture_multi_resolution,
    mixture_path,
)
from coordinator_core.contribution.slots import Slot, singleton_slots, slot_emission

__all__ = [
    "ABSOLUTE_ERROR_BPS",
    "DIRECTIONAL_PNL_BPS",
    "POINT_RULES",
    "SQUARED_ERROR",
    "Cluster",
    "Clusters",
    "Contribution",
    "Ensemble",
    "PairEvidence",
    "PointRule",
    "Similarity",
    "Slot",
    "average_quantiles",
    "cluster_capped_emission",
    "contribution_weighted_emission",
    "crps_mixture_contribution",
    "emission_slots",
    "find_clusters",
    "log_score_contribution",
    "mean_ensemble",
    "mean_point",
    "mixture_density",
    "mixture_multi_resolution",
    "mixture_path",
    "normal_mixture_energy",
    "point_contribution",
    "similarity",
    "singleton_slots",
    "slot_emission",
    "union_clusters",
]
