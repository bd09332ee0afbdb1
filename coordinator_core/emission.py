"""Emission in frac64 (1,000,000,000 = 100 %): exact, keyed by participant.

Default rule (the spec's tiers): rank 1 gets 35 %, ranks 2-5 10 % each, ranks 6-10 5 % each;
when fewer than ten models rank, the unallocated remainder is split equally between all of them.
Other strategies (softmax, proportional above a floor, rank decay) are in
``coordinator_core.domain.emission_strategy``; the contract picks one (``CrunchContract.emission``).
Weights are exact fractions; integer frac64 shares are floored and the leftover units go one by
one to the largest fractional remainders (ties to the better rank), so shares sum to exactly 1e9.

Rewards are per participant (several models of one participant add up); each names the
participant (``cruncher_id``), its wallet and models; ``model_rewards`` gives the per-model split.

The same apportionment splits a prize amount (``prizes``) and turns shares into percentages with
six decimals that sum to exactly 100 (``percents``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

# the default tiers live with the other strategies; re-exported here
from coordinator_core.domain.emission_strategy import EmissionStrategy, TiersEmission
from coordinator_core.domain.emission_strategy import tier_percent as tier_percent
from coordinator_core.domain.emission_strategy import tier_weights as tier_weights

FRAC64_TOTAL = 1_000_000_000
MICRO_PERCENT_TOTAL = 100_000_000  # 100 % at 6 decimals


# -- apportionment ----------------------------------------------------------------------------------
def apportion(weights: Sequence[Fraction], total: int = FRAC64_TOTAL) -> list[int]:
    """Integer shares proportional to ``weights`` that sum to exactly ``total``.

    Largest-remainder method; ties go to the earlier position. Weights must be >= 0 and not all 0.
    """
    if not weights:
        return []
    weight_sum = sum(weights, Fraction(0))
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    exact = [w * total / weight_sum for w in weights]
    shares = [int(x) for x in exact]  # floor: all non-negative
    leftover = total - sum(shares)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[:leftover]:
        shares[i] += 1
    return shares


def entry_slots(entries: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """The emission slots of ranked ``entries``: lists of entry positions, in the order of their
    representatives' positions. An entry's ``slot`` names the model representing its clone cluster
    (absent: itself); the representative is listed first.

    Raises
    ------
    ValueError
        If a ``slot`` names a model that is not among the entries, or one that is not its own slot.
    """
    position = {str(e["model_id"]): i for i, e in enumerate(entries)}
    members: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        representative = str(entry.get("slot") or entry["model_id"])
        if representative not in position:
            raise ValueError(f"{entry['model_id']}: slot {representative!r} is not a ranked model")
        head = position[representative]
        if str(entries[head].get("slot") or representative) != representative:
            raise ValueError(f"{entry['model_id']}: slot {representative!r} belongs to another slot")
        members.setdefault(head, []).append(i)
    return [sorted(members[head], key=lambda i: (i != head, i)) for head in sorted(members)]


def slot_weights(
    strategy: EmissionStrategy, entries: Sequence[Mapping[str, Any]]
) -> tuple[list[list[int]], list[Fraction]]:
    """The slots of ranked ``entries`` (``entry_slots``) and the strategy's exact weight of each: the
    weight of its representative entry among the representatives (its score; its ``contribution``
    under the contribution strategy; its slot's position under the rank rules)."""
    slots = entry_slots(entries)
    heads = [entries[slot[0]] for slot in slots]
    scores, direction = ranking_scores(heads)
    if getattr(strategy, "kind", None) == "contribution":
        scores = [_number(e.get("contribution")) for e in heads]
    return slots, strategy.weights(scores, direction)


def strategy_shares(strategy: EmissionStrategy, entries: Sequence[Mapping[str, Any]]) -> list[int]:
    """frac64 shares of ranked ``entries`` (JSON form, rank order) under ``strategy``: its exact weights
    apportioned to sum to exactly 1e9, or all 0 when every weight is 0 (the gate refuses that).

    Clone clusters (``slot`` in the entries, ``entry_slots``): the strategy weighs the slots, each as
    its representative entry, and each slot's share is split equally between its members (the
    leftover units to the better ranked, ``split``). Without ``slot`` every entry is its own slot
    and this is the plain apportionment of the entries' weights."""
    slots, weights = slot_weights(strategy, entries)
    shares = [0] * len(entries)
    if not weights or sum(weights, Fraction(0)) <= 0:
        return shares
    for slot, share in zip(slots, apportion(weights), strict=True):
        for i, part in zip(slot, split([1] * len(slot), share), strict=True):
            shares[i] = part
    return shares


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def ranking_scores(entries: Sequence[Mapping[str, Any]]) -> tuple[list[float | None], str]:
    """The ranking score of each entry and the ranking direction (as each entry records them in
    ``score.ranking``; direction ``desc`` when none says)."""
    scores: list[float | None] = []
    direction = "desc"
    for entry in entries:
        ranking = (entry.get("score") or {}).get("ranking") or {}
        value = ranking.get("value")
        if value is None:
            value = (entry.get("metrics") or {}).get(ranking.get("key", "")) if ranking else None
        scores.append(float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None)
        direction = str(ranking.get("direction") or direction)
    return scores, direction


def split(weights: Sequence[int], total: int) -> list[int]:
    """Integers proportional to ``weights`` summing to exactly ``total`` (largest remainder);
    all zero when there is nothing to split."""
    if total <= 0 or not weights or sum(weights) <= 0 or any(w < 0 for w in weights):
        return [0] * len(weights)
    return apportion([Fraction(w) for w in weights], total)


# -- typed emission ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModelReward:
    model_id: str
    player_id: str
    rank: int | None
    reward_pct: int

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "player_id": self.player_id,
            "rank": self.rank,
            "reward_pct": self.reward_pct,
        }


