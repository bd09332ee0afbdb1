"""Leaderboard ranking and the window score."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.domain.ranking import default_rank
from coordinator_core.domain.windows import window_score

KEY = "score_recent"


def e(model_id: str, score: float | None, scored: int = 10) -> dict:
    return {"model_id": model_id, "scored_count": scored, "metrics": {KEY: score}}


def order(ranked: list[dict]) -> list[str]:
    return [r["model_id"] for r in ranked]


def test_desc_puts_the_highest_score_first() -> None:
    ranked = default_rank([e("a", -30.0), e("b", -5.0), e("c", -12.5)], KEY, "desc")
    assert order(ranked) == ["b", "c", "a"]
    assert [r["rank"] for r in ranked] == [1, 2, 3]


def test_asc_puts_the_lowest_score_first() -> None:
    ranked = default_rank([e("a", -30.0), e("b", -5.0), e("c", -12.5)], KEY, "asc")
    assert order(ranked) == ["a", "c", "b"]
    assert [r["rank"] for r in ranked] == [1, 2, 3]


def test_missing_scores_rank_last_in_both_directions() -> None:
    entries = [
        e("none", None),
        e("low", -100.0),
        {"model_id": "no-metric", "scored_count": 50, "metrics": {}},
        {"model_id": "no-metrics-at-all", "scored_count": 50},
        e("nan", float("nan")),
        e("high", 100.0),
    ]
    # missing ones tie: more scored predictions first (50 before 10), then model_id
    missing_sorted = ["no-metric", "no-metrics-at-all", "nan", "none"]
    assert order(default_rank(entries, KEY, "desc")) == ["high", "low", *missing_sorted]
    assert order(default_rank(entries, KEY, "asc")) == ["low", "high", *missing_sorted]


def test_ties_broken_by_scored_count_desc_then_model_id_asc() -> None:
    entries = [e("m3", 1.0, scored=5), e("m1", 1.0, scored=5), e("m2", 1.0, scored=9), e("m0", 0.5, scored=99)]
    assert order(default_rank(entries, KEY, "desc")) == ["m2", "m1", "m3", "m0"]
    assert order(default_rank(entries, KEY, "asc")) == ["m0", "m2", "m1", "m3"]


def test_missing_scored_count_counts_as_zero() -> None:
    entries = [{"model_id": "b", "metrics": {KEY: 1.0}}, e("a", 1.0, scored=0), e("c", 1.0, scored=1)]
    assert order(default_rank(entries, KEY, "desc")) == ["c", "a", "b"]


def test_rank_returns_new_dicts_and_keeps_fields() -> None:
    entries = [e("x", 1.0), e("y", 2.0)]
    entries[0]["extra"] = "kept"
    ranked = default_rank(entries, KEY, "desc")
    assert "rank" not in entries[0] and "rank" not in entries[1]
    assert ranked[1] == {**entries[0], "rank": 2}


def test_rank_of_nothing_is_empty() -> None:
    assert default_rank([], KEY, "desc") == []


metric = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.sampled_from([-1.0, 0.0, 1.0, 2.5]),  # a small pool so that ties happen
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(metric, st.integers(min_value=0, max_value=3)), min_size=1, max_size=40),
    st.sampled_from(["desc", "asc"]),
    st.randoms(use_true_random=False),
)
def test_ranking_is_a_deterministic_total_order(rows, direction: str, rnd: random.Random) -> None:
    entries = [e(f"m{i:02d}", value, scored) for i, (value, scored) in enumerate(rows)]
    ranked = default_rank(entries, KEY, direction)
    shuffled = entries[:]
    rnd.shuffle(shuffled)
    assert order(default_rank(shuffled, KEY, direction)) == order(ranked)
    assert [r["rank"] for r in ranked] == list(range(1, len(entries) + 1))
    assert sorted(order(ranked)) == sorted(order(entries))

    # the order itself: present scores before missing ones, sorted in the asked direction
    def present(r: dict) -> bool:
        v = r["metrics"][KEY]
        return v is not None and math.isfinite(v)

    flags = [present(r) for r in ranked]
    assert flags == sorted(flags, reverse=True)
    values = [r["metrics"][KEY] for r in ranked if present(r)]
    assert values == sorted(values, reverse=direction == "desc")


def test_window_score() -> None:
    assert window_score(0, 0) is None
    assert window_score(-50.0, 0) is None
    assert window_score(10.0, 4) == 2.5
    assert window_score(-3.0, 2) == -1.5
