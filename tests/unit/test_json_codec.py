"""``db.engine.json_loads``, every engine's JSON reader: orjson's speed, ``json.loads``'s values."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.db.engine import json_loads

_TEXT = st.text(max_size=12)
_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # any size: beyond 64 bits too
    | st.floats()  # NaN and the infinities too (json.dumps writes them)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)
# a number literal as Postgres may print a jsonb numeric: any digits, any exponent
_DIGITS = st.text("0123456789", min_size=1, max_size=30)
_NUMBER = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole.lstrip('0') or '0'}{'.' + frac if frac else ''}{exp}",
    st.sampled_from(["", "-"]),
    _DIGITS,
    st.none() | _DIGITS,
    st.sampled_from([""]) | st.integers(-400, 400).map(lambda e: f"e{e}"),
)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (``1 == 1.0`` is not enough; NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(value=_VALUE)
def test_json_loads_reads_what_json_loads_reads(value: Any) -> None:
    text = json.dumps(value)
    assert _same(json_loads(text), json.loads(text))


@settings(max_examples=300, deadline=None)
@given(number=_NUMBER)
def test_json_loads_reads_every_number_literal_as_json_loads(number: str) -> None:
    text = f'{{"x": [{number}]}}'
    assert _same(json_loads(text), json.loads(text))


def test_the_cases_orjson_alone_would_read_otherwise() -> None:
    for text in [
        "123456789012345678901234567890",  # orjson: a float
        "-9223372036854775809",
        "18446744073709551616",
        "1e400",  # orjson refuses; json.loads: infinity
        "[NaN, Infinity]",
        '"\\ud800"',  # a lone surrogate
    ]:
        assert _same(json_loads(text), json.loads(text)), text
