"""Emission strategies chosen in the contract: tiers (unchanged), softmax, proportional above a
floor, rank decay. Hand-computed cases, agreement with Synth's float softmax, and properties:
exact sum, no negative share, keyed by participant, monotone in rank, equal weights for tied scores."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from coordinator_core.config import load_settings
from coordinator_core.contract import CrunchContract
from coordinator_core.domain.emission_strategy import (
    RANK_RULES,
    ProportionalEmission,
    RankDecayEmission,
    SoftmaxEmission,
    TiersEmission,
    parse_strategy,
    softmax_weights,
)
from coordinator_core.domain.ranking import default_rank, rank_value
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.emission import FRAC64_TOTAL, default_build_emission, strategy_shares
from coordinator_core.gateway.base import ModelInfo
from coordinator_core.services import checkpoint
from tests.unit.fakes import State, fake_uow, utc

KEY = "score_recent"


def ranked(scores: list[float], direction: str = "desc", players: list[str] | None = None) -> list[dict[str, Any]]:
    """Entries (JSON form) ranked by the default ranker, as the checkpoint service builds them."""
    entries = [
        {
            "model_id": f"m{i:03d}",
            "player_id": (players[i] if players else f"p{i:03d}"),
            "wallet": None,
            "metrics": {KEY: s},
            "score": {"metrics": {KEY: s}, "ranking": {"key": KEY, "value": s, "direction": direction}},
            "scored_count": 10,
        }
        for i, s in enumerate(scores)
    ]
    return default_rank(entries, KEY, direction)


def model_shares(strategy: Any, scores: list[float], direction: str = "desc") -> list[int]:
    emission = default_build_emission(ranked(scores, direction), strategy=strategy)
    return [r["reward_pct"] for r in emission["model_rewards"]]


# -- hand-computed ----------------------------------------------------------------------------------
def test_tiers_are_the_default_and_unchanged() -> None:
    entries = ranked([5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0])
    assert CrunchContract().emission == TiersEmission()
    assert default_build_emission(entries) == default_build_emission(entries, strategy=TiersEmission())
    expected = [371_428_572, 121_428_572, 121_428_572, 121_428_571, 121_428_571, 71_428_571, 71_428_571]
    assert model_shares(TiersEmission(), [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0]) == expected


def test_proportional_pays_the_distance_above_the_floor() -> None:
    assert model_shares(ProportionalEmission(floor=0.0), [3.0, 1.0, -1.0]) == [750_000_000, 250_000_000, 0]
    # lower is better: the distance below the floor; -3 is best
    assert model_shares(ProportionalEmission(floor=0.0), [-3.0, -1.0, 2.0], "asc") == [750_000_000, 250_000_000, 0]
    # nobody past the floor: nobody is paid (the checkpoint gate refuses such an emission)
    assert model_shares(ProportionalEmission(floor=10.0), [3.0, 1.0]) == [0, 0]


def test_rank_decay_is_exact() -> None:
    # 1, 1/2, 1/4 -> 4/7, 2/7, 1/7 of 1e9: floors 571428571, 285714285, 142857142 (2 units left, to the
    # largest remainders .86 and .71)
    assert model_shares(RankDecayEmission(ratio=0.5), [3.0, 2.0, 1.0]) == [571_428_571, 285_714_286, 142_857_143]
    assert RankDecayEmission().ratio == 0.9
    assert model_shares(RankDecayEmission(ratio=1.0), [3.0, 2.0]) == [500_000_000, 500_000_000]


def synth_compute_softmax(score_values: np.ndarray, beta: float) -> np.ndarray:
    """Synth's rule (synth/validator/reward.py compute_softmax), in float."""
    scaled = beta * score_values
    scaled -= np.max(scaled)
    exp_scores = np.exp(scaled)
    return exp_scores / np.sum(exp_scores)


