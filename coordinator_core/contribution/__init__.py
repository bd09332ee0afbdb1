"""Virtual ensembles, one-out contribution, clone clusters and the emission strategies built on them.

A pure library (numpy in, typed values out): the scoring service and the checkpoint call it.

* :mod:`~coordinator_core.contribution.ensembles` — the ensemble of a round from its members' outputs
  (mean of points, equal-weight density mixture, averaged quantiles; FAILED/ABSENT members left out).
"""

from coordinator_core.contribution.ensembles import (
    Ensemble,
    average_quantiles,
    mean_ensemble,
    mean_point,
    mixture_density,
    mixture_multi_resolution,
    mixture_path,
)

__all__ = [
    "Ensemble",
    "average_quantiles",
    "mean_ensemble",
    "mean_point",
    "mixture_density",
    "mixture_multi_resolution",
    "mixture_path",
]
