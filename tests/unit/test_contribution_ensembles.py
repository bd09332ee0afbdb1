"""Virtual ensembles: means of points, flat equal-weight mixtures of densities, averaged quantiles."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core.contribution.ensembles import (
    average_quantiles,
    mean_ensemble,
    mean_point,
    mixture_density,
    mixture_multi_resolution,
    mixture_path,
)
from coordinator_core.outputs import count_components, validate_density, validate_quantiles
from coordinator_core.scoring.densities import density_pdf


def norm(loc: float, scale: float, step: int | None = None) -> dict[str, Any]:
    body = {"type": "builtin", "name": "norm", "params": {"loc": loc, "scale": scale}}
    return {"step": step, **body} if step is not None else body


def mixture(*parts: tuple[dict[str, Any], float], step: int | None = None) -> dict[str, Any]:
    body = {"type": "mixture", "components": [{"density": d, "weight": w} for d, w in parts]}
    return {"step": step, **body} if step is not None else body


# -- points ---------------------------------------------------------------------------------------


def test_mean_of_the_answering_members_only() -> None:
    ensemble = mean_point([{"value": 0.01}, None, {"value": 0.03}, None])
    assert ensemble is not None
    assert ensemble.output == {"value": 0.02}
    assert ensemble.members == (0, 2) and ensemble.size == 2


def test_no_member_answered_means_no_ensemble() -> None:
    assert mean_point([None, None]) is None
    assert mean_point([]) is None
    assert mixture_density([None]) is None
    assert mixture_path([None, None]) is None
    assert mixture_multi_resolution([None]) is None
    assert average_quantiles([None]) is None


def test_mean_point_refuses_a_non_number() -> None:
    with pytest.raises(ValueError, match="member 1"):
        mean_point([{"value": 1.0}, {"value": "up"}])
    with pytest.raises(ValueError, match="finite"):
        mean_point([{"value": math.nan}])
    with pytest.raises(ValueError):
        mean_point([{"value": True}])


def test_mean_ensemble_matrix_hand_computed() -> None:
    x = np.array([[1.0, 2.0, 6.0], [np.nan, 4.0, np.nan], [np.nan, np.nan, np.nan]])
    out = mean_ensemble(x)
    assert out[0] == 3.0 and out[1] == 4.0 and np.isnan(out[2])


def test_mean_ensemble_errors() -> None:
    with pytest.raises(ValueError, match="matrix"):
        mean_ensemble([1.0, 2.0])
    with pytest.raises(ValueError, match="infinite"):
        mean_ensemble([[1.0, math.inf]])


@given(st.lists(st.floats(-1e6, 1e6) | st.none(), min_size=1, max_size=12))
def test_mean_ensemble_agrees_with_mean_point(values: list[float | None]) -> None:
    row = np.array([[np.nan if v is None else v for v in values]])
    point = mean_point([None if v is None else {"value": v} for v in values])
    matrix = mean_ensemble(row)[0]
    if point is None:
        assert np.isnan(matrix)
    else:
        assert matrix == pytest.approx(point.output["value"], rel=1e-12, abs=1e-9)


# -- densities ------------------------------------------------------------------------------------


def test_mixture_of_two_members_is_flat_with_half_weights() -> None:
    a = norm(0.0, 1.0, step=60)
    b = mixture((norm(1.0, 2.0), 0.25), (norm(-1.0, 0.5), 0.75), step=60)
    ensemble = mixture_density([a, None, b])
    assert ensemble is not None and ensemble.members == (0, 2)
    assert ensemble.output == {
        "step": 60,
        "type": "mixture",
        "components": [
            {"density": norm(0.0, 1.0), "weight": 0.5},
            {"density": norm(1.0, 2.0), "weight": 0.125},
            {"density": norm(-1.0, 0.5), "weight": 0.375},
        ],
    }


def test_nested_mixtures_are_flattened_with_product_weights() -> None:
    inner = mixture((norm(0.0, 1.0), 0.5), (norm(2.0, 1.0), 0.5))
    deep = mixture((mixture((inner, 1.0)), 0.4), (norm(5.0, 1.0), 0.6))  # three mixture levels
    ensemble = mixture_density([deep, norm(0.0, 3.0)])
    assert ensemble is not None
    weights = [c["weight"] for c in ensemble.output["components"]]
    assert weights == pytest.approx([0.1, 0.1, 0.3, 0.5])
    assert all(c["density"]["type"] != "mixture" for c in ensemble.output["components"])


def test_mixture_pdf_is_the_mean_of_the_members_pdfs() -> None:
    members = [
        norm(0.1, 1.0, step=300),
        mixture((norm(0.0, 2.0), 0.3), (mixture((norm(1.0, 0.5), 0.5), (norm(-2.0, 1.5), 0.5)), 0.7), step=300),
        {
            "step": 300,
            "type": "mixture",
            "components": [
                {
                    "density": {"type": "builtin", "name": "t", "params": {"df": 4.0, "loc": 0.0, "scale": 1.0}},
                    "weight": 1,
                }
            ],
        },
    ]
    validated = [validate_density(m, max_components=3) for m in members]
    ensemble = mixture_density(validated)
    assert ensemble is not None
    x = np.linspace(-6, 6, 97)
    for impl in ("crunch_synth", "densitypdf"):
        mean = density_pdf(validated, x, pdf=impl).mean(axis=0)
        assert np.allclose(density_pdf([ensemble.output], x, pdf=impl)[0], mean, rtol=1e-12, atol=1e-15)


def test_component_limit_does_not_apply_but_the_ensemble_validates_with_its_own_count() -> None:
    members = [mixture((norm(i, 1.0), 0.5), (norm(-i, 1.0), 0.3), (norm(0, 2.0), 0.2), step=60) for i in range(5)]
    ensemble = mixture_density([validate_density(m, max_components=3) for m in members])
    assert ensemble is not None
    assert count_components(ensemble.output) == 15  # 5 members x 3 leaves: over the games' limit of 3
    with pytest.raises(Exception, match="limit"):
        validate_density(ensemble.output, max_components=3)
    again = validate_density(ensemble.output, max_components=count_components(ensemble.output), expected_step=60)
    assert again == ensemble.output


def test_members_with_different_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="different steps"):
        mixture_density([norm(0, 1, step=60), norm(0, 1, step=300)])
    with pytest.raises(ValueError, match="different steps"):
        mixture_density([norm(0, 1, step=60), norm(0, 1)])


def test_a_mixture_without_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="positive sum"):
        mixture_density([mixture((norm(0, 1), 0.0))])
    with pytest.raises(ValueError, match="non-empty"):
        mixture_density([{"type": "mixture", "components": []}])


def test_members_are_not_mutated() -> None:
    member = mixture((norm(0, 1), 1.0), step=60)
    before = repr(member)
    ensemble = mixture_density([member])
    assert ensemble is not None
    ensemble.output["components"][0]["density"]["params"]["loc"] = 99.0
    assert repr(member) == before


def test_paths_mix_step_by_step() -> None:
    a = [norm(0.0, 1.0, step=60), norm(0.0, 1.0, step=120)]
    b = [norm(1.0, 1.0, step=60), norm(2.0, 1.0, step=120)]
    ensemble = mixture_path([a, b, None])
    assert ensemble is not None and ensemble.members == (0, 1)
    assert [d["step"] for d in ensemble.output] == [60, 120]
    assert [c["density"]["params"]["loc"] for c in ensemble.output[1]["components"]] == [0.0, 2.0]
    with pytest.raises(ValueError, match="lengths"):
        mixture_path([a, a[:1]])


def test_multi_resolution_accepts_stored_string_keys() -> None:
    a = {60: [norm(0.0, 1.0, step=60)], 30: [norm(0.0, 1.0, step=30), norm(0.0, 1.0, step=60)]}
    b = {"60": [norm(1.0, 1.0, step=60)], "30": [norm(1.0, 1.0, step=30), norm(1.0, 1.0, step=60)]}
    ensemble = mixture_multi_resolution([a, None, b])
    assert ensemble is not None
    assert list(ensemble.output) == [60, 30]
    assert len(ensemble.output[30]) == 2 and len(ensemble.output[30][1]["components"]) == 2
    with pytest.raises(ValueError, match="different steps"):
        mixture_multi_resolution([a, {60: a[60]}])
    with pytest.raises(ValueError, match="step key"):
        mixture_multi_resolution([{"x": []}])


# -- quantiles ------------------------------------------------------------------------------------


def test_quantiles_are_averaged_level_by_level() -> None:
    a = {"levels": [0.1, 0.5, 0.9], "values": [-1.0, 0.0, 1.0]}
    b = {"levels": [0.1, 0.5, 0.9], "values": [-3.0, 1.0, 2.0]}
    ensemble = average_quantiles([a, None, b])
    assert ensemble is not None
    assert ensemble.output == {"levels": [0.1, 0.5, 0.9], "values": [-2.0, 0.5, 1.5]}


def test_quantiles_with_other_levels_are_refused() -> None:
    a = {"levels": [0.1, 0.9], "values": [0.0, 1.0]}
    with pytest.raises(ValueError, match="member 1"):
        average_quantiles([a, {"levels": [0.2, 0.9], "values": [0.0, 1.0]}])


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3).map(sorted),
        min_size=1,
        max_size=8,
    )
)
def test_averaged_quantiles_stay_valid(members: list[list[float]]) -> None:
    outputs = [{"levels": [0.05, 0.5, 0.95], "values": v} for v in members]
    ensemble = average_quantiles(outputs)
    assert ensemble is not None
    assert validate_quantiles(ensemble.output, levels=[0.05, 0.5, 0.95]) == ensemble.output
