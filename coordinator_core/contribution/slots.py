"""Emission slots: the unit that receives one share of an emission.

A slot is one model, or a clone cluster (:mod:`coordinator_core.contribution.clusters`) whose models
share one share. :func:`slot_emission` turns slot weights into an :class:`~coordinator_core.emission.Emission`:

1. slot shares ``apportion(weights)`` — exact frac64, summing to 1,000,000,000, largest remainder
   (ties to the earlier slot);
2. inside a slot, an **equal split** between its members, ``split([1] * k, share)`` (the leftover
   units to the earlier members: the slot's order, best first), so no member gets more than
   :math:`\\lceil \\text{share}/k \\rceil` and the members' shares add up to the slot's exactly;
3. rewards keyed by participant (``player_id``): a participant's models add up, as in
   :func:`coordinator_core.emission.build_emission`; ``model_rewards`` keeps the per-model split and
   the slot's rank (1-based position in the order given) for every member.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from coordinator_core.domain.ranking import Participant
from coordinator_core.emission import Emission, ModelReward, ParticipantReward, apportion, split

__all__ = ["Slot", "singleton_slots", "slot_emission"]


@dataclass(frozen=True, slots=True)
class Slot:
    """The models sharing one emission share (best first) and the one that represents them."""

    members: tuple[str, ...]
    representative: str

    def __post_init__(self) -> None:
        if not self.members or self.representative not in self.members:
            raise ValueError("a slot needs members, its representative among them")


def singleton_slots(model_ids: Sequence[str]) -> list[Slot]:
    """One slot per model, in the order given."""
    return [Slot((m,), m) for m in model_ids]


def slot_emission(
    slots: Sequence[Slot],
    weights: Sequence[Fraction],
    participants: Mapping[str, Participant],
    crunch_pubkey: str = "",
) -> Emission:
    """The emission giving slot ``k`` the share ``apportion(weights)[k]``, split equally inside it.

    Models missing from ``participants`` pay to themselves (:meth:`Participant.unknown`). No slot
    gives an empty emission.

    Raises
    ------
    ValueError
        If the lengths differ, a model is in two slots, or the weights are negative or all 0.
    """
    if len(slots) != len(weights):
        raise ValueError(f"{len(slots)} slots for {len(weights)} weights")
    seen: set[str] = set()
    for slot in slots:
        if seen & set(slot.members) or len(set(slot.members)) != len(slot.members):
            raise ValueError("a model is in two slots")
        seen.update(slot.members)
    if not slots:
        return Emission(crunch=crunch_pubkey, cruncher_rewards=(), model_rewards=())
    shares = apportion(list(weights))
    model_rewards: list[ModelReward] = []
    by_player: dict[str, tuple[str | None, list[str], list[int]]] = {}
    for rank, (slot, share) in enumerate(zip(slots, shares, strict=True), start=1):
        for model_id, part in zip(slot.members, split([1] * len(slot.members), share), strict=True):
            who = participants.get(model_id) or Participant.unknown(model_id)
            model_rewards.append(ModelReward(model_id, who.player_id, rank, part))
            wallet, models, amounts = by_player.setdefault(who.player_id, (who.wallet, [], []))
            models.append(model_id)
            amounts.append(part)
    order = sorted(by_player.items(), key=lambda item: (-sum(item[1][2]), item[0]))
    crunchers = tuple(
        ParticipantReward(index, player, wallet, tuple(models), sum(amounts))
        for index, (player, (wallet, models, amounts)) in enumerate(order)
    )
    return Emission(crunch=crunch_pubkey, cruncher_rewards=crunchers, model_rewards=tuple(model_rewards))
