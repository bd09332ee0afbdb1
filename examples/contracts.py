"""Example contracts that differ from the default in how the ranking becomes shares, or that add a
virtual ensemble (scored and shown on the leaderboard, never paid).

Use one as the competition (``CRUNCH_CONTRACT=examples.contracts:softmax``) or as a candidate for
shadow scoring (``coordinator shadow --contract examples.contracts:softmax ...``). The default rule
scores a prediction by its negative absolute error in basis points (higher is better), so the
temperature and the floor below are in basis points of error.
"""

from __future__ import annotations

from coordinator_core.contract import CrunchContract, EnsembleSpec
from coordinator_core.domain.emission_strategy import (
    ContributionEmission,
    ProportionalEmission,
    RankDecayEmission,
    SoftmaxEmission,
)

#: Synth's softmax: every 10 bps of mean error costs a factor e of weight.
softmax = CrunchContract(emission=SoftmaxEmission(temperature=10.0))

#: Pays each model in proportion to how far its mean error is below 200 bps.
proportional = CrunchContract(emission=ProportionalEmission(floor=-200.0))

#: Precog's rank decay: rank r weighs 0.9 ** (r - 1).
rank_decay = CrunchContract(emission=RankDecayEmission(ratio=0.9))

#: The default competition plus the mean of every model's point forecast, scored as
#: ``ensemble:mean`` each round and shown on the leaderboard (never paid); every row then shows
#: the model's one-out contribution to it.
ensemble = CrunchContract(ensembles=[EnsembleSpec(name="mean", kind="mean")])

#: Pays by contribution: each model's share is proportional to its positive one-out contribution
#: to the mean ensemble over the checkpoint's period (an equal split when nobody's is positive).
contribution = CrunchContract(ensembles=[EnsembleSpec(name="mean", kind="mean")], emission=ContributionEmission())
