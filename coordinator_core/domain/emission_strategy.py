"""Emission strategies: how a checkpoint's ranking becomes exact weights (pure rules).

A strategy maps the ranked entries of a checkpoint (rank order, each with its ranking-window score
over the period) to one exact, non-negative weight per entry; ``coordinator_core.emission``
apportions the weights into integer frac64 shares summing to exactly 1,000,000,000 (largest
remainder; equal remainders go to the better rank). The contract chooses one
(``CrunchContract.emission``); the checkpoint stores the one it used, with its parameters.

* ``tiers`` (default): by rank position, 35 % / 10 % x 4 / 5 % x 5, the rest split equally between
  all ranked entries (the spec's rule, unchanged).
* ``softmax``: Synth's (Bittensor SN50, ``synth/validator/reward.py`` ``compute_softmax``) rule
  ``w_i = exp(b*s_i - max_j b*s_j)``. Here ``b = +1/temperature`` when higher scores are better
  (``desc``) and ``-1/temperature`` when lower is better (``asc``): Synth's ``beta = -0.1`` on CRPS
  (lower is better) is ``temperature=10`` with ``ranking_direction="asc"``.
* ``proportional``: ``w_i = s_i - floor`` for scores above ``floor`` (``desc``), ``floor - s_i``
  for scores below it (``asc``), 0 otherwise. When nobody passes the floor, every weight is 0 and
  the emission pays nobody: the checkpoint gate then refuses it (no silent fallback).
* ``rank_decay``: by rank position, ``w_r = ratio ** (r - 1)`` (Precog's 0.9^r), ``ratio`` read
  as the exact decimal written (0.9 is 9/10).
* ``contribution``: ``w_i = max(C_i, 0)``, each model's one-out contribution to the contract's first
  ensemble over the period (``coordinator_core.contribution``; ``entry["contribution"]``, read as the
  exact binary double); when no contribution is positive, an equal split (every ranked slot pays).

Clone clusters: a checkpoint's entries may carry ``slot`` (the model id representing the clone
cluster the entry belongs to, ``coordinator_core.contribution.clusters.emission_slots``). The weights
are then those of the slots, each slot weighed as its representative (rank rules: by the slot's
position; score rules: the representative's score; contribution: the representative's), and a
slot's share is split equally between its members (``coordinator_core.emission.strategy_shares``).

Ties: the rank rules (tiers, rank_decay) pay by position, so tied scores are separated by the
ranking's tie-break (more scored predictions, then model id). The score rules (softmax,
proportional) give tied scores exactly equal weights, so their shares differ by at most one
frac64 unit (the leftover unit of the apportionment goes to the better rank). A missing or
non-finite score weighs 0 under the score rules.

Exactness of softmax: the exponentials are computed with ``decimal`` at 50 significant digits
(``Decimal.exp`` is correctly rounded, so the result is the same on every platform; scores enter
exactly, as the binary doubles they are), then each weight is quantised to an integer number of
10**-12 of the total, ``q_i = round_half_even(10**12 * w_i / sum w)``, and those integers are
apportioned. The best entry has ``w = 1`` and so ``q >= 10**12 / n > 0``: softmax always pays.
Quantisation is monotone, so a better score never gets a smaller share.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SOFTMAX_QUANTUM = 10**12  # softmax weights become integers of 1e-12 of the total
SOFTMAX_PRECISION = 50  # significant decimal digits of the softmax arithmetic

Scores = Sequence[float | None]


def _finite(value: float | None) -> bool:
    return value is not None and not isinstance(value, bool) and math.isfinite(float(value))


class _Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def weights(self, scores: Scores, direction: str) -> list[Fraction]:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The stored form: ``kind`` and the parameters."""
        return self.model_dump()


class TiersEmission(_Strategy):
    """35 % / 10 % x 4 / 5 % x 5 by rank position; the rest split equally between all ranked."""

    kind: Literal["tiers"] = "tiers"

    def weights(self, scores: Scores, direction: str) -> list[Fraction]:
        return tier_weights(len(scores))

    def describe(self) -> str:
        return "tiers: rank 1 35 %, ranks 2-5 10 %, ranks 6-10 5 %, the unallocated rest split equally"


class SoftmaxEmission(_Strategy):
    """Synth's softmax of the ranking score: ``exp(+-s/temperature)``, sign by the direction."""

    kind: Literal["softmax"] = "softmax"
    temperature: float = Field(gt=0, allow_inf_nan=False, description="larger = flatter; Synth's beta = -1/T")

    def weights(self, scores: Scores, direction: str) -> list[Fraction]:
        return softmax_weights(scores, direction, self.temperature)

    def describe(self) -> str:
        t = f"{self.temperature:g}"
        return f"softmax: exp(b*s - max b*s), b = 1/{t} (desc) or -1/{t} (asc), quantised to 1e-12 of the total"


class ProportionalEmission(_Strategy):
    """Proportional to the distance past ``floor`` (above it for desc, below it for asc)."""

    kind: Literal["proportional"] = "proportional"
    floor: float = Field(0.0, allow_inf_nan=False)

    def weights(self, scores: Scores, direction: str) -> list[Fraction]:
        return proportional_weights(scores, direction, self.floor)

    def describe(self) -> str:
        return f"proportional: max(0, score - {self.floor:g}) (desc) or max(0, {self.floor:g} - score) (asc)"