@dataclass(frozen=True, slots=True)
class ParticipantReward:
    cruncher_index: int
    cruncher_id: str
    wallet: str | None
    model_ids: tuple[str, ...]
    reward_pct: int

    def to_json(self) -> dict[str, Any]:
        return {
            "cruncher_index": self.cruncher_index,
            "reward_pct": self.reward_pct,
            "cruncher_id": self.cruncher_id,
            "wallet": self.wallet,
            "model_ids": list(self.model_ids),
        }


@dataclass(frozen=True, slots=True)
class ProviderReward:
    provider: str
    reward_pct: int

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "reward_pct": self.reward_pct}


@dataclass(frozen=True, slots=True)
class Emission:
    """The ``EmissionCheckpoint`` document."""

    crunch: str
    cruncher_rewards: tuple[ParticipantReward, ...]
    model_rewards: tuple[ModelReward, ...]
    compute_provider_rewards: tuple[ProviderReward, ...] = ()
    data_provider_rewards: tuple[ProviderReward, ...] = ()

    @property
    def total(self) -> int:
        """Σ of the participants' shares (1e9 for a full emission)."""
        return sum(r.reward_pct for r in self.cruncher_rewards)

    def to_json(self) -> dict[str, Any]:
        return {
            "crunch": self.crunch,
            "cruncher_rewards": [r.to_json() for r in self.cruncher_rewards],
            "model_rewards": [r.to_json() for r in self.model_rewards],
            "compute_provider_rewards": [r.to_json() for r in self.compute_provider_rewards],
            "data_provider_rewards": [r.to_json() for r in self.data_provider_rewards],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Emission:
        """Read a stored (or hook-built) emission; missing fields read as empty."""

        def rows(key: str) -> list[Mapping[str, Any]]:
            return [r for r in data.get(key) or [] if isinstance(r, Mapping)]

        return cls(
            crunch=str(data.get("crunch") or ""),
            cruncher_rewards=tuple(
                ParticipantReward(
                    int(r.get("cruncher_index") or 0),
                    str(r.get("cruncher_id") or ""),
                    r.get("wallet"),
                    tuple(str(m) for m in r.get("model_ids") or ()),
                    int(r.get("reward_pct") or 0),
                )
                for r in rows("cruncher_rewards")
            ),
            model_rewards=tuple(
                ModelReward(
                    str(r.get("model_id")), str(r.get("player_id") or ""), r.get("rank"), int(r.get("reward_pct") or 0)
                )
                for r in rows("model_rewards")
            ),
            compute_provider_rewards=tuple(
                ProviderReward(str(r.get("provider")), int(r.get("reward_pct") or 0))
                for r in rows("compute_provider_rewards")
            ),
            data_provider_rewards=tuple(
                ProviderReward(str(r.get("provider")), int(r.get("reward_pct") or 0))
                for r in rows("data_provider_rewards")
            ),
        )


def build_emission(
    ranked: Sequence[tuple[str, str, str | None, int | None]],
    crunch_pubkey: str = "",
    compute_provider: str | None = None,
    data_provider: str | None = None,
    weights: Callable[[int], list[Fraction]] = tier_weights,
    shares: Sequence[int] | None = None,
) -> Emission:
    """The emission for ``ranked`` = ``[(model_id, player_id, wallet, rank), ...]`` in rank order;
    ``shares`` (one per entry) when given, else ``weights(len(ranked))`` apportioned."""
    shares = list(shares) if shares is not None else apportion(weights(len(ranked)))
    model_rewards = []
    by_player: dict[str, dict[str, Any]] = {}
    for (model_id, player_id, wallet, rank), share in zip(ranked, shares, strict=True):
        model_rewards.append(ModelReward(model_id, player_id, rank, share))
        reward = by_player.setdefault(player_id, {"wallet": wallet, "model_ids": [], "reward_pct": 0})
        reward["model_ids"].append(model_id)
        reward["reward_pct"] += share
    order = sorted(by_player.items(), key=lambda item: (-item[1]["reward_pct"], item[0]))
    crunchers = tuple(
        ParticipantReward(index, player, r["wallet"], tuple(r["model_ids"]), r["reward_pct"])
        for index, (player, r) in enumerate(order)
    )
    return Emission(
        crunch=crunch_pubkey,
        cruncher_rewards=crunchers,
        model_rewards=tuple(model_rewards),
        compute_provider_rewards=(ProviderReward(compute_provider, FRAC64_TOTAL),) if compute_provider else (),
        data_provider_rewards=(ProviderReward(data_provider, FRAC64_TOTAL),) if data_provider else (),
    )


def default_build_emission(
    ranked_entries: list[dict[str, Any]],
    crunch_pubkey: str = "",
    compute_provider: str | None = None,
    data_provider: str | None = None,
    strategy: EmissionStrategy | None = None,
) -> dict[str, Any]:
    """The contract's ``build_emission`` hook: entries (JSON form, rank order) → the emission's JSON.

    Each entry needs ``model_id``; ``player_id`` (the participant; default the model) and
    ``wallet`` are carried. ``cruncher_index`` is the position in ``cruncher_rewards`` (an on-chain
    index is not known to the coordinator). ``strategy`` (default: the tiers) turns the ranking
    into shares (``strategy_shares``).
    """
    ranked = [
        (str(e["model_id"]), str(e.get("player_id") or e["model_id"]), e.get("wallet"), e.get("rank"))
        for e in ranked_entries
    ]
    shares = strategy_shares(strategy or TiersEmission(), ranked_entries)
    return build_emission(ranked, crunch_pubkey, compute_provider, data_provider, shares=shares).to_json()


# -- amounts and percentages ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Prize:
    checkpoint_id: str
    period_end: datetime
    model_id: str
    player_id: str
    rank: int | None
    reward_pct: int
    prize: int

    def to_json(self) -> dict[str, Any]:
        return {
            "prizeId": f"{self.checkpoint_id}-{self.model_id}",
            "timestamp": int(self.period_end.timestamp()),
            "period_end": self.period_end,
            "model": self.model_id,
            "player_id": self.player_id,
            "rank": self.rank,
            "reward_pct": self.reward_pct,
            "prize": self.prize,
        }


def prizes(emission: Emission, checkpoint_id: str, period_end: datetime, total_prize: int) -> list[Prize]:
    """Per model (``model_rewards``, rank order): its share of ``total_prize``, summing exactly."""
    amounts = split([r.reward_pct for r in emission.model_rewards], total_prize)
    return [
        Prize(checkpoint_id, period_end, r.model_id, r.player_id, r.rank, r.reward_pct, amount)
        for r, amount in zip(emission.model_rewards, amounts, strict=True)
    ]


def percents(shares: Sequence[tuple[str, int]]) -> dict[str, float]:
    """Percent (6 decimals) per key of ``[(key, reward_pct), ...]``; apportioned so that a full
    emission sums to exactly 100, plain conversion otherwise. Keys that repeat add up."""
    pct = [share for _, share in shares]
    micro = split(pct, MICRO_PERCENT_TOTAL)
    if sum(pct) != FRAC64_TOTAL:  # not a full emission: plain conversion
        micro = [round(share / 10) for share in pct]
    out: dict[str, int] = {}
    for (key, _), value in zip(shares, micro, strict=True):
        out[key] = out.get(key, 0) + value
    return {key: value / 1_000_000 for key, value in out.items()}
