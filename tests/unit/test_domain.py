"""The pure rules of the domain, without a database: scoring a batch, the missing-prediction
policy, window totals, the shared ranking builder and the typed emission."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator_core.domain.policy import MissingPolicy
from coordinator_core.domain.ranking import Participant, build_ranking, default_rank
from coordinator_core.domain.scoring import PendingPrediction, per_prediction, score_rounds
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.emission import FRAC64_TOTAL, Emission, build_emission, percents, prizes
from coordinator_core.errors import ConfigurationError, ValidationError
from tests.unit.fakes import utc

AT = utc(2019, 9, 1, 12)


def rule(output: Any, truth: Any) -> dict[str, Any]:
    if output.get("raise"):
        raise ValidationError("scoring function raised ValueError: no")
    return {"value": -abs(output["value"] - truth["return"]), "extra": 1}


def pending(pid: str, model: str, status: str = "PENDING", value: float = 0.0, **extra: Any) -> PendingPrediction:
    return PendingPrediction(pid, model, "INP", status, {"value": value, **extra}, None if status == "PENDING" else "x")


def test_missing_policy_parses_once_and_charges_as_documented() -> None:
    assert MissingPolicy.parse("worst_in_round").penalty([-1.0, -3.0], "desc") == -3.0
    assert MissingPolicy.parse("worst_in_round").penalty([-1.0, -3.0], "asc") == -1.0
    assert MissingPolicy.parse("worst_in_round").penalty([], "desc") is None
    assert MissingPolicy.parse("exclude").penalty([-1.0], "desc") is None
    constant = MissingPolicy.parse("constant:-100")
    assert constant.penalty([], "desc") == -100.0 and str(constant) == "constant:-100"
    for bad in ("worst", "constant:x", ""):
        with pytest.raises(ValueError):
            MissingPolicy.parse(bad)


def test_score_rounds_scores_fails_and_penalises_within_each_round() -> None:
    predictions = [
        pending("p1", "a", value=0.01),
        pending("p2", "b", value=0.03),
        pending("p3", "c", **{"raise": True}),
        pending("p4", "d", status="ABSENT"),
    ]
    batch = score_rounds(
        [({"return": 0.02}, predictions, {})], per_prediction(rule), MissingPolicy.parse("worst_in_round"), "desc", AT
    )
    values = {r.prediction_id: r.value for r in batch.scores}
    assert values["p1"] == pytest.approx(-0.01) and values["p2"] == pytest.approx(-0.01)
    assert values["p3"] == values["p4"] == min(values["p1"], values["p2"])  # the worst valid score of the round
    assert {c.prediction_id: c.status for c in batch.changes} == {"p1": "SCORED", "p2": "SCORED", "p3": "FAILED"}
    assert batch.statuses == {"SCORED": 2, "FAILED": 1, "ABSENT": 1}
    failed = next(r for r in batch.scores if r.prediction_id == "p3")
    assert not failed.success and failed.result["penalty"] == "worst_in_round" and "raised" in failed.failed_reason
    assert all(r.scored_at == AT for r in batch.scores) and failed.id == "SCR_p3"
    excluded = score_rounds(
        [({"return": 0.02}, predictions, {})], per_prediction(rule), MissingPolicy.parse("exclude"), "desc", AT
    )
    assert {r.prediction_id for r in excluded.scores} == {"p1", "p2"}


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.integers(0, 50), st.integers(0, 50)), max_size=30))
def test_window_totals_add_up_and_score_is_sum_over_count(parts: list[tuple[float, int, int]]) -> None:
    totals = [WindowTotals(v, n + f, n, f, 0) for v, n, f in parts]
    total = WindowTotals.total(totals)
    assert total.prediction_count == sum(t.prediction_count for t in totals)
    assert total.score == (total.value_sum / total.prediction_count if total.prediction_count else None)


def participants(*ids: str) -> dict[str, Participant]:
    return {m: Participant(m, m.upper(), f"p-{m}", m.title(), f"w-{m}") for m in ids}


def test_one_ranking_builder_for_leaderboard_and_checkpoint() -> None:
    windows = {
        "short": {"a": WindowTotals(-2.0, 2, 2), "b": WindowTotals(-0.5, 1, 1)},
        "long": {"a": WindowTotals(-3.0, 3, 3), "b": WindowTotals(-1.0, 2, 1, 1), "c": WindowTotals(0.0, 1, 0, 1)},
    }
    board = build_ranking(windows, "long", participants("a", "b", "c"), "short", "desc")
    assert [e.model_id for e in board] == ["b", "a", "c"]  # c has no short-window score: last
    assert [e.rank for e in board] == [1, 2, 3]
    entry = board[0].to_json()
    assert entry["metrics"] == {"short": -0.5, "long": -0.5} and entry["wallet"] == "w-b"
    assert entry["score"]["ranking"] == {"key": "short", "value": -0.5, "direction": "desc"}
    assert entry["scored_count"] == 1 and entry["failed_count"] == 1  # the counts window's totals
    paid = build_ranking(
        {"long": windows["long"]}, "long", participants("a", "b", "c"), "long", "desc", require_scored=True
    )
    assert [e.model_id for e in paid] == ["b", "a"]  # c has no scored prediction: never paid
    unknown = build_ranking({"k": {"zz": WindowTotals(1.0, 1, 1)}}, "k", {}, "k", "desc")
    assert unknown[0].participant == Participant.unknown("zz") and unknown[0].participant.player_id == "zz"


def test_a_custom_ranker_must_return_every_entry_once() -> None:
    windows = {"k": {"a": WindowTotals(1.0, 1, 1), "b": WindowTotals(2.0, 1, 1)}}
    reverse = build_ranking(windows, "k", {}, "k", "desc", ranker=lambda e, k, d: list(reversed(default_rank(e, k, d))))
    assert [(e.model_id, e.rank) for e in reverse] == [("a", 2), ("b", 1)]  # the ranker's own ranks are kept
    with pytest.raises(ConfigurationError, match="every entry"):
        build_ranking(windows, "k", {}, "k", "desc", ranker=lambda e, k, d: e[:1])


def test_emission_is_keyed_by_participant_and_round_trips_through_json() -> None:
    ranked = [("m1", "alice", "w-a", 1), ("m2", "bob", None, 2), ("m3", "alice", "w-a", 3)]
    emission = build_emission(ranked, "crunch", compute_provider="cp")
    assert emission.total == FRAC64_TOTAL
    alice = next(r for r in emission.cruncher_rewards if r.cruncher_id == "alice")
    assert alice.model_ids == ("m1", "m3") and alice.wallet == "w-a"
    assert alice.reward_pct == sum(r.reward_pct for r in emission.model_rewards if r.player_id == "alice")
    assert Emission.from_json(emission.to_json()) == emission
    amounts = prizes(emission, "CKP", utc(2019, 9, 2), 1001)
    assert sum(p.prize for p in amounts) == 1001 and [p.model_id for p in amounts] == ["m1", "m2", "m3"]
    shown = percents([(r.cruncher_id, r.reward_pct) for r in emission.cruncher_rewards])
    assert round(sum(shown.values()), 6) == 100.0
