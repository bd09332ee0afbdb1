"""Density paths of one step and the multi-resolution ``predict_all`` answer."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator_core.errors import ConfigurationError, ValidationError
from coordinator_core.outputs import check_steps, validate_density_path, validate_multi_resolution

DAY, HOUR = 86_400, 3_600
SYNTH_24H = [300, 3600, 21600, 86400]  # FORECAST_PROFILES["24h"]["steps"] of both games
SYNTH_1H = [60, 300, 900, 1800, 3600]


def gaussian_path(horizon: int, step: int, *, wrapped: bool = False) -> list[dict[str, Any]]:
    """What the games' GaussianStepTracker.predict returns (rounded by predict_all)."""
    path = []
    for k in range(1, horizon // step + 1):
        density = {
            "type": "mixture",
            "components": [
                {
                    "density": {"type": "builtin", "name": "norm", "params": {"loc": 0.1 * step, "scale": 3.5}},
                    "weight": 1,
                }
            ],
        }
        path.append({"step": k * step, "prediction": density} if wrapped else {"step": k * step, **density})
    return path


def predict_all(horizon: int, steps: list[int]) -> dict[int, list[dict[str, Any]]]:
    return {step: gaussian_path(horizon, step) for step in steps}


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    return str(info.value)


# -- configuration --------------------------------------------------------------------------------------
def test_the_games_forecast_profiles_are_valid_configurations() -> None:
    from crunch_synth.constants import FORECAST_PROFILES

    for profile in FORECAST_PROFILES.values():
        assert check_steps(profile["horizon"], profile["steps"]) == tuple(profile["steps"])
    assert SYNTH_24H == FORECAST_PROFILES["24h"]["steps"] and SYNTH_1H == FORECAST_PROFILES["1h"]["steps"]


@pytest.mark.parametrize(
    ("horizon", "steps", "reason"),
    [
        (DAY, [300, 7000], "7000 s does not divide the horizon 86400 s"),
        (HOUR, [7200], "7200 s does not divide the horizon 3600 s"),  # predict_all would silently skip it
        (DAY, [300, 300], "listed twice"),
        (DAY, [], "non-empty list"),
        (DAY, [0], "0 is not a positive integer"),
        (DAY, [300.0], "300.0 is not a positive integer"),
        (DAY, [True], "True is not a positive integer"),
        (0, [60], "horizon must be a positive integer"),
        (DAY, "300", "non-empty list"),
    ],
)
def test_steps_that_cannot_make_a_path_are_a_configuration_error(horizon: Any, steps: Any, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        check_steps(horizon, steps)
    with pytest.raises(ConfigurationError):
        validate_multi_resolution({}, horizon=horizon, steps=steps, max_components=3)


# -- one path -------------------------------------------------------------------------------------------
def test_a_path_has_horizon_over_step_densities_with_their_offsets() -> None:
    clean = validate_density_path(gaussian_path(DAY, 300), horizon=DAY, step=300, max_components=3)

    assert len(clean) == 288
    assert [d["step"] for d in clean] == [300 * k for k in range(1, 289)]
    assert clean[0]["components"][0]["weight"] == 1.0


def test_the_wrapper_form_of_every_density_is_normalised_to_the_flat_form() -> None:
    flat = validate_density_path(gaussian_path(HOUR, 900), horizon=HOUR, step=900, max_components=3)
    wrapped = validate_density_path(gaussian_path(HOUR, 900, wrapped=True), horizon=HOUR, step=900, max_components=3)
    assert wrapped == flat


def test_a_path_of_the_wrong_length_or_order_is_refused() -> None:
    path = gaussian_path(HOUR, 900)
    assert refused(validate_density_path, path[:3], horizon=HOUR, step=900, max_components=3) == (
        "steps.900: expected 4 densities (horizon 3600 // step 900), got 3"
    )
    assert "got 0" in refused(validate_density_path, [], horizon=HOUR, step=900, max_components=3)
    swapped = [path[1], path[0], *path[2:]]
    assert refused(validate_density_path, swapped, horizon=HOUR, step=900, max_components=3) == (
        "steps.900[0].step: expected 900, got 1800"
    )
    no_step = [{k: v for k, v in d.items() if k != "step"} for d in path]
    assert refused(validate_density_path, no_step, horizon=HOUR, step=900, max_components=3) == (
        "steps.900[0].step: missing (expected 900: each density carries its offset)"
    )
    assert refused(validate_density_path, {"0": path}, horizon=HOUR, step=900, max_components=3) == (
        "steps.900: must be a list, got an object"
    )


# -- predict_all ----------------------------------------------------------------------------------------
def test_predict_all_in_process_and_after_json_normalise_to_the_same_int_keyed_answer() -> None:
    answer = predict_all(DAY, SYNTH_24H)
    over_the_wire = json.loads(json.dumps(answer))
    assert set(over_the_wire) == {"300", "3600", "21600", "86400"}

    clean = validate_multi_resolution(answer, horizon=DAY, steps=SYNTH_24H, max_components=3)

    assert validate_multi_resolution(over_the_wire, horizon=DAY, steps=SYNTH_24H, max_components=3) == clean
    assert list(clean) == SYNTH_24H
    assert [len(clean[s]) for s in SYNTH_24H] == [288, 24, 4, 1]
    stored = json.loads(json.dumps(clean))  # what a JSON column gives back
    assert validate_multi_resolution(stored, horizon=DAY, steps=SYNTH_24H, max_components=3) == clean


def test_the_keys_are_exactly_the_steps_asked_for() -> None:
    answer = json.loads(json.dumps(predict_all(HOUR, SYNTH_1H)))

    missing = {k: v for k, v in answer.items() if k != "900"}
    assert refused(validate_multi_resolution, missing, horizon=HOUR, steps=SYNTH_1H, max_components=3) == (
        "steps.900: missing (asked for steps 60, 300, 900, 1800, 3600)"
    )
    extra = {**answer, "120": gaussian_path(HOUR, 120)}
    assert refused(validate_multi_resolution, extra, horizon=HOUR, steps=SYNTH_1H, max_components=3) == (
        "steps.120: not asked for (asked for steps 60, 300, 900, 1800, 3600)"
    )
    twice = {**answer, 60: answer["60"]}
    assert "step 60 is given twice" in refused(
        validate_multi_resolution, twice, horizon=HOUR, steps=SYNTH_1H, max_components=3
    )
    for odd in ("0060", "60.0", " 60", "+60", "1e2"):
        renamed = {(odd if k == "60" else k): v for k, v in answer.items()}
        reason = refused(validate_multi_resolution, renamed, horizon=HOUR, steps=SYNTH_1H, max_components=3)
        assert reason.startswith(f"steps['{odd}']: a step key must be a positive integer"), reason
    assert refused(validate_multi_resolution, [], horizon=HOUR, steps=SYNTH_1H, max_components=3) == (
        "steps: must be an object, got a list"
    )


def test_an_empty_path_from_predict_all_is_refused() -> None:
    answer = {**predict_all(HOUR, SYNTH_1H), 300: []}  # predict_all gives [] when predict had nothing
    assert refused(validate_multi_resolution, answer, horizon=HOUR, steps=SYNTH_1H, max_components=3) == (
        "steps.300: expected 12 densities (horizon 3600 // step 300), got 0"
    )


def test_a_wrong_density_deep_inside_is_named_with_its_step_and_index() -> None:
    answer = json.loads(json.dumps(predict_all(DAY, SYNTH_24H)))
    answer["300"][4]["components"][0]["density"]["params"]["scale"] = -0.2

    assert refused(validate_multi_resolution, answer, horizon=DAY, steps=SYNTH_24H, max_components=3) == (
        "steps.300[4].components[0].density.params.scale: must be > 0, got -0.2"
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from([(DAY, SYNTH_24H), (HOUR, SYNTH_1H)]),
    as_text=st.booleans(),
    data=st.data(),
)
def test_random_corruptions_of_the_path_structure_name_the_step_and_index(
    profile: tuple[int, list[int]], as_text: bool, data: Any
) -> None:
    horizon, steps = profile
    answer: dict[Any, Any] = predict_all(horizon, steps)
    assert validate_multi_resolution(answer, horizon=horizon, steps=steps, max_components=3)
    step = data.draw(st.sampled_from(steps))
    index = data.draw(st.integers(0, horizon // step - 1))
    kind = data.draw(st.sampled_from(["step_key", "drop_one", "weight", "name", "drop_step"]))
    broken = copy.deepcopy(answer)
    path, expected = broken[step], f"steps.{step}"
    if kind == "step_key":
        path[index]["step"] = (index + 2) * step
        expected = f"steps.{step}[{index}].step: expected {(index + 1) * step}"
    elif kind == "drop_one":
        del path[index]
        expected = f"steps.{step}: expected {horizon // step} densities"
    elif kind == "weight":
        path[index]["components"][0]["weight"] = 2
        expected = f"steps.{step}[{index}].components: weights must sum to 1"
    elif kind == "name":
        path[index]["components"][0]["density"]["name"] = "normal"
        expected = f"steps.{step}[{index}].components[0].density.name: unknown distribution 'normal'"
    else:
        del path[index]["step"]
        expected = f"steps.{step}[{index}].step: missing"
    if as_text:
        broken = json.loads(json.dumps(broken))

    reason = refused(validate_multi_resolution, broken, horizon=horizon, steps=steps, max_components=3)

    assert reason.startswith(expected), reason
