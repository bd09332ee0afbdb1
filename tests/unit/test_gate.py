"""The gate before money moves: the rules (domain.gate) and the checkpoint service on the fake unit of
work: a failing checkpoint is stored GATED with its reasons and can never be confirmed; the gate runs
again at confirm (a changed score is caught by the Merkle root); share changes are flagged only."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from coordinator_core.config import load_settings
from coordinator_core.contract import CrunchContract
from coordinator_core.domain.emission_strategy import ProportionalEmission
from coordinator_core.domain.gate import check_emission
from coordinator_core.domain.scoring import ScoreRow
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.emission import default_build_emission
from coordinator_core.errors import Conflict
from coordinator_core.gateway.base import ModelInfo
from coordinator_core.services import checkpoint
from tests.unit.fakes import State, fake_uow, utc

DAY = utc(2019, 9, 2)
E9 = 1_000_000_000


def emission(*rewards: tuple[str, list[tuple[str, int]]]) -> dict[str, Any]:
    """``(participant, [(model, share), ...]), ...`` as an emission document."""
    return {
        "crunch": "",
        "cruncher_rewards": [
            {
                "cruncher_index": i,
                "cruncher_id": p,
                "wallet": None,
                "model_ids": [m for m, _ in ms],
                "reward_pct": sum(s for _, s in ms),
            }
            for i, (p, ms) in enumerate(rewards)
        ],
        "model_rewards": [
            {"model_id": m, "player_id": p, "rank": None, "reward_pct": s} for p, ms in rewards for m, s in ms
        ],
        "compute_provider_rewards": [],
        "data_provider_rewards": [],
    }


SCORED = {"a1": 5, "a2": 1, "b1": 3}


def test_a_sound_emission_passes() -> None:
    verdict = check_emission(
        emission(("alice", [("a1", 600_000_000), ("a2", 100_000_000)]), ("bob", [("b1", 300_000_000)])), SCORED
    )
    assert verdict.passed and verdict.blocked == () and verdict.flags == ()


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (emission(("alice", [("a1", 600_000_000)]), ("bob", [("b1", 300_000_000)])), "sum to 900,000,000"),
        (emission(("alice", [("a1", E9 + 5)]), ("bob", [("b1", -5)])), "not an integer >= 0"),
        (emission(("alice", [("a1", 0)]), ("bob", [("b1", 0)])), "no payee"),
        (emission(), "no payee"),
        (emission(("alice", [("a1", 500_000_000)]), ("zed", [("z1", 500_000_000)])), "zed is paid 50.000000 %"),
        (emission(("alice", [("a1", 500_000_000)]), ("alice", [("a2", 500_000_000)])), "more than once"),
    ],
    ids=["sum", "negative", "zero", "empty", "unscored", "repeated"],
)
def test_blocking_rules(document: dict[str, Any], reason: str) -> None:
    verdict = check_emission(document, SCORED)
    assert not verdict.passed and any(reason in b for b in verdict.blocked), verdict.blocked


def test_float_shares_inconsistent_sums_providers_and_the_root_block() -> None:
    document = emission(("alice", [("a1", E9)]))
    document["cruncher_rewards"][0]["reward_pct"] = 1e9  # a float, even of the right value
    assert any("not an integer" in b for b in check_emission(document, SCORED).blocked)
    document = emission(("alice", [("a1", E9)]))
    document["model_rewards"][0]["reward_pct"] = 999_999_999
    assert any("models' shares sum" in b for b in check_emission(document, SCORED).blocked)
    document = emission(("alice", [("a1", E9)]))
    document["compute_provider_rewards"] = [{"provider": "cp", "reward_pct": 10}]
    assert any("compute provider" in b for b in check_emission(document, SCORED).blocked)
    assert any(
        "merkle root mismatch" in b
        for b in check_emission(emission(("alice", [("a1", E9)])), SCORED, root_ok=False).blocked
    )


def test_share_changes_are_flagged_not_blocked() -> None:
    now = emission(("alice", [("a1", 900_000_000)]), ("bob", [("b1", 100_000_000)]))
    verdict = check_emission(now, SCORED, previous={"alice": 200_000_000, "carol": 800_000_000}, max_change=0.5)
    assert verdict.passed
    assert verdict.flags == (
        "alice: share 20.000000 % -> 90.000000 % (+70.000000 points, bound 50 points)",
        "carol: share 80.000000 % -> 0.000000 % (-80.000000 points, bound 50 points)",
    )
    assert check_emission(now, SCORED, previous={"alice": 500_000_000}, max_change=1.0).flags == ()
    assert check_emission(now, SCORED, previous=None, max_change=0.0).flags == ()  # nothing to compare with


# -- the service on the fake unit of work -------------------------------------------------------------
def seeded(days: int = 1, scores: dict[str, float] | None = None) -> State:
    """Models with one scored prediction per hour for ``days`` days from DAY: scores and snapshots."""
    state = State()
    scores = scores or {"a1": -1.0, "b1": -3.0}
    for model_id in scores:
        state.models[model_id] = {
            "info": ModelInfo(model_id, model_id, f"p-{model_id}", model_id.title()),
            "state": "RUNNING",
        }
    for hour in range(24 * days):
        start = DAY + timedelta(hours=hour)
        for model_id, value in scores.items():
            prediction = f"{model_id}-{hour}"
            state.scores[prediction] = ScoreRow(
                prediction, model_id, f"in-{hour}", "SCORED", value, True, None, {"value": value}, start
            )
            state.snapshots[(model_id, start)] = {
                "period_end": start + timedelta(hours=1),
                "totals": WindowTotals(value, 1, 1, 0, 0),
                "summary": {},
            }
    return state


def cfg(**overrides: Any) -> Any:
    return load_settings(
        database_url="sqlite://", crunch_contract=None, checkpoint_interval_seconds=86_400, **overrides
    )


def test_a_checkpoint_that_pays_nobody_is_gated_and_never_confirmable() -> None:
    state = seeded()
    _, uow = fake_uow(state)
    contract = CrunchContract(emission=ProportionalEmission(floor=0.0))  # every score is below 0: nobody passes
    written = checkpoint.build_checkpoints(uow, contract, cfg(), utc(2019, 9, 3))
    stored = state.checkpoints[written[0]]
    assert stored["status"] == "GATED"
    assert stored["gate_jsonb"]["passed"] is False and stored["gate_jsonb"]["stage"] == "build"
    assert any("no payee" in b for b in stored["gate_jsonb"]["blocked"])
    with pytest.raises(Conflict, match="GATED and cannot be confirmed: no payee"):
        checkpoint.confirm_checkpoint(uow, written[0], "0xabc", utc(2019, 9, 3))
    assert state.checkpoints[written[0]]["tx_hash"] is None
    with pytest.raises(Conflict, match="Allowed: \\[\\]"):
        checkpoint.advance_checkpoint(uow, written[0], "CLAIMABLE")


def test_the_gate_runs_again_at_confirm_and_catches_a_changed_score() -> None:
    state = seeded()
    _, uow = fake_uow(state)
    written = checkpoint.build_checkpoints(uow, CrunchContract(), cfg(), utc(2019, 9, 3))
    row = state.checkpoints[written[0]]
    assert row["status"] == "PENDING" and row["gate_jsonb"]["passed"] and len(row["merkle_root"]) == 64
    assert checkpoint.verify_checkpoint(uow, written[0]) == (row["merkle_root"], row["merkle_root"])
    old = state.scores["b1-5"]
    state.scores["b1-5"] = replace(old, value=old.value + 0.5)  # one stored value changed
    with pytest.raises(Conflict, match="failed the gate and is now GATED: merkle root mismatch"):
        checkpoint.confirm_checkpoint(uow, written[0], "0xabc", utc(2019, 9, 3))
    gated = state.checkpoints[written[0]]
    assert gated["status"] == "GATED" and gated["tx_hash"] is None
    assert gated["gate_jsonb"]["stage"] == "confirm" and gated["gate_jsonb"]["earlier"][0]["stage"] == "build"
    with pytest.raises(Conflict, match="GATED"):
        checkpoint.confirm_checkpoint(uow, written[0], "0xabc", utc(2019, 9, 3))


def test_an_untouched_checkpoint_confirms_and_the_next_one_flags_big_moves() -> None:
    state = seeded(days=2)
    _, uow = fake_uow(state)
    first = checkpoint.build_checkpoints(uow, CrunchContract(), cfg(), utc(2019, 9, 3))
    assert checkpoint.confirm_checkpoint(uow, first[0], "0xabc", utc(2019, 9, 3)).status == "SUBMITTED"
    assert state.checkpoints[first[0]]["gate_jsonb"]["stage"] == "confirm"
    # the second day: b1 becomes the best; with a bound of 10 points the move is flagged, still PENDING
    for hour in range(24, 48):
        start = DAY + timedelta(hours=hour)
        state.snapshots[("b1", start)]["totals"] = WindowTotals(5.0, 1, 1, 0, 0)
    second = checkpoint.build_checkpoints(uow, CrunchContract(), cfg(checkpoint_max_share_change=0.1), utc(2019, 9, 4))
    row = state.checkpoints[second[0]]
    assert row["status"] == "PENDING" and row["gate_jsonb"]["passed"]
    assert row["gate_jsonb"]["flags"] == [
        "p-a1: share 62.500000 % -> 37.500000 % (-25.000000 points, bound 10 points)",
        "p-b1: share 37.500000 % -> 62.500000 % (+25.000000 points, bound 10 points)",
    ]
    expected = default_build_emission(row["meta_jsonb"]["ranking"])
    assert row["entries_jsonb"][0] == expected
