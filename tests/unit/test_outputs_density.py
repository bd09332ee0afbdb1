"""One densitypdf density: hand examples, agreement with the games' own code, and hypothesis properties.

Valid densities are generated at random (every family, builtin and scipy, mixtures nested up to
three levels, up to the game's component limit, weights rounded by the games' own
``round_distribution_digits``); each must validate, normalise idempotently, be counted as the games
count it and evaluate to finite densities with the games' evaluators. Random single corruptions of
a valid density must be refused with a reason that starts with the corrupted field's path.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator_core.errors import ValidationError
from coordinator_core.outputs import (
    CONDOR_MAX_COMPONENTS,
    CRUNCH_SYNTH_MAX_COMPONENTS,
    FAMILIES,
    MAX_NESTING,
    count_components,
    validate_density,
)


def norm(loc: float = 0.0, scale: float = 1.0) -> dict[str, Any]:
    return {"type": "builtin", "name": "norm", "params": {"loc": loc, "scale": scale}}


def mixture(*parts: tuple[dict[str, Any], float]) -> dict[str, Any]:
    return {"type": "mixture", "components": [{"density": d, "weight": w} for d, w in parts]}


def refused(raw: Any, **options: Any) -> str:
    options.setdefault("max_components", CRUNCH_SYNTH_MAX_COMPONENTS)
    with pytest.raises(ValidationError) as info:
        validate_density(raw, **options)
    return str(info.value)


# -- hand examples ------------------------------------------------------------------------------------
def test_the_example_trackers_density_is_accepted_and_normalised_to_floats() -> None:
    raw = {"step": 300, **mixture((norm(-1.25, 40.5), 1))}

    clean = validate_density(raw, max_components=CRUNCH_SYNTH_MAX_COMPONENTS, expected_step=300)

    assert clean == {"step": 300, **mixture((norm(-1.25, 40.5), 1.0))}
    assert type(clean["components"][0]["weight"]) is float
    assert list(clean) == ["step", "type", "components"]
    assert raw["components"][0]["weight"] == 1 and type(raw["components"][0]["weight"]) is int  # input untouched


def test_the_reason_names_the_field_down_to_the_parameter() -> None:
    raw = {"step": 1500, **mixture((norm(0, 1), 0.5), (norm(0, -0.2), 0.5))}

    reason = refused(raw, path="steps.300[4]", expected_step=1500)

    assert reason == "steps.300[4].components[1].density.params.scale: must be > 0, got -0.2"


def test_the_wrapper_form_is_normalised_to_the_flat_form() -> None:
    wrapped = {"step": 600, "prediction": norm(0.1, 2.0)}

    assert validate_density(wrapped, max_components=3) == {"step": 600, **norm(0.1, 2.0)}
    assert validate_density(wrapped, max_components=3) == validate_density(
        {"step": 600, **norm(0.1, 2.0)}, max_components=3
    )
    assert "prediction.step: 900 differs from the wrapper's step 600" in refused(
        {"step": 600, "prediction": {"step": 900, **norm()}}
    )
    assert refused({"step": 600, "prediction": norm(), "x": 1}) == (
        "density.x: unexpected key (allowed: prediction, step)"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"name": "norm", "params": {}}, "density.type: missing (one of builtin, scipy, mixture)"),
        ({"type": "statistics", "name": "normal", "params": {"mu": 0, "sigma": 1}}, "densitypdf 0.1.4 cannot"),
        ({"type": "builtin", "name": "levy", "params": {}}, "density.name: unknown distribution 'levy'"),
        ({"type": "scipy", "name": "levy_stable", "params": {}}, "density.name: unknown distribution 'levy_stable'"),
        ({"type": "builtin", "name": "norm", "params": {"loc": 0}}, "density.params.scale: missing"),
        ({"type": "builtin", "name": "t", "params": {"loc": 0, "scale": 1}}, "density.params.df: missing"),
        (
            {"type": "builtin", "name": "norm", "params": {"loc": 0, "scale": 1, "df": 3}},
            "density.params.df: unexpected",
        ),
        ({"type": "scipy", "name": "norm", "params": {"mu": 0}}, "density.params.mu: unexpected key"),
        ({"type": "builtin", "name": "norm", "params": {"loc": math.nan, "scale": 1}}, "loc: must be finite, got nan"),
        (
            {"type": "builtin", "name": "norm", "params": {"loc": 0, "scale": math.inf}},
            "scale: must be finite, got inf",
        ),
        ({"type": "builtin", "name": "norm", "params": {"loc": 0, "scale": 0}}, "scale: must be > 0, got 0.0"),
        (
            {"type": "builtin", "name": "norm", "params": {"loc": 0, "scale": True}},
            "scale: must be a number, got a boolean",
        ),
        (
            {"type": "builtin", "name": "norm", "params": {"loc": "0", "scale": 1}},
            "loc: must be a number, got a string",
        ),
        ({"type": "builtin", "name": "gamma", "params": {"a": -1, "loc": 0, "scale": 1}}, "params.a: must be > 0"),
        ({"type": "builtin", "name": "norm", "params": [0, 1]}, "density.params: must be an object, got a list"),
        ({**norm(), "meta": "x"}, "density.meta: unexpected key"),
        (mixture(), "density.components: must not be empty"),
        (mixture((norm(), 0.6), (norm(), 0.3)), "density.components: weights must sum to 1 (±0.0001), got 0.9"),
        (mixture((norm(), 1.5), (norm(), -0.5)), "density.components[1].weight: must be >= 0, got -0.5"),
        (mixture((norm(), math.nan)), "density.components[0].weight: must be finite, got nan"),
        ({"type": "mixture", "components": [{"density": norm()}]}, "density.components[0].weight: missing"),
        ({"type": "mixture", "components": [norm()]}, "density.components[0].density: missing"),
        (mixture(({"step": 300, **norm()}, 1)), "density.components[0].density.step: unexpected key"),
        ({"step": 0, **norm()}, "density.step: must be > 0, got 0"),
        ({"step": 300.0, **norm()}, "density.step: must be an integer, got a number 300.0"),
        ("norm", "density: must be an object, got a string"),
    ],
)
def test_each_kind_of_mistake_has_its_own_reason(raw: Any, reason: str) -> None:
    assert reason in refused(raw)


def test_a_missing_step_is_refused_when_one_is_expected() -> None:
    assert refused(norm(), expected_step=300) == (
        "density.step: missing (expected 300: each density carries its offset)"
    )
    assert refused({"step": 600, **norm()}, expected_step=300) == "density.step: expected 300, got 600"


def test_scipy_densities_may_leave_out_loc_and_scale() -> None:
    clean = validate_density({"type": "scipy", "name": "t", "params": {"df": 3}}, max_components=3)
    assert clean == {"type": "scipy", "name": "t", "params": {"df": 3.0}}


def test_weights_rounded_to_six_digits_are_within_the_tolerance() -> None:
    parts = [(norm(i, 1), round(1 / 3, 6)) for i in range(3)]  # 0.333333 × 3 = 0.999999
    assert len(validate_density(mixture(*parts), max_components=3)["components"]) == 3
    assert "sum to 1" in refused(mixture((norm(), 0.33), (norm(), 0.33), (norm(), 0.33)))


def test_leaf_components_are_counted_as_the_games_count_them() -> None:
    nested = mixture((mixture((norm(), 0.5), (norm(), 0.5)), 0.5), (norm(), 0.5))  # 3 leaves
    assert count_components(validate_density(nested, max_components=3)) == 3

    four = mixture((nested, 0.5), (norm(), 0.5))
    assert refused(four) == (
        "density.components: 4 leaf components (nested mixtures expanded, as the games count them); the limit is 3"
    )
    assert count_components(validate_density(four, max_components=25)) == 4  # the limit is a parameter
    many = mixture(*[(norm(), 1 / 4)] * 4)
    assert refused(many) == "density.components: 4 components; the limit is 3 leaf components"


def test_mixtures_nest_at_most_three_levels_like_densitypdf() -> None:
    from densitypdf import density_pdf

    three = mixture(
        (
            mixture(
                (
                    mixture(
                        (norm(), 1.0),
                    ),
                    1.0,
                ),
            ),
            1.0,
        ),
    )
    four = mixture((three, 1.0))

    assert validate_density(three, max_components=3)
    assert math.isfinite(density_pdf(three, 0.0))
    assert refused(four) == (
        "density.components[0].density.components[0].density.components[0].density: "
        "mixtures nested more than 3 levels deep (densitypdf evaluates at most 3)"
    )
    with pytest.raises(RecursionError):
        density_pdf(four, 0.0)


def test_a_mixture_nested_five_thousand_levels_is_refused_without_recursion_error() -> None:
    deep: dict[str, Any] = norm()
    for _ in range(5000):
        deep = mixture((deep, 1.0))
    assert "mixtures nested more than 3 levels" in refused(deep)


def test_no_container_is_ever_repr_ed() -> None:
    class Loud(dict):  # a value whose repr would blow up (or take forever)
        def __repr__(self) -> str:
            raise AssertionError("repr called")

        __str__ = __repr__

    raw = Loud(type="builtin", name="norm", params=Loud(loc=0, scale=Loud(x=1)))
    assert refused(raw) == "density.params.scale: must be a number, got an object"
    assert refused(Loud(type=Loud())) == "density.type: must be one of builtin, scipy, mixture, got an object of 0 keys"


# -- agreement with densitypdf and scipy ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_parameter_table_is_densitypdfs_and_scipys(name: str) -> None:
    import scipy.stats
    from densitypdf.builtin.builtindensitypdf import builtin_density_pdf

    shapes = FAMILIES[name]
    scipy_shapes = tuple(s.strip() for s in (getattr(scipy.stats, name).shapes or "").split(",") if s.strip())
    assert shapes == scipy_shapes
    params = {**{s: 2.0 for s in shapes}, "loc": 0.0, "scale": 1.0}
    assert math.isfinite(builtin_density_pdf({"name": name, "params": params}, 1.5))
    for missing in params:  # the builtin evaluator needs every one of them
        with pytest.raises(KeyError):
            builtin_density_pdf({"name": name, "params": {k: v for k, v in params.items() if k != missing}}, 1.5)
        if missing not in ("loc", "scale"):
            assert f"density.params.{missing}: missing" in refused(
                {"type": "scipy", "name": name, "params": {k: v for k, v in params.items() if k != missing}}
            )
        assert f"density.params.{missing}: missing" in refused(
            {"type": "builtin", "name": name, "params": {k: v for k, v in params.items() if k != missing}}
        )


def test_the_component_limit_is_the_installed_crunch_synth_one() -> None:
    from crunch_synth.constants import MAX_DISTRIBUTION_COMPONENTS

    assert CRUNCH_SYNTH_MAX_COMPONENTS == MAX_DISTRIBUTION_COMPONENTS == 3
    # condorgame's (Python >= 3.12) is checked in tests/integration/test_game_trackers.py


# -- hypothesis: random valid densities -----------------------------------------------------------------
SHAPE = st.floats(0.2, 40.0)  # moderate: the games' builtin evaluators overflow for very large shapes
LOC = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
SCALE = st.floats(1e-3, 1e4)


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(FAMILIES)))
    dtype = draw(st.sampled_from(["builtin", "scipy"]))
    params: dict[str, Any] = {shape: draw(SHAPE) for shape in FAMILIES[name]}
    for key, strategy in (("loc", LOC), ("scale", SCALE)):
        if dtype == "builtin" or draw(st.booleans()):
            params[key] = draw(strategy)
    if draw(st.booleans()):  # ints are numbers too
        params = {k: (max(1, round(v)) if k != "loc" else round(v)) for k, v in params.items()}
    return {"type": dtype, "name": name, "params": params}


@st.composite
def densities(draw: st.DrawFn, budget: int, depth: int = 0) -> dict[str, Any]:
    if depth < MAX_NESTING and draw(st.booleans()):
        count = draw(st.integers(1, min(budget, 4)))
        spare = budget - count
        parts = []
        for _ in range(count):
            extra = draw(st.integers(0, spare))
            spare -= extra
            parts.append(draw(densities(1 + extra, depth + 1)))
        raw = draw(st.lists(st.floats(0.01, 1.0), min_size=count, max_size=count))
        return mixture(*zip(parts, [w / sum(raw) for w in raw], strict=True))
    return draw(leaves())


@st.composite
def game_densities(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """A density as a tracker returns it (``step`` inside, weights rounded to 6 digits), and its limit."""
    from crunch_synth.utils.distributions import round_distribution_digits

    limit = draw(st.sampled_from([CRUNCH_SYNTH_MAX_COMPONENTS, CONDOR_MAX_COMPONENTS, 25]))  # 25: a larger limit
    density = round_distribution_digits(draw(densities(limit)), digits=6)
    return {"step": draw(st.integers(1, 100)) * 60, **density}, limit


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(game_densities())
def test_random_valid_densities_validate_and_the_games_can_evaluate_them(case: tuple[dict[str, Any], int]) -> None:
    from crunch_synth.utils.density_pdf import density_pdf_vectorized
    from crunch_synth.utils.distributions import count_distribution_components
    from densitypdf import density_pdf

    raw, limit = case
    before = copy.deepcopy(raw)
    clean = validate_density(raw, max_components=limit)

    assert raw == before
    assert validate_density(clean, max_components=limit) == clean  # idempotent
    assert count_components(clean) == count_distribution_components(raw) <= limit
    assert validate_density({"step": raw["step"], "prediction": before}, max_components=limit) == clean
    # at generic points (a shape < 1 makes some families infinite exactly at loc, which is legitimate)
    values = density_pdf_vectorized(clean, [-1234.56789, -0.987654321, 0.314159265, 2718.281828])  # Crunch-Synth's
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert math.isfinite(density_pdf(clean, 0.314159265))  # densitypdf's: Condor's scorer


def sites(density: dict[str, Any], path: str) -> list[tuple[str, list[Any], str]]:
    """(kind, where, expected path) of every corruptible field of a valid flat density."""
    found: list[tuple[str, list[Any], str]] = [
        ("extra_key", [], f"{path}.zz_extra"),
        ("type", ["type"], f"{path}.type"),
    ]
    if density["type"] == "mixture":
        found.append(("empty", ["components"], f"{path}.components"))
        found.append(("weights_off", ["components"], f"{path}.components"))
        for i, component in enumerate(density["components"]):
            where = ["components", i]
            found.append(("negative", [*where, "weight"], f"{path}.components[{i}].weight"))
            found.append(("nan", [*where, "weight"], f"{path}.components[{i}].weight"))
            found.append(("drop_weight", where, f"{path}.components[{i}].weight"))
            for kind, inner, inner_path in sites(component["density"], f"{path}.components[{i}].density"):
                found.append((kind, [*where, "density", *inner], inner_path))
        return found
    found.append(("name", ["name"], f"{path}.name"))
    found.append(("extra_param", ["params"], f"{path}.params.zz_extra"))
    for key in density["params"]:
        where = ["params", key]
        found.append(("nan", where, f"{path}.params.{key}"))
        found.append(("inf", where, f"{path}.params.{key}"))
        found.append(("text", where, f"{path}.params.{key}"))
        found.append(("bool", where, f"{path}.params.{key}"))
        if key != "loc":
            found.append(("negative", where, f"{path}.params.{key}"))
        if density["type"] == "builtin" or key not in ("loc", "scale"):
            found.append(("drop", where, f"{path}.params.{key}"))
    return found


def corrupt(density: dict[str, Any], kind: str, where: list[Any]) -> None:
    *parent_keys, last = where or [None]
    parent: Any = density
    for key in parent_keys:
        parent = parent[key]
    target = parent[last] if last is not None else density
    if kind == "extra_key":
        target["zz_extra"] = 1
    elif kind == "type":
        parent["type"] = "gaussian"
    elif kind == "name":
        parent["name"] = "no_such_family"
    elif kind == "empty":
        parent["components"] = []
    elif kind == "weights_off":
        for component in target:
            component["weight"] = component["weight"] * 1.5
    elif kind == "drop_weight":
        del target["weight"]
    elif kind == "extra_param":
        target["zz_extra"] = 1.0
    elif kind == "drop":
        del parent[last]
    else:
        parent[last] = {"nan": math.nan, "inf": -math.inf, "text": "1.0", "bool": True, "negative": -0.2}[kind]


@FAST
@given(game_densities(), st.data())
def test_random_corruptions_are_refused_naming_the_corrupted_field(case: tuple[dict[str, Any], int], data: Any) -> None:
    raw, limit = case
    kind, where, expected_path = data.draw(st.sampled_from(sites(raw, "steps.300[4]")))
    broken = copy.deepcopy(raw)
    corrupt(broken, kind, where)

    with pytest.raises(ValidationError) as info:
        validate_density(broken, max_components=limit, path="steps.300[4]")

    assert str(info.value).startswith(expected_path + ": "), (kind, str(info.value))
