"""Quantile forecasts: ordered levels in (0, 1), non-decreasing values."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.errors import ValidationError
from coordinator_core.outputs import validate_quantiles


def refused(raw: Any, **options: Any) -> str:
    with pytest.raises(ValidationError) as info:
        validate_quantiles(raw, **options)
    return str(info.value)


def test_both_forms_normalise_to_levels_and_values() -> None:
    expected = {"levels": [0.05, 0.5, 0.95], "values": [98.0, 100.0, 101.5]}

    assert validate_quantiles({"levels": [0.05, 0.5, 0.95], "values": [98, 100, 101.5]}) == expected
    assert validate_quantiles({0.05: 98, 0.5: 100, 0.95: 101.5}) == expected
    assert validate_quantiles(json.loads(json.dumps({0.05: 98, 0.5: 100, 0.95: 101.5}))) == expected
    assert validate_quantiles({"5e-2": 98, ".5": 100, "0.95": 101.5}) == expected
    assert validate_quantiles(expected, levels=[0.05, 0.5, 0.95]) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"0.5": 1.0, "0.1": 0.5}, "quantiles['0.1']: levels must increase, got 0.1 after 0.5"),
        ({"0.1": 2.0, "0.5": 1.0}, "quantiles['0.5']: quantiles must not decrease: 1.0 at level 0.5 is below 2.0"),
        ({"0": 1.0}, "quantiles['0']: a level must be in (0, 1), got 0.0"),
        ({"1": 1.0}, "quantiles['1']: a level must be in (0, 1), got 1.0"),
        ({"nan": 1.0}, "quantiles.nan: a level key must be a decimal number"),
        ({" 0.5": 1.0}, "quantiles[' 0.5']: a level key must be a decimal number"),
        ({"0.5": math.nan}, "quantiles['0.5']: must be finite, got nan"),
        ({"0.5": "1"}, "quantiles['0.5']: must be a number, got a string"),
        ({"levels": [0.1, 0.9], "values": [1.0]}, "quantiles.values: 1 values for 2 levels"),
        ({"levels": [0.1, 1.2], "values": [1.0, 2.0]}, "quantiles.levels[1]: a level must be in (0, 1), got 1.2"),
        ({"levels": [0.1, 0.9], "values": [1.0, True]}, "quantiles.values[1]: must be a number, got a boolean"),
        ({}, "quantiles: no quantile given"),
        ([0.1, 0.5], "quantiles: must be an object, got a list"),
    ],
)
def test_each_mistake_names_the_level_or_value(raw: Any, reason: str) -> None:
    assert refused(raw).startswith(reason)


def test_the_levels_asked_for_must_be_the_levels_given() -> None:
    assert "differ from the levels asked for [0.1, 0.5, 0.9]" in refused({"0.1": 1, "0.9": 2}, levels=[0.1, 0.5, 0.9])


LEVELS = st.lists(st.floats(0.001, 0.999), min_size=1, max_size=20, unique=True).map(sorted)


@settings(max_examples=200, deadline=None)
@given(LEVELS, st.data())
def test_random_valid_quantiles_validate_and_a_crossing_is_named(levels: list[float], data: Any) -> None:
    values = sorted(data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(levels), max_size=len(levels))))
    raw = {str(level): value for level, value in zip(levels, values, strict=True)}

    clean = validate_quantiles(raw)
    assert clean == {"levels": levels, "values": [float(v) for v in values]}
    assert validate_quantiles(clean) == clean

    if len(levels) > 1:
        i = data.draw(st.integers(1, len(levels) - 1))
        crossed = dict(raw)
        crossed[str(levels[i])] = values[i - 1] - 1.0
        assert refused(crossed).startswith(f"quantiles['{levels[i]}']: quantiles must not decrease")
