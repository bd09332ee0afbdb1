"""The bounded worker pool of the in-process gateway and the read-only shared input."""

from __future__ import annotations

import copy
import enum
import json
import math
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator_core.gateway.frozen import FrozenDict, FrozenList, freeze, frozen_json
from coordinator_core.gateway.pool import WorkerPool


def test_every_call_runs_on_the_bounded_pool_and_no_thread_per_call() -> None:
    pool = WorkerPool(4)
    before = threading.active_count()
    calls = pool.run_all({f"m{i}": (lambda i=i: i * 2) for i in range(500)}, timeout=5.0)
    assert {k: c.value for k, c in calls.items()} == {f"m{i}": i * 2 for i in range(500)}
    assert threading.active_count() - before <= 4
    pool.close()


def test_a_deadline_runs_from_the_calls_own_start_not_from_the_queue() -> None:
    pool = WorkerPool(1)  # one worker: the calls run one after the other
    calls = pool.run_all({f"m{i}": (lambda: time.sleep(0.15) or "ok") for i in range(4)}, timeout=0.5)
    assert all(not c.timed_out and c.value == "ok" for c in calls.values())  # 0.6 s in all, 0.15 s each
    pool.close()


def test_a_hung_call_times_out_its_worker_is_replaced_and_errors_are_kept() -> None:
    pool = WorkerPool(2)
    release = threading.Event()

    def boom() -> None:
        raise RuntimeError("kaboom")

    started = time.perf_counter()
    calls = pool.run_all({"hang": release.wait, "boom": boom, "fast": lambda: 1}, timeout=0.3)
    assert calls["hang"].timed_out and not calls["hang"].done
    assert isinstance(calls["boom"].error, RuntimeError) and calls["fast"].value == 1
    assert time.perf_counter() - started < 2.0
    again = pool.run_all({f"m{i}": (lambda: 2) for i in range(10)}, timeout=1.0)  # still two free workers
    assert all(c.value == 2 for c in again.values())
    release.set()
    deadline = time.perf_counter() + 2.0
    while not calls["hang"].done and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert calls["hang"].done and calls["hang"].value is True  # it returned later, and was still reported late
    pool.close()


def test_the_shared_input_is_read_only_but_copies_are_free() -> None:
    data = freeze(json.loads('{"subject": "BTC", "candles": [{"close": 1.0}, {"close": 2.0}]}'))
    assert isinstance(data, dict) and isinstance(data["candles"], list)
    assert json.loads(json.dumps(data)) == {"subject": "BTC", "candles": [{"close": 1.0}, {"close": 2.0}]}
    for change in (
        lambda: data.update(x=1),
        lambda: data["candles"].append(3),
        lambda: data["candles"][0].pop("close"),
        lambda: data.__setitem__("subject", "ETH"),
    ):
        with pytest.raises(TypeError, match="read-only"):
            change()
    mutable = copy.deepcopy(data)
    mutable["candles"].append({"close": 3.0})
    assert type(mutable) is dict and len(data["candles"]) == 2
    assert not isinstance(dict(data), FrozenDict)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(
            st.text(max_size=3) | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none(),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


def _kinds(value: object) -> object:
    """The value's shape with each container's exact type, to compare two frozen values."""
    if isinstance(value, dict):
        return (type(value), {k: _kinds(v) for k, v in value.items()})
    if isinstance(value, list):
        return (type(value), [_kinds(v) for v in value])
    return value


@given(_JSON)
def test_frozen_json_is_freeze_of_the_wire_round_trip(value: object) -> None:
    """One decode builds what ``freeze(json.loads(json.dumps(v)))`` builds: the same values, every
    object a FrozenDict and every list (nested lists too) a FrozenList."""
    fast, slow = frozen_json(value), freeze(json.loads(json.dumps(value)))
    assert fast == slow and _kinds(fast) == _kinds(slow)
    if isinstance(fast, list):
        assert isinstance(fast, FrozenList)


class _Level(enum.IntEnum):
    HIGH = 3


class _Name(str):
    pass


def test_frozen_json_writes_subclasses_and_odd_floats_as_the_wire_does() -> None:
    value = {"level": _Level.HIGH, _Name("k"): _Name("v"), "nan": math.nan, "inf": -math.inf, 1.5: (1, [2, (3,)])}
    fast, slow = frozen_json(value), freeze(json.loads(json.dumps(value)))
    assert json.dumps(fast) == json.dumps(slow)  # NaN is never equal to itself: compared as written

    def finite(v: dict) -> dict:
        return {k: x for k, x in v.items() if k not in ("nan", "inf")}

    assert _kinds(finite(fast)) == _kinds(finite(slow))
    assert type(fast["level"]) is int and type(next(iter(fast))) is str and type(fast["k"]) is str


def test_frozen_json_refuses_what_the_wire_refuses() -> None:
    for refused in ({"when": object()}, [{1, 2}], {(1, 2): "tuple key"}):
        with pytest.raises(TypeError):
            json.dumps(refused)
        with pytest.raises(TypeError):
            frozen_json(refused)