@pytest.mark.parametrize("temperature", [0.5, 5.0, 10.0, 100.0])
def test_softmax_agrees_with_synths_float_rule_within_one_unit(temperature: float) -> None:
    crps = [120.0, 80.5, 99.25, 310.0, 80.5, 1e-3]  # lower is better, as Synth's CRPS
    shares = model_shares(SoftmaxEmission(temperature=temperature), crps, "asc")
    order = sorted(range(len(crps)), key=lambda i: (crps[i], f"m{i:03d}"))  # the ranking's order
    synth = synth_compute_softmax(np.array(crps), -1.0 / temperature)  # Synth's beta = -1/T
    for share, index in zip(shares, order, strict=True):
        assert abs(share - synth[index] * FRAC64_TOTAL) <= 1.0
    assert sum(shares) == FRAC64_TOTAL


def test_softmax_hand_computed_and_deterministic() -> None:
    # scores 1 and 0, T = 1, higher better: e^0 : e^-1 -> 0.7310585786300049 of the total
    weights = softmax_weights([1.0, 0.0], "desc", 1.0)
    assert weights == [Fraction(731_058_578_630), Fraction(268_941_421_370)]
    assert model_shares(SoftmaxEmission(temperature=1.0), [1.0, 0.0]) == [731_058_579, 268_941_421]
    assert softmax_weights([1.0, 0.0], "desc", 1.0) == weights  # same inputs, same integers
    # far apart: the worse one underflows to 0 of 1e-12 and the best takes all
    assert model_shares(SoftmaxEmission(temperature=1.0), [0.0, -1e6]) == [FRAC64_TOTAL, 0]


def test_strategies_are_validated_in_the_contract() -> None:
    contract = CrunchContract(emission={"kind": "softmax", "temperature": 10})
    assert contract.emission == SoftmaxEmission(temperature=10.0)
    assert parse_strategy(contract.emission.params()) == contract.emission
    assert parse_strategy(None) == TiersEmission()
    for bad in ({"kind": "softmax", "temperature": 0}, {"kind": "softmax"}, {"kind": "lottery"}):
        with pytest.raises(ValidationError):
            CrunchContract(emission=bad)
    with pytest.raises(ValidationError):
        RankDecayEmission(ratio=1.5)
    with pytest.raises(ValidationError):
        ProportionalEmission(floor=math.inf)


# -- properties ------------------------------------------------------------------------------------
strategies = st.one_of(
    st.just(TiersEmission()),
    st.builds(SoftmaxEmission, temperature=st.floats(0.01, 1e4)),
    st.builds(ProportionalEmission, floor=st.floats(-1e3, 1e3)),
    st.builds(RankDecayEmission, ratio=st.floats(0.05, 1.0)),
)
score_values = st.one_of(st.floats(-1e4, 1e4), st.sampled_from([0.0, -1.5, 2.25, 100.0]))


@settings(max_examples=300, deadline=None)
@given(
    strategies,
    st.lists(st.tuples(st.sampled_from(["alice", "bob", "carol", "dan"]), score_values), min_size=1, max_size=60),
    st.sampled_from(["desc", "asc"]),
)
def test_every_strategy_pays_exactly_by_participant_and_monotone_in_rank(
    strategy: Any, rows: list[tuple[str, float]], direction: str
) -> None:
    players = [p for p, _ in rows]
    entries = ranked([s for _, s in rows], direction, players)
    emission = default_build_emission(entries, strategy=strategy)
    models, crunchers = emission["model_rewards"], emission["cruncher_rewards"]
    shares = [m["reward_pct"] for m in models]

    assert all(type(s) is int and s >= 0 for s in shares)
    total = sum(shares)
    if isinstance(strategy, ProportionalEmission) and total == 0:  # nobody past the floor
        scores = [e["metrics"][KEY] for e in entries]
        assert all((s <= strategy.floor) if direction == "desc" else (s >= strategy.floor) for s in scores)
    else:
        assert total == FRAC64_TOTAL
    assert sum(c["reward_pct"] for c in crunchers) == total
    # keyed by participant: several models of one participant add up, never a list position
    assert {c["cruncher_id"] for c in crunchers} == set(players)
    for cruncher in crunchers:
        own = [m for m in models if m["player_id"] == cruncher["cruncher_id"]]
        assert cruncher["reward_pct"] == sum(m["reward_pct"] for m in own)
        assert cruncher["model_ids"] == [m["model_id"] for m in own]
    # monotone in rank: a better rank never gets less
    assert all(a >= b for a, b in zip(shares, shares[1:], strict=False))
    # tied scores: equal exact weights under the score rules, so shares within one unit
    if strategy.kind not in RANK_RULES:
        for i, a in enumerate(entries):
            for j in range(i + 1, len(entries)):
                if entries[j]["metrics"][KEY] == a["metrics"][KEY]:
                    assert abs(shares[i] - shares[j]) <= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(score_values, min_size=2, max_size=30, unique=True), st.floats(0.1, 100.0))
