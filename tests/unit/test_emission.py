"""Emission checkpoints: tier weights, exact apportionment and the per-participant rewards."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.emission import (
    FRAC64_TOTAL,
    apportion,
    default_build_emission,
    split,
    tier_percent,
    tier_weights,
)


def shares_for(count: int) -> list[int]:
    return apportion(tier_weights(count))


# -- hand-computed tiers ------------------------------------------------------------------------


def test_total_is_one_billion() -> None:
    assert FRAC64_TOTAL == 1_000_000_000


def test_tier_percent_by_rank() -> None:
    assert [tier_percent(r) for r in range(1, 13)] == [35, 10, 10, 10, 10, 5, 5, 5, 5, 5, 0, 0]


def test_one_model_takes_everything() -> None:
    assert shares_for(1) == [1_000_000_000]


def test_two_models_split_the_remainder_equally() -> None:
    # 35 + 10 = 45 %; the 55 % left is split 27.5 / 27.5 → 62.5 % and 37.5 %.
    assert tier_weights(2) == [Fraction(125, 2), Fraction(75, 2)]
    assert shares_for(2) == [625_000_000, 375_000_000]


def test_three_models() -> None:
    # 35 + 10 + 10 = 55 %; 45 % / 3 = 15 % each → 50, 25, 25.
    assert shares_for(3) == [500_000_000, 250_000_000, 250_000_000]


def test_twelve_models_exact_tiers_and_nothing_past_rank_ten() -> None:
    assert shares_for(12) == [350_000_000] + [100_000_000] * 4 + [50_000_000] * 5 + [0, 0]


def test_seven_models_largest_remainder_ties_go_to_better_ranks() -> None:
    # 35 + 4*10 + 2*5 = 85 %; 15/7 % added to each. In frac64: 2.6e9/7, 8.5e8/7, 5e8/7,
    # floors 371428571, 121428571 (x4), 71428571 (x2) = 999_999_997, every remainder 3/7.
    # The 3 leftover units go to ranks 1, 2, 3 (ties to the better rank).
    expected = [371_428_572, 121_428_572, 121_428_572, 121_428_571, 121_428_571, 71_428_571, 71_428_571]
    assert shares_for(7) == expected
    assert sum(expected) == FRAC64_TOTAL


def test_zero_models_gives_no_shares() -> None:
    assert tier_weights(0) == []
    assert apportion([]) == []


def test_apportion_prefers_largest_remainder_over_position() -> None:
    # exact: 1e9 * (1/6, 2/6, 3/6) -> remainders 2/3, 1/3, 0 ; 1 unit left -> index 0
    assert apportion([Fraction(1), Fraction(2), Fraction(3)]) == [166_666_667, 333_333_333, 500_000_000]
    # exact 10 * (1/3, 2/3) = 3.33, 6.67 -> the leftover unit goes to the larger remainder (index 1)
    assert apportion([Fraction(1), Fraction(2)], total=10) == [3, 7]


@pytest.mark.parametrize(
    "weights",
    [
        [Fraction(1), Fraction(-1), Fraction(5)],
        [Fraction(0), Fraction(0)],
        [Fraction(-2)],
    ],
    ids=["one-negative", "all-zero", "only-negative"],
)
def test_apportion_rejects_negative_or_all_zero_weights(weights: list[Fraction]) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        apportion(weights)


# -- properties ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=1000))
def test_tier_shares_are_exact_non_negative_and_non_increasing(count: int) -> None:
    shares = shares_for(count)
    assert len(shares) == count
    if count == 0:
        assert shares == []
        return
    assert all(type(s) is int for s in shares)
    assert all(s >= 0 for s in shares)
    assert sum(shares) == FRAC64_TOTAL
    assert all(a >= b for a, b in zip(shares, shares[1:], strict=False))


fractions = st.fractions(min_value=0, max_value=1000, max_denominator=1000)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(fractions, min_size=1, max_size=30).filter(lambda ws: sum(ws) > 0),
    st.integers(min_value=0, max_value=10**12),
)
def test_apportion_is_exact_and_within_one_unit(weights: list[Fraction], total: int) -> None:
    shares = apportion(weights, total)
    assert sum(shares) == total
    weight_sum = sum(weights, Fraction(0))
    for weight, share in zip(weights, shares, strict=True):
        exact = weight * total / weight_sum
        assert type(share) is int
        assert share >= 0
        assert abs(share - exact) < 1


# -- default_build_emission -----------------------------------------------------------------------


def entry(model_id: str, player_id: str, rank: int, wallet: str | None = None) -> dict:
    return {"model_id": model_id, "player_id": player_id, "rank": rank, "wallet": wallet}


def test_two_models_of_one_player_become_one_cruncher_reward() -> None:
    ranked = [
        entry("m-a1", "alice", 1, wallet="WalletA"),
        entry("m-b1", "bob", 2, wallet="WalletB"),
        entry("m-a2", "alice", 3, wallet="WalletA"),
    ]
    emission = default_build_emission(ranked, crunch_pubkey="CrunchPk")

    assert emission["crunch"] == "CrunchPk"
    assert emission["model_rewards"] == [
        {"model_id": "m-a1", "player_id": "alice", "rank": 1, "reward_pct": 500_000_000},
        {"model_id": "m-b1", "player_id": "bob", "rank": 2, "reward_pct": 250_000_000},
        {"model_id": "m-a2", "player_id": "alice", "rank": 3, "reward_pct": 250_000_000},
    ]
    assert emission["cruncher_rewards"] == [
        {
            "cruncher_index": 0,
            "reward_pct": 750_000_000,
            "cruncher_id": "alice",
            "wallet": "WalletA",
            "model_ids": ["m-a1", "m-a2"],
        },
        {
            "cruncher_index": 1,
            "reward_pct": 250_000_000,
            "cruncher_id": "bob",
            "wallet": "WalletB",
            "model_ids": ["m-b1"],
        },
    ]
    assert sum(r["reward_pct"] for r in emission["model_rewards"]) == FRAC64_TOTAL
    assert sum(r["reward_pct"] for r in emission["cruncher_rewards"]) == FRAC64_TOTAL


def test_cruncher_index_follows_reward_desc_then_cruncher_id() -> None:
    # 4 players with one model each among 12 ranks: ranks 11 and 12 get 0; equal rewards sort by id.
    players = ["p09", "p10", "p08", "p07", "p06", "zed", "amy", "kim", "bea", "lou", "yan", "abe"]
    ranked = [entry(f"m{i}", player, i + 1) for i, player in enumerate(players)]
    emission = default_build_emission(ranked)
    crunchers = emission["cruncher_rewards"]

    assert [c["cruncher_index"] for c in crunchers] == list(range(12))
    assert [c["cruncher_id"] for c in crunchers] == [
        "p09",  # 35 %
        "p06",
        "p07",
        "p08",
        "p10",  # 10 % each, by id
        "amy",
        "bea",
        "kim",
        "lou",
        "zed",  # 5 % each, by id
        "abe",
        "yan",  # 0 each, by id
    ]
    assert [c["reward_pct"] for c in crunchers] == [350_000_000] + [100_000_000] * 4 + [50_000_000] * 5 + [0, 0]


def test_player_id_falls_back_to_model_id() -> None:
    emission = default_build_emission([{"model_id": "solo"}])
    assert emission["cruncher_rewards"][0]["cruncher_id"] == "solo"
    assert emission["cruncher_rewards"][0]["reward_pct"] == FRAC64_TOTAL
    assert emission["cruncher_rewards"][0]["wallet"] is None


def test_provider_rewards_empty_when_not_given() -> None:
    emission = default_build_emission([entry("m1", "p1", 1)])
    assert emission["compute_provider_rewards"] == []
    assert emission["data_provider_rewards"] == []
    assert emission["crunch"] == ""


def test_provider_rewards_when_given() -> None:
    emission = default_build_emission(
        [entry("m1", "p1", 1)], crunch_pubkey="C", compute_provider="ComputePk", data_provider="DataPk"
    )
    assert emission["compute_provider_rewards"] == [{"provider": "ComputePk", "reward_pct": 1_000_000_000}]
    assert emission["data_provider_rewards"] == [{"provider": "DataPk", "reward_pct": 1_000_000_000}]


def test_empty_ranking_gives_empty_lists() -> None:
    emission = default_build_emission([], crunch_pubkey="C")
    assert emission["cruncher_rewards"] == []
    assert emission["model_rewards"] == []
    assert emission["crunch"] == "C"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["p0", "p1", "p2", "p3", "p4", "p5"]), min_size=1, max_size=200))
def test_random_rankings_pay_exactly_and_per_player(players: list[str]) -> None:
    ranked = [entry(f"model-{i:03d}", player, i + 1) for i, player in enumerate(players)]
    emission = default_build_emission(ranked)
    crunchers = emission["cruncher_rewards"]
    models = emission["model_rewards"]

    assert sum(c["reward_pct"] for c in crunchers) == FRAC64_TOTAL
    assert sum(m["reward_pct"] for m in models) == FRAC64_TOTAL
    assert [m["model_id"] for m in models] == [e["model_id"] for e in ranked]
    assert {c["cruncher_id"] for c in crunchers} == set(players)
    assert [c["cruncher_index"] for c in crunchers] == list(range(len(crunchers)))
    assert [(-c["reward_pct"], c["cruncher_id"]) for c in crunchers] == sorted(
        (-c["reward_pct"], c["cruncher_id"]) for c in crunchers
    )
    for cruncher in crunchers:
        own = [m for m in models if m["player_id"] == cruncher["cruncher_id"]]
        assert cruncher["model_ids"] == [m["model_id"] for m in own]
        assert cruncher["reward_pct"] == sum(m["reward_pct"] for m in own)


@pytest.mark.parametrize("total", [0, 1, 7, 1000, 999_999_999_999, 2**63 - 1])
def test_split_sums_exactly(total: int) -> None:
    weights = [371428574, 121428571, 121428571, 121428571, 121428571, 71428571, 71428571]
    amounts = split(weights, total)
    assert sum(amounts) == total and all(a >= 0 for a in amounts)
    for weight, amount in zip(weights, amounts, strict=True):  # within one unit of the exact share
        assert abs(Fraction(amount) - Fraction(weight * total, sum(weights))) < 1
    assert split([0, 0], 10) == [0, 0] and split([], 10) == []
