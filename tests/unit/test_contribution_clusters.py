"""Clone clusters: lead-lag correlation, connected components, one emission slot per cluster."""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from coordinator_core.contribution.clusters import (
    Cluster,
    Clusters,
    PairEvidence,
    cluster_capped_emission,
    emission_slots,
    find_clusters,
    similarity,
    union_clusters,
)
from coordinator_core.emission import FRAC64_TOTAL, build_emission
from tests.unit.contribution_worlds import (
    EXAMPLES,
    ROOT,
    WINDOW,
    World,
    closes,
    contribution_rewards,
    example_predictions,
    example_streams,
    honest_world,
    lagged,
    tier_rewards,
)

NAN = math.nan


# -- similarity, hand-computed --------------------------------------------------------------------


def test_affine_copy_and_lagged_copy_have_correlation_one() -> None:
    a = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 7.0])
    x = np.column_stack([a, 2 * a + 1, lagged(a, 1), -a])
    sim = similarity(x, ["a", "affine", "lag1", "neg"], max_lag=2, min_overlap=3)
    assert sim.correlation[0, 1] == pytest.approx(1.0) and sim.lag[0, 1] == 0 and sim.overlap[0, 1] == 6
    # lag1[t + 1] = a[t] on t = 0..4: b follows a by one round
    assert sim.correlation[0, 2] == pytest.approx(1.0) and sim.lag[0, 2] == 1 and sim.overlap[0, 2] == 5
    assert sim.lag[2, 0] == -1 and sim.correlation[2, 0] == sim.correlation[0, 2]
    assert np.isnan(sim.correlation).diagonal().all()
    # a negated copy: best over lags is below 0 at lag 0... and is never an edge
    clusters = find_clusters(x, ["a", "affine", "lag1", "neg"], max_lag=2, min_overlap=3)
    assert [c.members for c in clusters.clusters] == [("a", "affine", "lag1")]
    assert clusters.cluster_of("neg") is None


def test_pearson_over_the_shared_rounds_only_hand_computed() -> None:
    a = np.array([1.0, 2.0, NAN, 4.0, 0.0])
    b = np.array([2.0, NAN, 9.0, 5.0, 1.0])  # shared rounds 0, 3, 4: (1, 2), (4, 5), (0, 1) → exactly linear
    c = np.array([3.0, 1.0, 0.0, 2.0, 2.0])  # shared with a at 0, 1, 3, 4
    sim = similarity(np.column_stack([a, b, c]), ["a", "b", "c"], max_lag=0, min_overlap=3)
    assert sim.correlation[0, 1] == pytest.approx(1.0) and sim.overlap[0, 1] == 3
    expected = np.corrcoef([1.0, 2.0, 4.0, 0.0], [3.0, 1.0, 2.0, 2.0])[0, 1]
    assert sim.correlation[0, 2] == pytest.approx(expected) and sim.overlap[0, 2] == 4
    short = similarity(np.column_stack([a, b, c]), ["a", "b", "c"], max_lag=0, min_overlap=4)
    assert np.isnan(short.correlation[0, 1]) and short.overlap[0, 1] == 0


