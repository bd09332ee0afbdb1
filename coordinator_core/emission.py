"""Emission checkpoints in frac64 (1,000,000,000 = 100 %), exact and keyed by identity.

Default rule (the spec's tiers): rank 1 gets 35 %, ranks 2-5 10 % each, ranks 6-10 5 % each;
when fewer than ten models rank, the unallocated remainder is split equally between all of them.
Percentages are exact fractions; integer frac64 shares are floored and the leftover units go one by
one to the largest fractional remainders (ties to the better rank), so shares sum to exactly 1e9.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

FRAC64_TOTAL = 1_000_000_000


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


def default_build_emission(
    ranked_entries: list[dict[str, Any]],
    crunch_pubkey: str = "",
    compute_provider: str | None = None,
    data_provider: str | None = None,
) -> dict[str, Any]:
    """Build the ``EmissionCheckpoint`` dict from entries sorted by rank (1 first).

    Each entry needs ``model_id`` and ``player_id`` (the participant); ``wallet`` is carried if set.
    Rewards are per participant (several models of one participant add up) and each names the
    participant and its models; ``model_rewards`` gives the per-model split. ``cruncher_index`` is
    the position in ``cruncher_rewards`` (an on-chain index is not known to the coordinator).
    """
    shares = apportion(tier_weights(len(ranked_entries)))
    model_rewards = []
    by_player: dict[str, dict[str, Any]] = {}
    for entry, share in zip(ranked_entries, shares, strict=True):
        player = str(entry.get("player_id") or entry["model_id"])
        model_rewards.append(
            {"model_id": entry["model_id"], "player_id": player, "rank": entry.get("rank"), "reward_pct": share}
        )
        reward = by_player.setdefault(
            player, {"cruncher_id": player, "wallet": entry.get("wallet"), "model_ids": [], "reward_pct": 0}
        )
        reward["model_ids"].append(entry["model_id"])
        reward["reward_pct"] += share
    crunchers = sorted(by_player.values(), key=lambda r: (-r["reward_pct"], r["cruncher_id"]))
    for index, reward in enumerate(crunchers):
        reward["cruncher_index"] = index
    return {
        "crunch": crunch_pubkey,
        "cruncher_rewards": [
            {
                "cruncher_index": r["cruncher_index"],
                "reward_pct": r["reward_pct"],
                "cruncher_id": r["cruncher_id"],
                "wallet": r["wallet"],
                "model_ids": r["model_ids"],
            }
            for r in crunchers
        ],
        "model_rewards": model_rewards,
        "compute_provider_rewards": [{"provider": compute_provider, "reward_pct": FRAC64_TOTAL}]
        if compute_provider
        else [],
        "data_provider_rewards": [{"provider": data_provider, "reward_pct": FRAC64_TOTAL}] if data_provider else [],
    }
