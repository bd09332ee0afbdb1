"""One-out contribution: closed forms against hand computations and brute force; the weighted emission."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logsumexp

from coordinator_core.contribution.contribution import (
    ABSOLUTE_ERROR_BPS,
    DIRECTIONAL_PNL_BPS,
    POINT_RULES,
    SQUARED_ERROR,
    PointRule,
    contribution_weighted_emission,
    crps_mixture_contribution,
    log_score_contribution,
    normal_mixture_energy,
    point_contribution,
)
from coordinator_core.contribution.slots import Slot
from coordinator_core.domain.ranking import Participant
from coordinator_core.emission import FRAC64_TOTAL
from coordinator_core.scoring.metrics import crps_normal_mixture

NAN = math.nan
ABS = PointRule("abs", lambda p, y: np.abs(p - y), higher_is_better=False)

# rounds x models: round 3 has one member, round 4 is unresolved
X = np.array([[1.0, 2.0, 6.0], [NAN, 4.0, 0.0], [5.0, NAN, NAN], [1.0, 1.0, 1.0]])
Y = np.array([2.0, 1.0, 0.0, NAN])


# -- point forecasts, hand-computed ---------------------------------------------------------------


def test_point_contribution_hand_computed() -> None:
    # round 1: E = 3 (error 1); without m0: 4 (error 2) → +1; without m1: 3.5 → +0.5; without m2: 1.5 → -0.5
    # round 2: E = 2 (error 1); without m1: 0 (error 1) → 0; without m2: 4 (error 3) → +2
    # round 3: m0 alone, no one-out ensemble; round 4: unresolved
    c = point_contribution(X, Y, ["m0", "m1", "m2"], ABS)
    expected = np.array([[1.0, 0.5, -0.5], [NAN, 0.0, 2.0], [NAN, NAN, NAN], [NAN, NAN, NAN]])
    assert np.array_equal(c.per_round, expected, equal_nan=True)
    assert np.array_equal(c.ensemble_score, [1.0, 1.0, 5.0, NAN], equal_nan=True)
    assert c.rounds.tolist() == [1, 2, 2]
    assert c.mean.tolist() == [1.0, 0.25, 0.75]
    assert c.total.tolist() == [1.0, 0.5, 1.5]
    assert c.as_dict() == {"m0": 1.0, "m1": 0.25, "m2": 0.75}
    assert c.as_dict(total=True) == {"m0": 1.0, "m1": 0.5, "m2": 1.5}


def test_absolute_error_bps_is_the_same_effect_in_basis_points_and_higher_is_better() -> None:
    c = point_contribution(X, Y, ["m0", "m1", "m2"], ABSOLUTE_ERROR_BPS)
    assert c.higher_is_better
    assert np.allclose(c.mean, [10_000.0, 2_500.0, 7_500.0])
    assert np.array_equal(c.ensemble_score, [-10_000.0, -10_000.0, -50_000.0, NAN], equal_nan=True)


def test_directional_pnl() -> None:
    # round: members +1, -3 → E = -1 (short), y = +0.01: E earns -100 bps; without m0: -3 → -100; without m1: +1 → +100
    c = point_contribution([[1.0, -3.0]], [0.01], ["a", "b"], DIRECTIONAL_PNL_BPS)
    assert c.per_round.tolist() == [[0.0, pytest.approx(-200.0)]]


def test_a_model_alone_in_every_round_has_no_contribution() -> None:
    c = point_contribution([[1.0, NAN], [NAN, 2.0]], [0.0, 0.0], ["a", "b"])
    assert c.rounds.tolist() == [0, 0]
    assert c.as_dict() == {"a": None, "b": None}
    assert np.isnan(c.mean).all() and c.total.tolist() == [0.0, 0.0]


def test_rules_by_name() -> None:
    assert POINT_RULES["absolute_error_bps"] is ABSOLUTE_ERROR_BPS
    assert POINT_RULES["directional_pnl_bps"] is DIRECTIONAL_PNL_BPS
    assert not POINT_RULES["squared_error"].higher_is_better


@pytest.mark.parametrize(
    ("predictions", "realized", "ids", "message"),
    [
        ([1.0, 2.0], [0.0], ["a", "b"], "matrix"),
        ([[1.0, 2.0]], [0.0], ["a"], "columns"),
        ([[1.0, 2.0]], [0.0], ["a", "a"], "distinct"),
        ([[1.0, math.inf]], [0.0], ["a", "b"], "infinite"),
        ([[1.0, 2.0]], [0.0, 1.0], ["a", "b"], "shape"),
        ([[1.0, 2.0]], [math.inf], ["a", "b"], "infinite"),
    ],
)
def test_point_contribution_errors(predictions: list, realized: list, ids: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        point_contribution(predictions, realized, ids)


# -- point forecasts, brute force -----------------------------------------------------------------


def brute_force(x: np.ndarray, y: np.ndarray, rule: PointRule) -> np.ndarray:
    """c[t, i] by removing each model and recomputing the ensemble mean: O(R M^2)."""
    out = np.full(x.shape, NAN)
    sign = 1.0 if rule.higher_is_better else -1.0
    for t in range(x.shape[0]):
        present = [j for j in range(x.shape[1]) if not np.isnan(x[t, j])]
        if len(present) < 2 or np.isnan(y[t]):
            continue
        full = np.mean(x[t, present])
        for i in present:
            without = np.mean([x[t, j] for j in present if j != i])
            score = rule.score(np.array([full, without]), np.array([y[t], y[t]]))
            out[t, i] = sign * (score[0] - score[1])
    return out


matrices = st.integers(1, 8).flatmap(
    lambda m: st.tuples(
        arrays(np.float64, st.tuples(st.integers(1, 12), st.just(m)), elements=st.floats(-10, 10) | st.just(NAN)),
        st.integers(0, 2**32 - 1),
    )
)


@settings(max_examples=150, deadline=None)
@given(matrices, st.sampled_from([ABSOLUTE_ERROR_BPS, SQUARED_ERROR, DIRECTIONAL_PNL_BPS]))
def test_closed_form_equals_brute_force(case: tuple[np.ndarray, int], rule: PointRule) -> None:
    x, seed = case
    rng = np.random.default_rng(seed)
    y = np.asarray(rng.normal(size=x.shape[0]))
    y[rng.random(x.shape[0]) < 0.1] = NAN
    c = point_contribution(x, y, [f"m{i}" for i in range(x.shape[1])], rule)
    expected = brute_force(x, y, rule)
    assert np.array_equal(np.isnan(c.per_round), np.isnan(expected))
    if rule is DIRECTIONAL_PNL_BPS:  # sign() of a mean: where a mean is 0 up to rounding, either sign is right
        answered = ~np.isnan(x)
        n = answered.sum(axis=1, keepdims=True)
        total = np.where(answered, x, 0.0).sum(axis=1, keepdims=True)
        near_zero = (np.abs(total) < 1e-9) | (np.abs(total - np.where(answered, x, 0.0)) < 1e-9) | (n < 2)
        keep = ~near_zero & ~np.isnan(expected)
        assert np.allclose(c.per_round[keep], expected[keep], rtol=1e-9, atol=1e-6)
    else:
        assert np.allclose(c.per_round, expected, rtol=1e-9, atol=1e-6, equal_nan=True)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 30), st.integers(0, 2**32 - 1))
def test_squared_error_closed_form_and_its_sum(models: int, seed: int) -> None:
    # c = d²/(n-1)² - 2 e d/(n-1), e = E - y, d = x - E; Σ_i c_i = Σ_i d_i²/(n-1)²
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5, models))
    y = rng.normal(size=5)
    c = point_contribution(x, y, [str(i) for i in range(models)], SQUARED_ERROR)
    ens = x.mean(axis=1, keepdims=True)
    e, d, n = ens - y[:, None], x - ens, models
    assert np.allclose(c.per_round, d**2 / (n - 1) ** 2 - 2 * e * d / (n - 1), rtol=1e-9, atol=1e-12)
    assert np.allclose(c.per_round.sum(axis=1), (d**2).sum(axis=1) / (n - 1) ** 2, rtol=1e-9, atol=1e-12)


def test_direction_is_respected() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=20)
    ids = ["a", "b", "c", "d"]
    lower = point_contribution(x, y, ids, SQUARED_ERROR)
    higher = point_contribution(x, y, ids, PointRule("neg", lambda p, t: -((p - t) ** 2), True))
    assert np.allclose(lower.per_round, higher.per_round)
    assert np.allclose(lower.ensemble_score, -higher.ensemble_score)


def test_a_model_equal_to_the_others_mean_adds_nothing_to_the_squared_error() -> None:
    # x_2 = mean of x_0, x_1 → E = x_2 and E without model 2 = E: no effect
    x = np.array([[1.0, 3.0, 2.0], [0.0, -4.0, -2.0]])
    c = point_contribution(x, [5.0, 1.0], ["a", "b", "mean"], SQUARED_ERROR)
    assert c.per_round[:, 2].tolist() == [0.0, 0.0]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 40))
def test_the_column_order_does_not_change_a_bit(seed: int, models: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, models)) * 10.0 ** rng.integers(-8, 8, size=models)
    x[rng.random(x.shape) < 0.2] = NAN
    y = rng.normal(size=30)
    ids = [f"m{i}" for i in range(models)]
    order = rng.permutation(models)
    shuffled = [ids[k] for k in order]
    one = point_contribution(x, y, ids, SQUARED_ERROR)
    two = point_contribution(x[:, order], y, shuffled, SQUARED_ERROR)
    assert one.as_dict() == two.as_dict()  # bit for bit: the emission cannot depend on column order
    # the log score goes through numpy's vectorised exp/log, exact to an ulp or two whatever the lane
    one_log, two_log = log_score_contribution(np.abs(x), ids), log_score_contribution(np.abs(x[:, order]), shuffled)
    for m, value in one_log.as_dict().items():
        other = two_log.as_dict()[m]
        assert (value is None and other is None) or value == pytest.approx(other, rel=1e-13, abs=1e-13)


def test_empty_windows() -> None:
    assert point_contribution(np.zeros((0, 2)), np.zeros(0), ["a", "b"]).as_dict() == {"a": None, "b": None}
    assert point_contribution(np.zeros((3, 0)), np.zeros(3), []).as_dict() == {}
    assert log_score_contribution(np.zeros((3, 0)), []).as_dict() == {}
    assert crps_mixture_contribution(np.zeros((2, 0)), np.zeros((2, 0, 0)), []).as_dict() == {}


# -- log score ------------------------------------------------------------------------------------


def test_log_score_hand_computed() -> None:
    # f = (0.4, 0.1): E = 0.25; without a: 0.1 → c_a = ln(0.25/0.1); without b: 0.4 → c_b = ln(0.25/0.4)
    c = log_score_contribution(-np.log([[0.4, 0.1]]), ["a", "b"])
    assert c.per_round[0, 0] == pytest.approx(math.log(2.5))
    assert c.per_round[0, 1] == pytest.approx(math.log(0.625))
    assert c.ensemble_score[0] == pytest.approx(-math.log(0.25))
    assert not c.higher_is_better


def log_brute_force(s: np.ndarray) -> np.ndarray:
    out = np.full(s.shape, NAN)
    for t in range(s.shape[0]):
        present = [j for j in range(s.shape[1]) if not np.isnan(s[t, j])]
        if len(present) < 2:
            continue
        full = -(logsumexp(-s[t, present]) - math.log(len(present)))
        for i in present:
            rest = [j for j in present if j != i]
            without = -(logsumexp(-s[t, rest]) - math.log(len(rest)))
            out[t, i] = without - full
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 7).flatmap(
        lambda m: arrays(
            np.float64, st.tuples(st.integers(1, 6), st.just(m)), elements=st.floats(-50, 1500) | st.just(NAN)
        )
    )
)
def test_log_score_closed_form_equals_brute_force_even_for_tiny_densities(s: np.ndarray) -> None:
    c = log_score_contribution(s, [f"m{i}" for i in range(s.shape[1])], max_log_score=None)
    assert np.allclose(c.per_round, log_brute_force(s), rtol=1e-9, atol=1e-9, equal_nan=True)


def test_log_score_cap_keeps_a_zero_density_finite() -> None:
    s = np.array([[math.inf, 1.0, math.inf]])
    capped = log_score_contribution(s, ["a", "b", "c"])
    assert np.isfinite(capped.per_round).all()
    assert capped.per_round[0, 1] == pytest.approx(log_brute_force(np.minimum(s, 700.0))[0, 1])
    with pytest.raises(ValueError, match="-inf"):
        log_score_contribution([[-math.inf, 0.0]], ["a", "b"])


# -- CRPS of normal mixtures ----------------------------------------------------------------------


def test_crps_mixture_contribution_equals_the_closed_form_crps_of_each_one_out_mixture() -> None:
    rng = np.random.default_rng(7)
    rounds, models, leaves = 6, 4, 2
    loc = rng.normal(size=(rounds, models, leaves))
    scale = rng.uniform(0.5, 2.0, size=(rounds, models, leaves))
    weight = np.full((rounds, models, leaves), 0.5)
    weight[:, 0] = [1.0, 0.0]  # model 0: one normal (second leaf padded)
    loc[2, 3] = scale[2, 3] = weight[2, 3] = NAN  # model 3 absent in round 2
    y = rng.normal(size=rounds)
    a, b = normal_mixture_energy(y, loc, scale, weight)
    c = crps_mixture_contribution(a, b, ["m0", "m1", "m2", "m3"])

    def crps_of(t: int, members: list[int]) -> float:
        mu = loc[t, members].ravel()
        sd = scale[t, members].ravel()
        w = weight[t, members].ravel() / len(members)
        keep = w > 0
        return float(crps_normal_mixture(y[t], mu[keep], sd[keep], w[keep]))

    for t in range(rounds):
        present = [i for i in range(models) if not np.isnan(a[t, i])]
        assert c.ensemble_score[t] == pytest.approx(crps_of(t, present), rel=1e-10)
        for i in present:
            effect = crps_of(t, [j for j in present if j != i]) - crps_of(t, present)
            assert c.per_round[t, i] == pytest.approx(effect, rel=1e-9, abs=1e-12)
    assert np.isnan(c.per_round[2, 3])


def test_crps_mixture_contribution_shape_errors() -> None:
    with pytest.raises(ValueError, match="abs_difference"):
        crps_mixture_contribution(np.zeros((2, 3)), np.zeros((2, 3, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="share a shape"):
        normal_mixture_energy([0.0], np.zeros((1, 2, 1)), np.ones((1, 2, 2)), np.ones((1, 2, 1)))


# -- contribution-weighted emission ---------------------------------------------------------------


def people(*pairs: tuple[str, str]) -> dict[str, Participant]:
    return {m: Participant(m, m, p, p.title(), f"wallet-{p}") for m, p in pairs}


def test_shares_are_proportional_to_positive_contribution() -> None:
    emission = contribution_weighted_emission(
        {"a": 3.0, "b": 1.0, "c": -2.0, "d": None},
        people(("a", "alice"), ("b", "bob"), ("c", "carol"), ("d", "dave")),
    )
    assert [(r.model_id, r.reward_pct) for r in emission.model_rewards] == [
        ("a", 750_000_000),
        ("b", 250_000_000),
        ("c", 0),
        ("d", 0),
    ]
    assert emission.total == FRAC64_TOTAL
    assert [(r.cruncher_id, r.wallet, r.reward_pct) for r in emission.cruncher_rewards][:2] == [
        ("alice", "wallet-alice", 750_000_000),
        ("bob", "wallet-bob", 250_000_000),
    ]


def test_rewards_are_keyed_by_participant() -> None:
    emission = contribution_weighted_emission({"a": 1.0, "a2": 1.0, "b": 2.0}, people(("a", "alice"), ("a2", "alice")))
    by_player = {r.cruncher_id: (r.model_ids, r.reward_pct) for r in emission.cruncher_rewards}
    assert by_player == {"b": (("b",), 500_000_000), "alice": (("a", "a2"), 500_000_000)}  # b pays to itself


def test_no_positive_contribution_splits_equally() -> None:
    emission = contribution_weighted_emission({"b": -1.0, "a": 0.0, "c": None}, {})
    # the leftover unit goes to the first slot in the order given (the ranking's), not by id
    assert [(r.model_id, r.reward_pct) for r in emission.model_rewards] == [
        ("b", 333_333_334),
        ("a", 333_333_333),
        ("c", 333_333_333),
    ]
    single = contribution_weighted_emission({"solo": None}, {})
    assert [r.reward_pct for r in single.model_rewards] == [FRAC64_TOTAL]
    assert contribution_weighted_emission({}, {}).total == 0


def test_a_slot_weighs_its_representative_and_splits_equally() -> None:
    slots = [Slot(("a", "copy"), "a"), Slot(("b",), "b")]
    emission = contribution_weighted_emission({"a": 3.0, "b": 1.0}, {}, slots)
    assert [(r.model_id, r.rank, r.reward_pct) for r in emission.model_rewards] == [
        ("a", 1, 375_000_000),
        ("copy", 1, 375_000_000),
        ("b", 2, 250_000_000),
    ]


def test_emission_errors() -> None:
    with pytest.raises(ValueError, match="not finite"):
        contribution_weighted_emission({"a": math.nan}, {})
    with pytest.raises(ValueError, match="not finite"):
        contribution_weighted_emission({"a": math.inf}, {})
    with pytest.raises(ValueError, match="representative"):
        contribution_weighted_emission({"a": 1.0}, {}, [Slot(("b",), "b")])
    with pytest.raises(ValueError, match="two slots"):
        contribution_weighted_emission({"a": 1.0, "b": 1.0}, {}, [Slot(("a",), "a"), Slot(("a", "b"), "b")])
    with pytest.raises(ValueError, match="representative among them"):
        Slot(("a",), "b")


@settings(max_examples=300)
@given(st.dictionaries(st.text(min_size=1, max_size=4), st.floats(-1e6, 1e6) | st.none(), min_size=1, max_size=40))
def test_shares_sum_to_one_billion_and_none_is_negative(contributions: dict[str, float | None]) -> None:
    emission = contribution_weighted_emission(contributions, {})
    shares = [r.reward_pct for r in emission.model_rewards]
    assert sum(shares) == FRAC64_TOTAL == emission.total
    assert min(shares) >= 0
    positive = {m for m, v in contributions.items() if v is not None and v > 0}
    if positive:  # only positive contributions are paid, and a larger one never gets less
        assert all(r.reward_pct == 0 for r in emission.model_rewards if r.model_id not in positive)
        paid = sorted(
            (float(contributions[r.model_id] or 0.0), r.reward_pct)
            for r in emission.model_rewards
            if r.model_id in positive
        )
        assert all(a[1] <= b[1] for a, b in zip(paid, paid[1:], strict=False) if a[0] < b[0])