def brute_similarity(x: np.ndarray, max_lag: int, min_overlap: int) -> dict[tuple[int, int, int], float]:
    """``{(i, j, k): corr(x_i[t], x_j[t + k])}`` over the shared rounds, pair by pair and lag by lag."""
    rounds, models = x.shape
    out = {}
    for i, j in itertools.permutations(range(models), 2):
        for k in range(-max_lag, max_lag + 1):
            if abs(k) >= rounds:
                continue
            u = x[max(0, -k) : rounds - max(0, k), i]
            v = x[max(0, k) : rounds - max(0, -k), j]
            ok = ~np.isnan(u) & ~np.isnan(v)
            if ok.sum() < min_overlap or np.ptp(u[ok]) == 0 or np.ptp(v[ok]) == 0:
                continue
            # Pearson does not change with the scale: each series divided by its largest magnitude
            # first, so that the products of a tiny series (7e-160: squares below the normal
            # range) keep their precision
            a, b = u[ok] / np.max(np.abs(u[ok])), v[ok] / np.max(np.abs(v[ok]))
            with np.errstate(all="ignore"):
                out[i, j, k] = float(np.corrcoef(a, b)[0, 1])
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(2, 6).flatmap(
        lambda m: arrays(
            np.float64,
            st.tuples(st.integers(4, 30), st.just(m)),
            elements=st.sampled_from([NAN, 0.0, 1.0, -2.0]) | st.floats(-5, 5, allow_subnormal=False),
        )
    ),
    st.integers(0, 3),
)
@example(x=np.array([[7.19545285e-160, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]), max_lag=0)  # a tiny scaled copy
def test_similarity_equals_pairwise_pearson_over_every_lag(x: np.ndarray, max_lag: int) -> None:
    sim = similarity(x, [str(i) for i in range(x.shape[1])], max_lag=max_lag, min_overlap=3)
    brute = brute_similarity(x, max_lag, 3)
    for i, j in itertools.permutations(range(x.shape[1]), 2):
        candidates = {k: r for (a, b, k), r in brute.items() if (a, b) == (i, j)}
        u, v = x[~np.isnan(x[:, i]), i], x[~np.isnan(x[:, j]), j]
        if len(u) and len(v) and np.ptp(u) == 0 and np.ptp(v) == 0:  # two constant streams
            identical = u[0] == v[0] and brute_overlap(x, i, j, 0) >= 3
            assert (
                (sim.correlation[i, j] == 1.0 and sim.lag[i, j] == 0) if identical else np.isnan(sim.correlation[i, j])
            )
            continue
        if np.isnan(sim.correlation[i, j]):
            # undefined for the matrix form: at every lag a stream is nearly constant on the overlap
            # (variance below 1e-9 of the stream's own over all its rounds)
            assert all(nearly_flat(x, i, j, k) for k in candidates)
            continue
        chosen = int(sim.lag[i, j])
        assert sim.correlation[i, j] == pytest.approx(candidates[chosen], abs=1e-6)  # the named lag's value
        assert sim.overlap[i, j] == brute_overlap(x, i, j, chosen)
        clear = [r for k, r in candidates.items() if not nearly_flat(x, i, j, k)]
        assert sim.correlation[i, j] >= max(clear, default=-1.0) - 1e-6  # and it is the best of the lags


def nearly_flat(x: np.ndarray, i: int, j: int, k: int) -> bool:
    rounds = x.shape[0]
    u = x[max(0, -k) : rounds - max(0, k), i]
    v = x[max(0, k) : rounds - max(0, -k), j]
    ok = ~np.isnan(u) & ~np.isnan(v)
    return bool(np.var(u[ok]) <= 1e-8 * np.nanvar(x[:, i]) or np.var(v[ok]) <= 1e-8 * np.nanvar(x[:, j]))


def brute_overlap(x: np.ndarray, i: int, j: int, k: int) -> int:
    rounds = x.shape[0]
    u = x[max(0, -k) : rounds - max(0, k), i]
    v = x[max(0, k) : rounds - max(0, -k), j]
    return int((~np.isnan(u) & ~np.isnan(v)).sum())


def test_constant_streams() -> None:
    zeros, ones = np.zeros(10), np.ones(10)
    moving = np.arange(10.0)
    x = np.column_stack([zeros, zeros.copy(), ones, moving])
    sim = similarity(x, ["z1", "z2", "one", "moving"], min_overlap=5)
    assert sim.correlation[0, 1] == 1.0 and sim.lag[0, 1] == 0 and sim.overlap[0, 1] == 10
    assert np.isnan(sim.correlation[0, 2]) and np.isnan(sim.correlation[0, 3])
    clusters = find_clusters(x, ["z1", "z2", "one", "moving"], min_overlap=5)
    assert [c.members for c in clusters.clusters] == [("z1", "z2")]


def test_a_chain_of_near_copies_is_one_cluster() -> None:
    rng = np.random.default_rng(11)
    a = rng.normal(size=2000)
    b = a + 0.08 * rng.normal(size=2000)
    c = b + 0.08 * rng.normal(size=2000)
    x = np.column_stack([a, b, c, rng.normal(size=2000)])
    sim = similarity(x, ["a", "b", "c", "d"], max_lag=0)
    assert sim.correlation[0, 1] >= 0.995 and sim.correlation[1, 2] >= 0.995 > sim.correlation[0, 2]
    clusters = find_clusters(x, ["a", "b", "c", "d"], threshold=0.995, max_lag=0)
    assert len(clusters.clusters) == 1
    cluster = clusters.clusters[0]
    assert cluster.members == ("a", "b", "c")
    assert {(p.a, p.b) for p in cluster.pairs} == {("a", "b"), ("b", "c")}
    assert clusters.pairs == cluster.pairs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": [1.0, 2.0]}, "rounds x models"),
        ({"predictions": [[1.0, 2.0]], "model_ids": ["a"]}, "rounds x models"),
        ({"model_ids": ["a", "a"]}, "distinct"),
        ({"predictions": [[1.0, math.inf]]}, "infinite"),
        ({"max_lag": -1}, "max_lag"),
        ({"min_overlap": 2}, "min_overlap"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_find_clusters_errors(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"predictions": [[1.0, 2.0]], "model_ids": ["a", "b"], **kwargs}
    with pytest.raises(ValueError, match=message):
        find_clusters(args.pop("predictions"), args.pop("model_ids"), **args)


def test_fewer_rounds_than_the_lags_or_the_overlap_find_nothing() -> None:
    x = np.array([[1.0, 1.0], [2.0, 2.0]])
    assert find_clusters(x, ["a", "b"], max_lag=6, min_overlap=3).clusters == ()
    assert find_clusters(np.zeros((0, 2)), ["a", "b"]).clusters == ()


def test_union_of_clusters_per_config() -> None:
    one = Clusters(("a", "b", "c"), (Cluster(("a", "b"), (PairEvidence("a", "b", 1.0, 0, 100),)),))
    two = Clusters(("b", "c", "d"), (Cluster(("c", "b"), (PairEvidence("c", "b", 0.995, -2, 90),)),))
    merged = union_clusters([one, two])
    assert merged.model_ids == ("a", "b", "c", "d")
    assert [c.members for c in merged.clusters] == [("a", "b", "c")]
    assert len(merged.pairs) == 2
    assert union_clusters([]).clusters == ()


# -- leaders and slots ----------------------------------------------------------------------------


def clusters_with(*pairs: PairEvidence, ids: tuple[str, ...]) -> Clusters:
    from coordinator_core.contribution.clusters import _components

    return Clusters(ids, _components(ids, list(pairs)))


def test_followers_and_leaders() -> None:
    p = PairEvidence("orig", "copy", 1.0, 2, 100)
    assert p.follower == "copy" and PairEvidence("copy", "orig", 1.0, -2, 100).follower == "copy"
    assert PairEvidence("a", "b", 1.0, 0, 100).follower is None
    cluster = Cluster(("orig", "copy", "twin"), (p, PairEvidence("orig", "twin", 1.0, 0, 100)))
    assert cluster.followers == {"copy"} and cluster.leaders == ("orig", "twin")
    ring = Cluster(("a", "b"), (PairEvidence("a", "b", 1.0, 1, 50), PairEvidence("b", "a", 1.0, 1, 50)))
    assert ring.leaders == ("a", "b")  # each follows the other: all lead
    assert Clusters(("orig", "copy", "twin", "x"), (cluster,)).followers == {"copy"}


def test_a_cluster_takes_its_best_leaders_place_even_when_a_follower_ranks_higher() -> None:
    clusters = clusters_with(PairEvidence("orig", "copy", 1.0, 1, 100), ids=("orig", "copy", "x", "y"))
    slots = emission_slots(clusters, ["copy", "x", "orig", "y"])  # the lagged copy got lucky
    assert [(s.members, s.representative) for s in slots] == [
        (("x",), "x"),
        (("copy", "orig"), "orig"),
        (("y",), "y"),
    ]
    assert emission_slots(clusters, ["copy", "x"])[0].representative == "copy"  # its leader is not ranked
    with pytest.raises(ValueError, match="twice"):
        emission_slots(clusters, ["x", "x"])


def test_cluster_capped_emission_hand_computed() -> None:
    # 4 ranked models, a and twin a2 share a slot: 3 slots get 50 / 25 / 25 %, the pair's 50 % is split
    clusters = clusters_with(PairEvidence("a", "a2", 1.0, 0, 100), ids=("a", "a2", "b", "c"))
    ranked = [("a", "alice", "w-a", 1), ("b", "bob", None, 2), ("a2", "mallory", "w-m", 3), ("c", "carol", None, 4)]
    emission = cluster_capped_emission(ranked, clusters)
    assert [(r.model_id, r.rank, r.reward_pct) for r in emission.model_rewards] == [
        ("a", 1, 250_000_000),
        ("a2", 1, 250_000_000),
        ("b", 2, 250_000_000),
        ("c", 3, 250_000_000),
    ]
    assert {r.cruncher_id: r.reward_pct for r in emission.cruncher_rewards} == dict.fromkeys(
        ["alice", "mallory", "bob", "carol"], 250_000_000
    )
    # without the cluster the twin is a slot of its own and the pair takes 43.75 + 18.75 = 62.5 %
    plain = {r.model_id: r.reward_pct for r in build_emission(ranked).model_rewards}
    assert plain["a"] + plain["a2"] == 625_000_000 > 500_000_000


def test_an_odd_share_is_split_to_the_unit() -> None:
    clusters = clusters_with(
        PairEvidence("a", "b", 1.0, 0, 100), PairEvidence("a", "c", 1.0, 0, 100), ids=("a", "b", "c", "d")
    )
    ranked = [(m, m, None, i) for i, m in enumerate("abcd", start=1)]
    shares = [r.reward_pct for r in cluster_capped_emission(ranked, clusters).model_rewards]
    assert shares == [208_333_334, 208_333_333, 208_333_333, 375_000_000]  # 62.5 % / 3, and 37.5 %
    assert sum(shares) == FRAC64_TOTAL


@settings(max_examples=60)
@given(st.integers(0, 25))
def test_without_clusters_the_capped_emission_is_build_emission(count: int) -> None:
    ranked = [(f"m{i}", f"p{i % 3}", None, i + 1) for i in range(count)]
    ours = cluster_capped_emission(ranked, Clusters(tuple(m for m, *_ in ranked), ()))
    assert [r.reward_pct for r in ours.model_rewards] == [r.reward_pct for r in build_emission(ranked).model_rewards]
    assert [(r.cruncher_id, r.reward_pct) for r in ours.cruncher_rewards] == [
        (r.cruncher_id, r.reward_pct) for r in build_emission(ranked).cruncher_rewards
    ]


@settings(max_examples=200)
@given(st.integers(1, 30), st.data())
def test_any_clustering_pays_exactly_one_billion_and_splits_a_slot_evenly(count: int, data: st.DataObject) -> None:
    ids = [f"m{i}" for i in range(count)]
    labels = data.draw(st.lists(st.integers(0, max(count // 2, 1)), min_size=count, max_size=count))
    lags = data.draw(st.lists(st.integers(-3, 3), min_size=count, max_size=count))
    pairs = [
        PairEvidence(ids[i], ids[j], 1.0, lags[j], 100)
        for i in range(count)
        for j in range(i + 1, count)
        if labels[i] == labels[j] and all(labels[k] != labels[i] for k in range(i + 1, j))
    ]  # a chain inside every label
    clusters = clusters_with(*pairs, ids=tuple(ids))
    order = data.draw(st.permutations(ids))
    ranked = [(m, f"p{int(m[1:]) % 4}", None, r) for r, m in enumerate(order, start=1)]
    emission = cluster_capped_emission(ranked, clusters)
    shares = {r.model_id: r.reward_pct for r in emission.model_rewards}
    assert sum(shares.values()) == FRAC64_TOTAL == emission.total and min(shares.values()) >= 0
    assert set(shares) == set(ids)
    slots = emission_slots(clusters, order)
    assert len(slots) == len({labels[i] for i in range(count) if clusters.cluster_of(ids[i])}) + sum(
        clusters.cluster_of(m) is None for m in ids
    )
    for slot in slots:
        parts = [shares[m] for m in slot.members]
        assert max(parts) - min(parts) <= 1
        cluster = clusters.cluster_of(slot.representative)
        assert cluster is None or slot.representative in cluster.leaders  # every member is ranked here


# -- property tests over honest models and their copies -------------------------------------------

worlds = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "models": st.integers(2, 14),
        "rounds": st.integers(100, 260),
        "persistence": st.floats(0.0, 0.8),
        "missing": st.floats(0.0, 0.1),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds, st.integers(0, 6), st.data())
def test_a_copy_never_increases_the_pairs_reward(world_args: dict[str, Any], k: int, data: st.DataObject) -> None:
    alone = honest_world(**world_args)
    original = data.draw(st.sampled_from(alone.model_ids))
    copy = lagged(alone.predictions[:, alone.model_ids.index(original)], k)  # k = 0: an exact copy
    with_copy = alone.with_column("copy", copy)

    before = find_clusters(alone.predictions, alone.model_ids)
    after = find_clusters(with_copy.predictions, with_copy.model_ids)
    assert before.clusters == ()  # honest models are not clustered
    assert [set(c.members) for c in after.clusters] == [{original, "copy"}]  # the copy is caught, nothing else
    (pair,) = after.clusters[0].pairs
    assert (pair.a, pair.b, pair.lag) == (original, "copy", k) and pair.correlation == pytest.approx(1.0)

    for rewards in (tier_rewards, contribution_rewards):
        base, copied = rewards(alone, before), rewards(with_copy, after)
        assert copied[original] + copied["copy"] <= base[original]
        assert sum(copied.values()) == sum(base.values()) == FRAC64_TOTAL
        assert min(copied.values()) >= 0
        others = set(alone.model_ids) - {original}
        assert {m: copied[m] for m in others} == {m: base[m] for m in others}  # nobody else is affected


def test_without_clusters_a_copy_does_gain() -> None:
    """The contrast: with one slot per model, an exact copy of a model takes an extra tier share."""
    alone = honest_world(5, models=4, rounds=168)
    original = alone.model_ids[0]
    with_copy = alone.with_column("copy", alone.predictions[:, 0].copy())
    none = Clusters(tuple(with_copy.model_ids), ())
    copied = tier_rewards(with_copy, none)
    base = tier_rewards(alone, Clusters(tuple(alone.model_ids), ()))
    assert copied[original] + copied["copy"] > base[original]


@pytest.mark.parametrize(("noise", "seeds"), [((0.5, 2.0), 300), ((0.2, 0.5), 150)])
def test_honest_models_are_not_clustered_over_many_seeds(noise: tuple[float, float], seeds: int) -> None:
    """0 clustered pairs among 20 honest models per world (190 pairs), 72 to 168 rounds, persistence
    0 to 0.8, 5 % missing; the true correlation of two honest models is at most 1 / (1 + noise[0]²)
    (0.8 and 0.96)."""
    clustered = 0
    for seed in range(seeds):
        rounds = 72 + seed % 97
        world = honest_world(seed, models=20, rounds=rounds, persistence=(seed % 9) / 10, noise=noise)
        clustered += len(find_clusters(world.predictions, world.model_ids).pairs)
    assert clustered == 0


# -- the shipped data and the example models ------------------------------------------------------


def load_example(name: str) -> Any:
    path = ROOT / "examples" / "models" / name / "main.py"
    spec = importlib.util.spec_from_file_location(f"contribution_example_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from tracker import TrackerBase

    (cls,) = [
        v for v in vars(module).values() if isinstance(v, type) and issubclass(v, TrackerBase) and v is not TrackerBase
    ]
    return cls()


def test_the_reimplemented_example_models_answer_as_their_main_py(monkeypatch: pytest.MonkeyPatch) -> None:
    asof, close = closes()
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    models = {name: load_example(name) for name in EXAMPLES}
    for i in list(range(WINDOW - 1, len(close), 37)) + [WINDOW - 1 + 11 + 40 * j for j in range(5)]:
        candles = [{"ts": int(asof[j]) - 3600, "close": float(close[j])} for j in range(i - WINDOW + 1, i + 1)]
        data = {"symbol": "BTC", "subject": "BTC", "asof_ts": int(asof[i]), "granularity": "1h", "candles": candles}
        for horizon in (3600, 14400):
            expected = example_predictions(i, horizon)
            for name, model in models.items():
                model.tick(data)
                slept.clear()
                try:
                    answer = model.predict("BTC", horizon, 60)["value"]
                except RuntimeError:
                    answer = None
                if not isinstance(answer, float) or slept:  # a string, or longer than the 1 s deadline
                    answer = None
                assert (answer is None) == (expected[name] is None), (name, i, horizon)
                if answer is not None:
                    assert answer == pytest.approx(expected[name], rel=1e-12, abs=1e-15), (name, i, horizon)


@pytest.mark.parametrize("horizon", [3600, 14400])
def test_the_example_models_are_not_clustered_on_the_shipped_data(horizon: int) -> None:
    world = example_streams(horizon)
    rounds = len(world.realized)
    windows = [(0, rounds)]
    windows += [(s, s + 168) for s in range(0, rounds - 168 + 1, 24)]  # weekly windows
    windows += [(s, s + 96) for s in range(0, rounds - 96 + 1, 8)]  # 96 rounds: about 83 shared after failures
    highest = 0.0
    for start, end in windows:
        sim = similarity(world.predictions[start:end], world.model_ids)
        defined = ~np.isnan(sim.correlation)
        assert defined.sum() == 6 * 5, (start, end)  # every pair has the minimum overlap: the check is not vacuous
        highest = max(highest, float(sim.correlation[defined].max()))
        assert find_clusters(world.predictions[start:end], world.model_ids).clusters == (), (start, end)
    assert 0.9 < highest < 0.99  # close (trend followers on the same closes), never above the threshold
    both = union_clusters([find_clusters(example_streams(h).predictions, EXAMPLES) for h in (3600, 14400)])
    assert both.clusters == ()


@pytest.mark.parametrize("k", [1, 3, 6])
def test_copies_of_the_example_models_are_caught_on_the_shipped_data(k: int) -> None:
    world = example_streams(3600)
    week = slice(1000, 1168)
    x = world.predictions[week]
    momentum, reversion = x[:, 0], x[:, 1]
    found = find_clusters(np.column_stack([x, momentum, lagged(reversion, k)]), [*world.model_ids, "twin", "follower"])
    assert [c.members for c in found.clusters] == [("momentum", "twin"), ("mean_reversion", "follower")]
    twin, follower = (c.pairs[0] for c in found.clusters)
    assert twin.lag == 0 and twin.correlation == pytest.approx(1.0) and twin.overlap == 168
    assert follower.lag == k and follower.follower == "follower" and follower.overlap == 168 - k
    assert found.clusters[1].leaders == ("mean_reversion",)


def test_example_worlds_rewards_with_a_copy() -> None:
    world = example_streams(3600)
    week = slice(2000, 2168)
    alone = World(world.predictions[week], world.realized[week], list(world.model_ids))
    for k in (0, 2):
        with_copy = alone.with_column("copycat", lagged(alone.predictions[:, 0], k))
        before, after = (
            find_clusters(alone.predictions, alone.model_ids),
            find_clusters(with_copy.predictions, with_copy.model_ids),
        )
        for rewards in (tier_rewards, contribution_rewards):
            base, copied = rewards(alone, before), rewards(with_copy, after)
            assert copied["momentum"] + copied["copycat"] <= base["momentum"]
            assert sum(copied.values()) == FRAC64_TOTAL


def test_the_shipped_dataset_is_there() -> None:
    assert Path(ROOT / "coordinator_core" / "data" / "btc_usd_1h.csv").exists()
    assert example_streams(3600).predictions.shape == (2760, 6)
