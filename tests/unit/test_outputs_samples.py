"""Sample paths in Synth's (Bittensor SN50) answer format."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.errors import ConfigurationError, ValidationError
from coordinator_core.outputs import validate_sample_paths

DAY, HOUR = 86_400, 3_600
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def ensemble(n: int, points: int, seed: int = 1, start_price: float = 90_000.0) -> list[list[float]]:
    rng = random.Random(seed)
    paths = []
    for _ in range(n):
        price, path = start_price, [start_price]
        for _ in range(points - 1):
            price *= math.exp(rng.gauss(0.0, 0.002))
            path.append(round(price, 2))
        paths.append(path)
    return paths


def refused(raw: Any, **options: Any) -> str:
    options.setdefault("horizon", DAY)
    options.setdefault("time_increment", 300)
    with pytest.raises(ValidationError) as info:
        validate_sample_paths(raw, **options)
    return str(info.value)


def test_a_synth_answer_of_1000_paths_validates_in_every_form() -> None:
    paths = ensemble(1000, 289)  # Synth's 24h prompt: 5-minute points, 1,000 simulations
    sn50 = [START, 300, *paths]

    clean = validate_sample_paths(sn50, horizon=DAY, time_increment=300, num_paths=1000, start_time=START)

    assert clean["start_time"] == START and clean["time_increment"] == 300
    assert len(clean["paths"]) == 1000 and {len(p) for p in clean["paths"]} == {289}
    assert validate_sample_paths(clean, horizon=DAY, time_increment=300, num_paths=1000) == clean
    bare = validate_sample_paths(paths, horizon=DAY, time_increment=300)
    assert bare == {**clean, "start_time": None}


def test_the_shape_matches_crunch_synths_simulated_paths() -> None:
    """crunch_synth's simulate_price_paths gives (num_paths, horizon // finest_step + 1) prices."""
    import numpy as np
    from crunch_synth.volatility import simulate_price_paths

    predictions = {
        step: [
            {"step": k * step, "type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 0.5}}
            for k in range(1, HOUR // step + 1)
        ]
        for step in (60, 300)
    }
    simulated = simulate_price_paths(predictions, 100.0, seed=3, num_paths=50)
    assert simulated.shape == (50, HOUR // 60 + 1)

    clean = validate_sample_paths(simulated.tolist(), horizon=HOUR, time_increment=60, num_paths=50)
    assert np.array_equal(np.array(clean["paths"]), simulated)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda a: a.__setitem__(0, START + 60), f"paths[0]: expected {START}, got {START + 60}"),
        (lambda a: a.__setitem__(1, 60), "paths[1]: expected 300, got 60"),
        (lambda a: a.__setitem__(1, 300.0), "paths[1]: must be an integer, got a number 300.0"),
        (lambda a: a.pop(), "paths: expected 3 paths, got 2"),
        (lambda a: a[3].pop(), "paths[3]: expected 289 prices (horizon // time_increment + 1), got 288"),
        (lambda a: a[4].__setitem__(7, 0), "paths[4][7]: a price must be finite and > 0, got 0.0"),
        (lambda a: a[4].__setitem__(7, -5.0), "paths[4][7]: a price must be finite and > 0, got -5.0"),
        (lambda a: a[2].__setitem__(0, math.nan), "paths[2][0]: a price must be finite and > 0, got nan"),
        (lambda a: a[2].__setitem__(9, math.inf), "paths[2][9]: a price must be finite and > 0, got inf"),
        (lambda a: a[2].__setitem__(9, "1.0"), "paths[2][9]: a price must be a number, got '1.0'"),
        (lambda a: a[2].__setitem__(9, True), "paths[2][9]: a price must be a number, got True"),
        (lambda a: a.__setitem__(2, {"p": 1}), "paths[2]: must be a list, got an object"),
    ],
)
def test_each_mistake_names_the_path_and_point(mutate: Any, reason: str) -> None:
    answer: list[Any] = [START, 300, *ensemble(3, 289)]
    mutate(answer)
    assert refused(answer, num_paths=3, start_time=START) == reason


def test_synths_digit_rule_applies_only_when_asked() -> None:
    paths = [[123456.789] * 61]
    assert validate_sample_paths(paths, horizon=HOUR, time_increment=60)
    assert refused(paths, horizon=HOUR, time_increment=60, max_digits=8) == (
        "paths[0][0]: more than 8 digits (Synth's format rule), got 123456.789"
    )


def test_an_increment_that_does_not_divide_the_horizon_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="does not divide"):
        validate_sample_paths([[1.0]], horizon=HOUR, time_increment=7)
    with pytest.raises(ValidationError, match="no path given"):
        validate_sample_paths([], horizon=HOUR, time_increment=60)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 20),
    increment=st.sampled_from([60, 300, 900]),
    data=st.data(),
)
def test_random_ensembles_validate_and_one_bad_price_is_located(n: int, increment: int, data: Any) -> None:
    points = HOUR // increment + 1
    prices = st.floats(1e-6, 1e7, allow_nan=False, allow_infinity=False)
    paths = data.draw(st.lists(st.lists(prices, min_size=points, max_size=points), min_size=n, max_size=n))

    clean = validate_sample_paths([START, increment, *paths], horizon=HOUR, time_increment=increment, num_paths=n)
    assert clean["paths"] == paths

    i, j = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, points - 1))
    bad = data.draw(st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf]))
    paths[i][j] = bad
    reason = refused([START, increment, *paths], horizon=HOUR, time_increment=increment)
    assert reason.startswith(f"paths[{i + 2}][{j}]: a price must be finite and > 0"), reason
