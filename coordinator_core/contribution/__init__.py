"""Virtual ensembles, one-out contribution, clone clusters and the emission strategies built on them.

A pure library (numpy in, typed values out): the scoring service and the checkpoint call it.

* :mod:`~coordinator_core.contribution.ensembles` — the ensemble of a round from its members' outputs
  (mean of points, equal-weight density mixture, averaged quantiles; FAILED/ABSENT members left out);
* :mod:`~coordinator_core.contribution.contribution` — each model's one-out effect on the ensemble's
  score over a window (closed forms), and the contribution-weighted emission;
* :mod:`~coordinator_core.contribution.slots` — emission slots and their exact frac64 split.
"""

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
    "Contribution",
    "Ensemble",
    "PointRule",
    "Slot",
    "average_quantiles",
    "contribution_weighted_emission",
    "crps_mixture_contribution",
    "log_score_contribution",
    "mean_ensemble",
    "mean_point",
    "mixture_density",
    "mixture_multi_resolution",
    "mixture_path",
    "normal_mixture_energy",
    "point_contribution",
    "singleton_slots",
    "slot_emission",
]