def test_direction_is_respected(scores: list[float], temperature: float) -> None:
    for strategy in (SoftmaxEmission(temperature=temperature), ProportionalEmission(floor=min(scores) - 1)):
        # scores equal at RANK_DIGITS significant digits tie (summation noise never decides a rank)
        desc = strategy_shares(strategy, ranked(scores, "desc"))
        first = ranked(scores, "desc")[0]["metrics"][KEY]
        assert rank_value(first) == max(rank_value(s) for s in scores) and desc[0] >= max(desc) - 1
    worst_first = ranked(scores, "asc")  # lowest score first
    asc = strategy_shares(SoftmaxEmission(temperature=temperature), worst_first)
    assert rank_value(worst_first[0]["metrics"][KEY]) == min(rank_value(s) for s in scores) and asc[0] >= max(asc) - 1


def test_softmax_of_a_thousand_entries_is_fast_and_exact() -> None:
    scores = [float(i % 97) - 40.0 for i in range(1000)]
    shares = model_shares(SoftmaxEmission(temperature=7.0), scores)
    assert sum(shares) == FRAC64_TOTAL and shares[0] >= shares[-1]
    assert sum(model_shares(RankDecayEmission(ratio=0.9), scores)) == FRAC64_TOTAL


# -- the checkpoint service uses the contract's strategy --------------------------------------------
def seeded(scores: dict[str, tuple[str, float]]) -> State:
    """A fake state with one day of hourly snapshots per model (value = score per prediction)."""
    state = State()
    day = utc(2019, 9, 2)
    for model_id, (player, score) in scores.items():
        state.models[model_id] = {"info": ModelInfo(model_id, model_id, player, player.title()), "state": "RUNNING"}
        for hour in range(24):
            start = day + timedelta(hours=hour)
            state.snapshots[(model_id, start)] = {
                "period_end": start + timedelta(hours=1),
                "totals": WindowTotals(score, 1, 1, 0, 0),
                "summary": {},
            }
    return state


@pytest.mark.parametrize(
    "strategy",
    [TiersEmission(), SoftmaxEmission(temperature=2.0), ProportionalEmission(floor=-10.0), RankDecayEmission()],
    ids=lambda s: s.kind,
)
def test_the_checkpoint_service_pays_by_the_contracts_strategy_and_stores_it(strategy: Any) -> None:
    state = seeded({"a1": ("alice", -1.0), "b": ("bob", -2.0), "a2": ("alice", -4.0), "c": ("carol", -8.0)})
    _, uow = fake_uow(state)
    contract = CrunchContract(emission=strategy)
    cfg = load_settings(database_url="sqlite://", crunch_contract=None, checkpoint_interval_seconds=86_400)
    written = checkpoint.build_checkpoints(uow, contract, cfg, utc(2019, 9, 3))
    stored = state.checkpoints[written[0]]
    assert stored["meta_jsonb"]["emission_strategy"] == strategy.params()
    emission = stored["entries_jsonb"][0]
    expected = default_build_emission(stored["meta_jsonb"]["ranking"], strategy=strategy)
    assert emission == expected and sum(r["reward_pct"] for r in emission["cruncher_rewards"]) == FRAC64_TOTAL
    assert [m["model_id"] for m in emission["model_rewards"]] == ["a1", "b", "a2", "c"]
