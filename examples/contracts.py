"""Example contracts that differ from the default only in how the ranking becomes shares.

Use one as the competition (``CRUNCH_CONTRACT=examples.contracts:softmax``) or as a candidate for
shadow scoring (``coordinator shadow --contract examples.contracts:softmax ...``). The default rule
scores a prediction by its negative absolute error in basis points (higher is better), so the
temperature and the floor below are in basis points of error.
"""

from __future__ import annotations

from coordinator_core.contract import CrunchContract
from coordinator_core.domain.emission_strategy import (
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
