"""The plain-dict fast paths of output and score validation give exactly what pydantic's strict
validation gives (same dict, same key order), and hand everything else to pydantic."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from coordinator_core.contract import InferenceOutput, ScoreResult, _plain_score, _plain_value

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))
keys = st.sampled_from(["value", "success", "failed_reason", "extra", "z"])


def pydantic(model: Any, raw: Any) -> dict[str, Any] | None:
    try:
        return model.model_validate(raw, strict=True).model_dump()
    except ValidationError:
        return None


@given(st.dictionaries(keys, values, max_size=5))
def test_score_fast_path_equals_pydantic(raw: dict[str, Any]) -> None:
    fast, slow = _plain_score(raw), pydantic(ScoreResult, raw)
    if fast is not None:
        assert fast == slow and list(fast) == list(slow)  # type: ignore[arg-type]
    if slow is None:
        assert fast is None


@given(st.dictionaries(keys, values, max_size=3))
def test_output_fast_path_equals_pydantic(raw: dict[str, Any]) -> None:
    fast, slow = _plain_value(raw), pydantic(InferenceOutput, raw)
    if fast is not None:
        assert fast == slow
    if slow is None:
        assert fast is None