class RankDecayEmission(_Strategy):
    """``ratio ** (rank - 1)`` by rank position."""

    kind: Literal["rank_decay"] = "rank_decay"
    ratio: float = Field(0.9, gt=0, le=1, allow_inf_nan=False)

    def weights(self, scores: Scores, direction: str) -> list[Fraction]:
        return rank_decay_weights(len(scores), self.ratio)

    def describe(self) -> str:
        return f"rank decay: {self.ratio:g} ** (rank - 1)"


class ContributionEmission(_Strategy):
    """Proportional to the positive one-out contribution to the first ensemble; equal when none is positive."""

    kind: Literal["contribution"] = "contribution"

    def weights(self, scores: Scores, direction: str) -> list[Fraction]:
        """``scores`` are the contributions here (``coordinator_core.emission.strategy_shares`` passes them)."""
        return contribution_weights(scores)

    def describe(self) -> str:
        return "contribution: max(0, one-out contribution to the ensemble); equal split when none is positive"


EmissionStrategy = Annotated[
    TiersEmission | SoftmaxEmission | ProportionalEmission | RankDecayEmission | ContributionEmission,
    Field(discriminator="kind"),
]
STRATEGY_ADAPTER: TypeAdapter[EmissionStrategy] = TypeAdapter(EmissionStrategy)
RANK_RULES = ("tiers", "rank_decay")


def parse_strategy(
    data: Any,
) -> TiersEmission | SoftmaxEmission | ProportionalEmission | RankDecayEmission | ContributionEmission:
    """A strategy from its stored form (``{"kind": ..., params}``); ``None`` is the default tiers."""
    if data is None:
        return TiersEmission()
    return STRATEGY_ADAPTER.validate_python(data)


# -- the weights ----------------------------------------------------------------------------------------
def tier_percent(rank: int) -> Fraction:
    if rank == 1:
        return Fraction(35)
    if 2 <= rank <= 5:
        return Fraction(10)
    if 6 <= rank <= 10:
        return Fraction(5)
    return Fraction(0)


def tier_weights(count: int) -> list[Fraction]:
    """Exact percentage per rank 1..count, summing to 100 (empty for 0)."""
    if count <= 0:
        return []
    weights = [tier_percent(rank) for rank in range(1, count + 1)]
    leftover = Fraction(100) - sum(weights)
    if leftover > 0:
        weights = [w + leftover / count for w in weights]
    return weights


def rank_decay_weights(count: int, ratio: float) -> list[Fraction]:
    """``ratio ** (r - 1)`` for r = 1..count, with ``ratio`` read as the decimal written."""
    exact = Fraction(repr(float(ratio)))
    weights, current = [], Fraction(1)
    for _ in range(count):
        weights.append(current)
        current *= exact
    return weights


def contribution_weights(contributions: Scores) -> list[Fraction]:
    """``max(C, 0)`` exactly (a missing or non-finite contribution weighs 0); every weight 1 when
    none is positive, so a contribution emission always pays (an equal split)."""
    weights = [
        max(Fraction(float(c)), Fraction(0)) if _finite(c) else Fraction(0)  # type: ignore[arg-type]
        for c in contributions
    ]
    if weights and sum(weights) == 0:
        return [Fraction(1)] * len(weights)
    return weights


def proportional_weights(scores: Scores, direction: str, floor: float) -> list[Fraction]:
    """Exact distance past ``floor`` of each finite score (0 when not past it or missing)."""
    bound = Fraction(floor)
    out = []
    for score in scores:
        if not _finite(score):
            out.append(Fraction(0))
            continue
        value = Fraction(float(score))  # type: ignore[arg-type]
        distance = value - bound if direction == "desc" else bound - value
        out.append(max(distance, Fraction(0)))
    return out


def softmax_weights(scores: Scores, direction: str, temperature: float) -> list[Fraction]:
    """Integer weights (in units of 1e-12 of the total) of Synth's softmax; see the module docstring."""
    if not scores:
        return []
    context = decimal.Context(prec=SOFTMAX_PRECISION, rounding=decimal.ROUND_HALF_EVEN, Emin=-(10**9), Emax=10**9)
    sign = 1 if direction == "desc" else -1
    t = Decimal(float(temperature))
    exponents: list[Decimal | None] = [
        context.divide(context.multiply(Decimal(float(s)), Decimal(sign)), t) if _finite(s) else None  # type: ignore[arg-type]
        for s in scores
    ]
    finite = [x for x in exponents if x is not None]
    if not finite:
        return [Fraction(0)] * len(scores)
    top = max(finite)
    powers = [context.exp(context.subtract(x, top)) if x is not None else Decimal(0) for x in exponents]
    total = Decimal(0)
    for p in powers:
        total = context.add(total, p)
    quantum = Decimal(SOFTMAX_QUANTUM)
    return [
        Fraction(int(context.divide(context.multiply(p, quantum), total).to_integral_value(decimal.ROUND_HALF_EVEN)))
        for p in powers
    ]
