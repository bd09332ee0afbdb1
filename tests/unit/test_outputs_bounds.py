"""Bounds on any raw model output: depth, size, strings; iterative, and never a ``repr``."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.errors import ValidationError
from coordinator_core.outputs import DEFAULT_BOUNDS, Bounds, bounds_reason, check_bounds


def nested(depth: int, key: str = "a") -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth - 1):
        node[key] = {}
        node = node[key]
    return root


class Loud(dict):
    """A dict whose repr/str fail: nothing may render a model's output."""

    def __repr__(self) -> str:
        raise AssertionError("repr called on a model output")

    __str__ = __repr__


class LoudList(list):
    def __repr__(self) -> str:
        raise AssertionError("repr called on a model output")

    __str__ = __repr__


def test_a_dict_nested_5000_deep_gives_a_reason_not_a_recursion_error() -> None:
    deep = nested(5000)
    with pytest.raises(RecursionError):
        json.dumps(deep)  # what a recursive walk does with it

    reason = bounds_reason(deep)

    assert reason == "output" + ".a" * 32 + ": nested deeper than 32 levels"
    with pytest.raises(ValidationError, match="nested deeper than 32 levels"):
        check_bounds(deep)


def test_the_walk_is_iterative_even_with_a_tiny_recursion_limit() -> None:
    results: list[Any] = []

    def run() -> None:
        previous = sys.getrecursionlimit()
        sys.setrecursionlimit(60)  # far below what a recursive walk of depth 200 needs
        try:
            results.append(bounds_reason(nested(200), Bounds(max_depth=500)))
            results.append(bounds_reason(nested(600), Bounds(max_depth=500)))
        finally:
            sys.setrecursionlimit(previous)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert results[0] is None
    assert results[1].endswith(": nested deeper than 500 levels")


def test_a_realistic_game_answer_is_within_the_default_bounds() -> None:
    density = {
        "step": 300,
        "type": "mixture",
        "components": [
            {"density": {"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 1.0}}, "weight": 1 / 25}
        ]
        * 25,
    }
    predict_all = {300: [density] * 288, 3600: [density] * 24, 21600: [density] * 4, 86400: [density]}
    assert bounds_reason(predict_all) is None
    assert bounds_reason(json.loads(json.dumps(predict_all))) is None
    paths = [[90_000.0 + i for i in range(289)] for _ in range(1000)]  # 1,000 Synth paths
    started = time.perf_counter()
    assert bounds_reason([1_767_225_600, 300, *paths]) is None
    assert time.perf_counter() - started < 2.0  # ≈ 15 ms measured; generous for a loaded box


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"steps": {300: [{"x": np.float32(1.5)}]}}, "output.steps.300[0].x: a value of type numpy.float32"),
        ({"a": object()}, "output.a: a value of type builtins.object"),
        ([1, (2, {"k": {1, 2}})], "output[1][1].k: a value of type builtins.set"),
        ({"s": "x" * 10_001}, "output.s: a string of 10001 characters (limit 10000)"),
        ({"x" * 10_001: 1}, "output: a key of 10001 characters (limit 10000): 'xxxxx"),
        ({(1, 2): 1}, "output: a key of type tuple (only strings and integers)"),
        ({True: 1}, "output: a key of type bool"),
        ([2**2000], "output[0]: an integer of 2001 bits (limit 1024)"),
        (np.zeros(3), "output: a value of type numpy.ndarray"),
    ],
)
def test_non_json_values_and_oversized_scalars_are_named(raw: Any, reason: str) -> None:
    assert (bounds_reason(raw) or "").startswith(reason)


def test_the_item_count_is_bounded_before_walking() -> None:
    started = time.perf_counter()
    assert bounds_reason(list(range(2_000_000))) == "output: more than 1000000 values in the output"
    assert time.perf_counter() - started < 1.0
    reason = bounds_reason({"a": [[0.0] * 600] * 600}, Bounds(max_items=100_000)) or ""
    assert reason == "output.a[165]: more than 100000 values in the output"  # 3 + 600 + 166 × 600 > 100,000


def test_a_reference_cycle_is_named_not_followed_forever() -> None:
    loop: list[Any] = [1.0]
    loop.append({"again": loop})
    assert bounds_reason(loop) == "output[1].again: a reference cycle (the value contains itself)"
    shared = [1.0, 2.0]
    assert bounds_reason({"a": shared, "b": shared}) is None  # shared, not cyclic: JSON writes it twice


def test_nothing_is_ever_repr_ed_and_container_subclasses_are_refused() -> None:
    hostile = {"a": [{"b": Loud(c=1)}]}
    assert bounds_reason(hostile) == (
        "output.a[0].b: a value of type tests.unit.test_outputs_bounds.Loud "
        "(only JSON values: object, list, string, number, boolean, null)"
    )
    assert (bounds_reason(LoudList([1.0])) or "").startswith(
        "output: a value of type tests.unit.test_outputs_bounds.LoudList"
    )
    assert bounds_reason({"a": [np.float64(1.5), 2, "ok", None, True]}) is None  # numpy's float64 is a float


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers(-(2**60), 2**60) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=60,
)


def depth_of(value: Any) -> int:
    stack, deepest = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


@settings(max_examples=300, deadline=None)
@given(JSON, st.integers(1, 6))
def test_random_json_values_pass_exactly_when_within_the_depth(value: Any, max_depth: int) -> None:
    reason = bounds_reason(value, Bounds(max_depth=max_depth))
    if depth_of(value) <= max_depth:
        assert reason is None
    else:
        assert reason is not None and reason.endswith(f"nested deeper than {max_depth} levels")
    assert bounds_reason(value, DEFAULT_BOUNDS) is None
