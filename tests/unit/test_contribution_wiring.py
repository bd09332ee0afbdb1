"""The contribution library wired into the money path: slot shares under every strategy, the
contribution strategy, a checkpoint's annotation (clusters, slots, contribution) from stored-like
rounds, ensembles at predict time, and the missing-prediction baseline without virtual models or
followers. Properties by hypothesis and seeded worlds (``contribution_worlds``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.contract import CrunchContract, EnsembleSpec
from coordinator_core.domain.emission_strategy import (
    ContributionEmission,
    ProportionalEmission,
    RankDecayEmission,
    SoftmaxEmission,
    TiersEmission,
)
from coordinator_core.domain.policy import MissingPolicy
from coordinator_core.domain.ranking import Participant, build_ranking, ranked_json
from coordinator_core.domain.scoring import PendingPrediction, per_prediction, score_rounds
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.emission import FRAC64_TOTAL, apportion, default_build_emission, entry_slots, strategy_shares
from coordinator_core.scoring.rules import absolute_error_bps
from coordinator_core.services.contribution import WindowRound, annotate_entries, window_contribution
from coordinator_core.services.predict import ensemble_output
from tests.unit.contribution_worlds import World, honest_world, lagged

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STRATEGIES = [
    TiersEmission(),
    SoftmaxEmission(temperature=10.0),
    ProportionalEmission(floor=-20_000.0),
    RankDecayEmission(ratio=0.9),
    ContributionEmission(),
]


def entry(model_id: str, rank: int, score: float | None, contribution: float | None = None) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "player_id": f"p_{model_id}",
        "rank": rank,
        "metrics": {"score_recent": score},
        "score": {"ranking": {"key": "score_recent", "value": score, "direction": "desc"}},
        "contribution": contribution,
    }


# -- slot shares ----------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    scores=st.lists(st.floats(-500, 0, allow_nan=False), min_size=1, max_size=14),
    groups=st.lists(st.integers(0, 4), min_size=14, max_size=14),
    contributions=st.lists(st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)), min_size=14, max_size=14),
    which=st.integers(0, len(STRATEGIES) - 1),
)
def test_slot_shares_are_exact_non_negative_and_equal_inside_a_slot(
    scores: list[float], groups: list[int], contributions: list[float | None], which: int
) -> None:
    strategy = STRATEGIES[which]
    ordered = sorted(scores, reverse=True)
    entries = [entry(f"m{i:02d}", i + 1, s, contributions[i]) for i, s in enumerate(ordered)]
    # clusters: entries with the same group label > 0 share a slot held by the best-ranked of them
    heads: dict[int, str] = {}
    for e, g in zip(entries, groups, strict=False):
        if g > 0:
            head = heads.setdefault(g, e["model_id"])
            if head != e["model_id"] or sum(1 for x in groups[: len(entries)] if x == g) > 1:
                e["slot"] = head
    slots = entry_slots(entries)
    shares = strategy_shares(strategy, entries)
    assert all(s >= 0 for s in shares)
    assert sum(shares) in (0, FRAC64_TOTAL)
    if isinstance(strategy, TiersEmission | RankDecayEmission | SoftmaxEmission | ContributionEmission):
        assert sum(shares) == FRAC64_TOTAL  # these always pay
    for slot in slots:
        inside = [shares[i] for i in slot]
        assert max(inside) - min(inside) <= 1
    # the slots get exactly the strategy's apportioned weights of their representatives
    heads_entries = [entries[slot[0]] for slot in slots]
    if sum(shares):
        if isinstance(strategy, ContributionEmission):
            weights = strategy.weights([e["contribution"] for e in heads_entries], "desc")
        else:
            weights = strategy.weights([e["metrics"]["score_recent"] for e in heads_entries], "desc")
        assert [sum(shares[i] for i in slot) for slot in slots] == apportion(weights)


@settings(max_examples=200, deadline=None)
@given(scores=st.lists(st.floats(-500, 0, allow_nan=False), min_size=1, max_size=14), which=st.integers(0, 3))
def test_without_slots_the_shares_are_the_plain_apportionment(scores: list[float], which: int) -> None:
    strategy = STRATEGIES[which]
    entries = [entry(f"m{i:02d}", i + 1, s) for i, s in enumerate(sorted(scores, reverse=True))]
    weights = strategy.weights([e["metrics"]["score_recent"] for e in entries], "desc")
    expected = apportion(weights) if sum(weights, Fraction(0)) > 0 else [0] * len(entries)
    assert strategy_shares(strategy, entries) == expected


def test_a_slot_naming_an_unranked_or_foreign_model_is_refused() -> None:
    entries = [entry("a", 1, -1.0), entry("b", 2, -2.0)]
    entries[1]["slot"] = "zzz"
    with pytest.raises(ValueError, match="not a ranked model"):
        entry_slots(entries)
    entries = [entry("a", 1, -1.0), entry("b", 2, -2.0), entry("c", 3, -3.0)]
    entries[0]["slot"], entries[2]["slot"] = "b", "a"
    with pytest.raises(ValueError, match="belongs to another slot"):
        entry_slots(entries)


def test_contribution_strategy_pays_positive_contribution_and_splits_equally_when_none_is() -> None:
    entries = [entry("a", 1, -1.0, 3.0), entry("b", 2, -2.0, 1.0), entry("c", 3, -3.0, -2.0), entry("d", 4, None)]
    shares = strategy_shares(ContributionEmission(), entries)
    assert shares == [750_000_000, 250_000_000, 0, 0]
    flat = [entry(m, i + 1, -1.0, -1.0) for i, m in enumerate("abc")]
    assert strategy_shares(ContributionEmission(), flat) == [333_333_334, 333_333_333, 333_333_333]


def test_contribution_needs_an_ensemble_and_an_ensemble_must_fit_the_output_kind() -> None:
    with pytest.raises(ValueError, match="needs an ensemble"):
        CrunchContract(emission=ContributionEmission())
    with pytest.raises(ValueError, match="combines 'density_path'"):
        CrunchContract(ensembles=[EnsembleSpec(name="mix", kind="mixture")])
    with pytest.raises(ValueError, match="used twice"):
        CrunchContract(ensembles=[EnsembleSpec(name="m"), EnsembleSpec(name="m")])


# -- a checkpoint from rounds, as the service sees them ----------------------------------------------
def rounds_of(world: World) -> list[WindowRound]:
    out = []
    for t in range(world.predictions.shape[0]):
        outputs = {
            m: {"value": float(world.predictions[t, j])}
            for j, m in enumerate(world.model_ids)
            if not math.isnan(world.predictions[t, j])
        }
        out.append(
            WindowRound(
                f"INP_{t:04d}", "cfg", T0 + timedelta(hours=t), {"return": float(world.realized[t])}, {}, outputs
            )
        )
    return out


def checkpoint_rewards(contract: CrunchContract, world: World, players: dict[str, str]) -> dict[str, Any]:
    """Rank the world as a checkpoint does (mean absolute_error_bps, missing excluded), annotate
    the entries (clusters, slots, contribution) and build the emission; rewards per participant."""
    scores = -10_000.0 * np.abs(world.predictions - world.realized[:, None])
    totals = {}
    for j, m in enumerate(world.model_ids):
        answered = ~np.isnan(scores[:, j])
        totals[m] = WindowTotals(float(scores[answered, j].sum()), int(answered.sum()), int(answered.sum()), 0, 0)
    participants = {m: Participant(m, m, players.get(m, m), players.get(m, m)) for m in world.model_ids}
    key = "score_recent"
    ranking = ranked_json(build_ranking({key: totals}, key, participants, key, "desc", require_scored=True))
    entries, clusters = annotate_entries(contract, rounds_of(world), ranking)
    emission = default_build_emission(entries, strategy=contract.emission)
    rewards = {r["cruncher_id"]: r["reward_pct"] for r in emission["cruncher_rewards"]}
    return {"rewards": rewards, "entries": entries, "clusters": clusters}


def contract_for(strategy: Any) -> CrunchContract:
    from coordinator_core.contract import ClusterRule

    return CrunchContract(
        ensembles=[EnsembleSpec(name="mean")],
        emission=strategy,
        clusters=ClusterRule(threshold=0.99, max_lag=4, min_overlap=48),
    )


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.kind)
def test_a_copy_exact_or_lagged_never_increases_the_pairs_reward(strategy: Any) -> None:
    contract = contract_for(strategy)
    for seed in range(6):
        world = honest_world(seed, models=7, rounds=120, missing=0.03)
        players = {m: m for m in world.model_ids}
        alone = checkpoint_rewards(contract, world, players)
        assert alone["clusters"]["clusters"] == []  # honest models are not clustered
        assert sum(alone["rewards"].values()) == FRAC64_TOTAL
        rng = np.random.default_rng(seed)
        original = world.model_ids[int(rng.integers(len(world.model_ids)))]
        column = world.predictions[:, world.model_ids.index(original)]
        for lag in (0, 1, 3):
            copied = world.with_column("copycat", lagged(column, lag))
            result = checkpoint_rewards(contract, copied, {**players, "copycat": "mallory"})
            by_id = {e["model_id"]: e for e in result["entries"]}
            assert by_id["copycat"].get("slot") is not None, (seed, lag)  # the copy was caught
            assert sum(result["rewards"].values()) == FRAC64_TOTAL
            assert all(v >= 0 for v in result["rewards"].values())
            pair = result["rewards"].get(original, 0) + result["rewards"].get("mallory", 0)
            assert pair <= alone["rewards"].get(original, 0), (strategy.kind, seed, lag)
            # the others are paid what they were without the copy
            for m in world.model_ids:
                if m != original:
                    assert result["rewards"].get(m, 0) == alone["rewards"].get(m, 0), (strategy.kind, seed, lag, m)
            (cluster,) = result["clusters"]["clusters"]
            assert set(cluster["members"]) == {original, "copycat"}
            assert cluster["pairs"][0]["correlation"] == pytest.approx(1.0)
            assert abs(cluster["pairs"][0]["lag"]) == lag and cluster["pairs"][0]["overlap"] >= 48
            assert cluster["representative"] in cluster["leaders"]


def test_window_contribution_closed_form_equals_the_contracts_rule_one_out() -> None:
    world = honest_world(11, models=5, rounds=60, missing=0.1)
    world = World(world.predictions * 0.01, world.realized * 0.01, world.model_ids)  # returns of ~1 %
    rounds = rounds_of(world)
    closed = window_contribution(CrunchContract(ensembles=[EnsembleSpec(name="mean")]), rounds)

    def my_rule(prediction: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
        return absolute_error_bps(prediction, truth)  # another name: not a closed-form rule

    generic = window_contribution(
        CrunchContract(ensembles=[EnsembleSpec(name="mean")], scoring_function=my_rule), rounds
    )
    assert closed.keys() == generic.keys() == set(world.model_ids)
    for m in world.model_ids:
        assert closed[m] is not None and generic[m] is not None
        assert closed[m] == pytest.approx(generic[m], rel=1e-9, abs=1e-9)
    assert len({round(v, 6) for v in closed.values() if v is not None}) > 1  # not all equal
    assert window_contribution(CrunchContract(), rounds) == {}  # no ensemble, no contribution


# -- ensembles at predict time ----------------------------------------------------------------------
def test_ensemble_outputs_of_each_kind() -> None:
    assert ensemble_output("mean", [{"value": 1.0}, {"value": 2.0}, {"value": 4.5}]) == {"value": 2.5}
    assert ensemble_output("mean", []) is None
    quantiles = [{"levels": [0.1, 0.9], "values": [-1.0, 1.0]}, {"levels": [0.1, 0.9], "values": [-3.0, 2.0]}]
    assert ensemble_output("quantiles", quantiles) == {"levels": [0.1, 0.9], "values": [-2.0, 1.5]}
    normal = {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 1.0}}
    mixed = ensemble_output("mixture", [{"300": [normal]}, {"300": [normal]}])
    assert mixed is not None and list(mixed) == ["300"]
    assert [c["weight"] for c in mixed["300"][0]["components"]] == [0.5, 0.5]
    with pytest.raises(ValueError):
        ensemble_output("quantiles", [quantiles[0], {"levels": [0.2, 0.8], "values": [0.0, 1.0]}])


def test_ensemble_rows_combine_the_validated_answers_only() -> None:
    from coordinator_core.ports import StoredConfig
    from coordinator_core.services.predict import _Due, ensemble_rows

    contract = CrunchContract(ensembles=[EnsembleSpec(name="mean")])
    due = _Due(StoredConfig("CFG_x", "x", {}, {}, 0), {"subject": "BTC"}, T0)
    rows = [
        {"model_id": "a", "status": "PENDING", "inference_output_jsonb": {"value": 1.0}},
        {"model_id": "b", "status": "FAILED", "inference_output_jsonb": {"raw_output": "up"}},
        {"model_id": "c", "status": "PENDING", "inference_output_jsonb": {"value": 3.0}},
        {"model_id": "d", "status": "ABSENT", "inference_output_jsonb": {}},
    ]
    (row,) = ensemble_rows(contract, due, rows, T0, T0 + timedelta(hours=1))
    assert row["model_id"] == "ensemble:mean" and row["status"] == "PENDING"
    assert row["inference_output_jsonb"] == {"value": 2.0}
    assert row["meta_jsonb"]["members"] == ["a", "c"] and row["input_id"] == due.input_id
    (none,) = ensemble_rows(contract, due, rows[1:2], T0, T0)
    assert none["status"] == "ABSENT" and none["id"].startswith("ABS_ensemble:mean_")


# -- the missing-prediction baseline ------------------------------------------------------------------
def test_virtual_models_and_followers_do_not_move_the_charge_of_a_missing_answer() -> None:
    truth = {"return": 0.0}
    outputs = {"a": 0.001, "b": 0.002, "ensemble:mean": 0.05, "laggard": 0.03}
    predictions = [PendingPrediction(f"P_{m}", m, "I", "PENDING", {"value": v}) for m, v in outputs.items()]
    predictions.append(PendingPrediction("P_missing", "missing", "I", "ABSENT", {}))
    rule = per_prediction(lambda p, t: absolute_error_bps(dict(p), dict(t)))
    batch = score_rounds([(truth, predictions, {})], rule, MissingPolicy.parse("worst_in_round"), "desc", T0)
    charged = {r.model_id: r.value for r in batch.scores}
    assert charged["missing"] == pytest.approx(-300.0)  # the laggard is the worst paid model here
    batch = score_rounds(
        [(truth, predictions, {})], rule, MissingPolicy.parse("worst_in_round"), "desc", T0, frozenset({"laggard"})
    )
    charged = {r.model_id: r.value for r in batch.scores}
    assert charged["missing"] == pytest.approx(-20.0)  # b, not the ensemble (-500) nor the follower
    assert charged["ensemble:mean"] == pytest.approx(-500.0)  # still scored like a model
    assert batch.statuses["SCORED"] == 3 and batch.statuses["ABSENT"] == 1  # the ensemble is not counted


@settings(max_examples=200, deadline=None)
@given(
    contributions=st.lists(st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=12),
    groups=st.lists(st.integers(0, 3), min_size=12, max_size=12),
)
def test_the_contribution_strategy_agrees_with_the_librarys_contribution_weighted_emission(
    contributions: list[float | None], groups: list[int]
) -> None:
    """Within one frac64 unit per model: the two differ only in where a tied leftover unit goes."""
    from coordinator_core.contribution import Slot, contribution_weighted_emission

    entries = [entry(f"m{i:02d}", i + 1, -float(i), c) for i, c in enumerate(contributions)]
    members: dict[int, list[str]] = {}
    for e, g in zip(entries, groups, strict=False):
        members.setdefault(g if g > 0 else -int(e["rank"]), []).append(e["model_id"])
    slots = []
    for ids in members.values():
        slots.append(Slot(tuple(ids), ids[0]))
        for m in ids:
            if len(ids) > 1:
                next(e for e in entries if e["model_id"] == m)["slot"] = ids[0]
    for e in entries:  # a slot's members share its representative's contribution, as a checkpoint stores it
        e["contribution"] = next(x for x in entries if x["model_id"] == (e.get("slot") or e["model_id"]))[
            "contribution"
        ]
    slots.sort(key=lambda s: next(int(e["rank"]) for e in entries if e["model_id"] == s.representative))
    mine = dict(zip([e["model_id"] for e in entries], strategy_shares(ContributionEmission(), entries), strict=True))
    library = contribution_weighted_emission({e["model_id"]: e["contribution"] for e in entries}, {}, slots)
    theirs = {r.model_id: r.reward_pct for r in library.model_rewards}
    assert sum(mine.values()) == sum(theirs.values()) == FRAC64_TOTAL
    assert all(abs(mine[m] - theirs[m]) <= 1 for m in mine), (mine, theirs)
