"""Grid CRPS and batch density evaluation against hand-computed values and both games' own code.

The Condor Game's ``crps_integral`` cannot be imported here (condorgame needs Python 3.12); its
formula is ten lines over ``densitypdf.density_pdf``, rewritten below as the reference
(``condor_reference``). The integration test ``tests/integration/test_game_agreement.py`` compares
against the real one.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats as st
from crunch_synth.tracker_evaluator import crps_integral as crunch_crps_integral
from densitypdf import density_pdf as densitypdf_pdf

from coordinator_core.scoring.densities import (
    BUILTIN_FAMILIES,
    DensityError,
    density_pdf,
    parse_densities,
)
from coordinator_core.scoring.grid_crps import crps_bounds, crps_on_grid, crps_on_grid_checked, trapezoid_weights

REL = 1e-12


def condor_reference(density: dict, x: float, t_min: float, t_max: float, num_points: int = 256) -> float:
    """condorgame 0.5.3 ``crps_integral``: densitypdf point by point, no renormalisation."""
    ts = np.linspace(t_min, t_max, num_points)
    dt = ts[1] - ts[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pdfs = np.array([densitypdf_pdf(density, t) for t in ts], dtype=float)
    cdfs = np.clip(np.cumsum(pdfs) * dt, 0.0, 1.0)
    return float(np.trapezoid((cdfs - (ts >= x).astype(float)) ** 2, ts))


def norm(loc: float, scale: float) -> dict:
    return {"type": "builtin", "name": "norm", "params": {"loc": loc, "scale": scale}}


def mixture(*parts: tuple[dict, float]) -> dict:
    return {"type": "mixture", "components": [{"density": d, "weight": w} for d, w in parts]}


def random_params(name: str, rng: np.random.Generator) -> dict[str, float]:
    """Parameters that put each family's mass inside [-1500, 1500]."""
    shapes = {
        "lognorm": {"s": rng.uniform(0.1, 1.0), "loc": -300.0, "scale": rng.uniform(100, 300)},
        "t": {"df": rng.uniform(1, 30)},
        "weibull_min": {"c": rng.uniform(0.5, 4), "loc": -200.0},
        "gamma": {"a": rng.uniform(0.5, 5), "loc": -200.0, "scale": rng.uniform(10, 100)},
        "weibull_max": {"c": rng.uniform(0.5, 4), "loc": 200.0},
        "beta": {"a": rng.uniform(0.5, 5), "b": rng.uniform(0.5, 5), "loc": -300.0, "scale": 600.0},
        "chi": {"df": rng.uniform(1, 5), "loc": -200.0},
        "chi2": {"df": rng.uniform(1, 6), "loc": -200.0, "scale": rng.uniform(20, 80)},
        "pareto": {"b": rng.uniform(1, 4), "loc": -300.0},
        "f": {"dfn": rng.uniform(1, 10), "dfd": rng.uniform(1, 10), "loc": -200.0, "scale": rng.uniform(20, 80)},
    }
    params = {"loc": float(rng.normal(0, 50)), "scale": float(rng.uniform(20, 300))}
    params.update({k: float(v) for k, v in shapes.get(name, {}).items()})
    return params


def every_kind_of_density(rng: np.random.Generator) -> list[dict]:
    """Each builtin family alone and inside nested mixtures, scipy densities, statistics normals."""
    out: list[dict] = []
    for name in BUILTIN_FAMILIES:
        leaf = {"type": "builtin", "name": name, "params": random_params(name, rng)}
        out.append(leaf)
        out.append(
            mixture(
                ({"type": "builtin", "name": name, "params": random_params(name, rng)}, float(rng.uniform(0.1, 2))),
                (
                    {"type": "builtin", "name": "cauchy", "params": {"loc": 1.0, "scale": 100.0}},
                    -float(rng.uniform(0.1, 2)),
                ),
                (mixture((norm(5.0, 40.0), 1)), 0.5),
            )
        )
    out.append({"type": "scipy", "name": "t", "params": {"df": 3.0, "loc": 10.0, "scale": 60.0}})
    out.append({"type": "scipy", "name": "laplace", "params": {"loc": -20.0, "scale": 80.0}})
    out.append({"type": "scipy", "name": "skewnorm", "params": {"a": 4.0, "scale": 90.0}})
    out.append(
        mixture(({"type": "scipy", "name": "norm", "params": {"loc": 1.0, "scale": 100.0}}, 2.0), (norm(9, 20), 1))
    )
    out.append(norm(1200.0, 5.0))  # mode 240 sigma from 0: the exponent is computed without the product form
    out.append(mixture((norm(0.0, 30.0), 0.0), (norm(50.0, 10.0), 0.0)))  # weights sum to 0
    return out


# -- hand-computed ----------------------------------------------------------------------------------


def test_three_point_grid_by_hand_crunch_synth() -> None:
    # grid -1, 0, 1 (dt = 1); N(0, 1) pdf: phi(1) = 0.2419707245, phi(0) = 0.3989422804
    # trapezoid integral = 0.5 (phi1 + phi0) + 0.5 (phi0 + phi1) = 0.6409130049
    # renormalised: [0.3775406688, 0.6224593312, 0.3775406688]; cdf = cumsum, clipped: [0.3775406688, 1, 1]
    # x = 0.5: indicator [0, 0, 1]; integrand [0.1425369565, 1, 0]; trapezoid = 0.5 (0.1425 + 1) + 0.5 (1 + 0)
    expected = 0.5 * (0.3775406688**2 + 1.0) + 0.5 * (1.0 + 0.0)
    value = crps_on_grid([norm(0.0, 1.0)], [0.5], -1.0, 1.0, num_points=3, evaluator="crunch_synth")
    assert value[0] == pytest.approx(expected, rel=1e-9)


def test_three_point_grid_by_hand_condorgame_keeps_the_raw_pdf() -> None:
    # no renormalisation: cdf = [0.2419707245, 0.6409130049, 0.8828837294]; x = 0.5 -> indicator [0, 0, 1]
    # integrand [0.0585498, 0.4107695, 0.0137155]; trapezoid = 0.5 (a + b) + 0.5 (b + c)
    a, b, c = 0.2419707245**2, 0.6409130049**2, (1 - 0.8828837294) ** 2
    value = crps_on_grid([norm(0.0, 1.0)], [0.5], -1.0, 1.0, num_points=3, evaluator="condorgame")
    assert value[0] == pytest.approx(0.5 * (a + b) + 0.5 * (b + c), rel=1e-9)


def test_density_far_outside_the_grid_scores_the_whole_indicator_area() -> None:
    # the pdf underflows to 0 on the grid: no renormalisation (integral 0), cdf 0, so the integrand is the
    # indicator: 0 up to z = -dt, 1 from z = 0 (x = 0 is a grid point of the 1025): trapezoid 1000 + dt / 2
    d = norm(1e6, 1.0)
    expected = 1000.0 + (2000 / 1024) / 2
    for evaluator in ("crunch_synth", "condorgame"):
        value = crps_on_grid([d], [0.0], -1000, 1000, num_points=1025, evaluator=evaluator)
        assert value[0] == pytest.approx(expected, rel=1e-12)
    assert crunch_crps_integral(d, 0.0, -1000, 1000, 1025) == pytest.approx(expected, rel=1e-12)


def test_crps_bounds_scale_with_the_square_root_of_the_step_above_base_step() -> None:
    assert crps_bounds(1500, 60, 300) == (-1500, 1500)
    assert crps_bounds(1500, 300, 300) == (-1500, 1500)
    lo, hi = crps_bounds(1500, 3600, 300)
    assert hi == pytest.approx(1500 * math.sqrt(12)) and lo == -hi
    assert crps_bounds(4, 86400, 300)[1] == pytest.approx(4 * math.sqrt(288))
    with pytest.raises(ValueError):
        crps_bounds(0, 60, 300)
    with pytest.raises(ValueError):
        crps_bounds(1500, 0, 300)


def test_trapezoid_weights_integrate_like_numpy() -> None:
    grid = np.linspace(-3.0, 5.0, 17)
    y = np.sin(grid) + 2
    assert float(y @ trapezoid_weights(grid)) == pytest.approx(float(np.trapezoid(y, grid)), rel=1e-14)
    with pytest.raises(ValueError, match="two points"):
        trapezoid_weights(np.array([1.0]))


# -- agreement with the games' code -----------------------------------------------------------------


def test_every_family_matches_crunch_synth_crps_integral() -> None:
    rng = np.random.default_rng(7)
    densities = every_kind_of_density(rng)
    densities.append({"type": "statistics", "name": "normal", "params": {"mu": 3.0, "sigma": 70.0}})
    densities.append({"type": "statistics", "name": "normal", "params": {"loc": -3.0, "scale": 40.0}})
    x = rng.normal(0, 150, len(densities))
    ours = crps_on_grid(densities, x, -1500, 1500, num_points=1024, evaluator="crunch_synth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.array([crunch_crps_integral(d, v, -1500, 1500, 1024) for d, v in zip(densities, x, strict=True)])
    np.testing.assert_allclose(ours, theirs, rtol=REL, atol=0)


def test_every_family_matches_the_condorgame_formula_on_densitypdf() -> None:
    rng = np.random.default_rng(8)
    densities = every_kind_of_density(rng)
    x = rng.normal(0, 150, len(densities))
    ours = crps_on_grid(densities, x, -1500, 1500, num_points=256, evaluator="condorgame")
    theirs = np.array([condor_reference(d, v, -1500, 1500) for d, v in zip(densities, x, strict=True)])
    np.testing.assert_allclose(ours, theirs, rtol=REL, atol=0)


def test_a_batch_with_several_grids_equals_each_grid_scored_alone() -> None:
    rng = np.random.default_rng(9)
    densities = [norm(float(rng.normal(0, 20)), float(rng.uniform(10, 90))) for _ in range(40)]
    x = rng.normal(0, 60, 40)
    t = np.where(np.arange(40) % 2 == 0, 1500.0, 1500.0 * math.sqrt(12))
    together = crps_on_grid(densities, x, -t, t, num_points=1024, evaluator="crunch_synth")
    for i in range(40):
        alone = crunch_crps_integral(densities[i], x[i], -t[i], t[i], 1024)
        assert together[i] == pytest.approx(alone, rel=REL)


def test_observation_on_a_grid_point_counts_the_indicator_there() -> None:
    grid = np.linspace(-10, 10, 21)  # x = grid[12] = 2.0 exactly
    d = norm(0.0, 2.0)
    assert crps_on_grid([d], [grid[12]], -10, 10, num_points=21, evaluator="crunch_synth")[0] == pytest.approx(
        crunch_crps_integral(d, grid[12], -10, 10, 21), rel=REL
    )


# -- where the two implementations part ------------------------------------------------------------


def test_statistics_densities_fail_in_densitypdf_but_not_in_crunch_synth() -> None:
    d = {"type": "statistics", "name": "normal", "params": {"mu": 0.0, "sigma": 50.0}}
    with pytest.raises(TypeError):
        densitypdf_pdf(d, 0.0)  # the package's own bug, which the condorgame evaluator inherits
    with pytest.raises(DensityError) as info:
        crps_on_grid([norm(0, 1), d], [0.0, 0.0], -1500, 1500, num_points=256, evaluator="condorgame")
    assert info.value.index == 1 and "statistics" in info.value.reason
    value = crps_on_grid([d], [10.0], -1500, 1500, num_points=1024, evaluator="crunch_synth")[0]
    assert value == pytest.approx(crunch_crps_integral(d, 10.0, -1500, 1500, 1024), rel=REL)


def test_zero_weight_mixture_is_zero_in_densitypdf_and_nan_times_zero_in_crunch_synth() -> None:
    # a component with a NaN pdf: densitypdf returns exactly 0 for the zero-weight mixture, crunch-synth 0 * NaN
    bad = {"type": "scipy", "name": "norm", "params": {"loc": 0.0, "scale": -1.0}}
    d = mixture((bad, 0.0), (norm(0.0, 10.0), 0.0))
    condor = crps_on_grid([d], [0.0], -100, 100, num_points=256, evaluator="condorgame")[0]
    assert condor == pytest.approx(condor_reference(d, 0.0, -100, 100), rel=REL)
    assert condor == pytest.approx(100.0, rel=1e-2)  # cdf 0: the area where z >= 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(crunch_crps_integral(d, 0.0, -100, 100, 1024))
    assert math.isnan(crps_on_grid([d], [0.0], -100, 100, num_points=1024, evaluator="crunch_synth")[0])


def test_nan_location_is_zero_in_crunch_synth_and_nan_in_densitypdf() -> None:
    d = {"type": "builtin", "name": "expon", "params": {"loc": math.nan, "scale": 10.0}}
    assert np.all(density_pdf([d], [-1.0, 0.0, 5.0], pdf="crunch_synth") == 0.0)
    assert np.all(np.isnan(density_pdf([d], [-1.0, 0.0, 5.0], pdf="densitypdf")))
    assert math.isnan(densitypdf_pdf(d, 5.0))


def test_densitypdf_refuses_more_than_three_mixture_levels() -> None:
    deep = mixture((mixture((mixture((mixture((norm(0, 10), 1)), 1)), 1)), 1))  # the normal sits at depth 4
    with pytest.raises(RecursionError):
        densitypdf_pdf(deep, 0.0)
    with pytest.raises(DensityError):
        crps_on_grid([deep], [0.0], -100, 100, num_points=256, evaluator="condorgame")
    value = crps_on_grid([deep], [3.0], -100, 100, num_points=1024, evaluator="crunch_synth")[0]
    assert value == pytest.approx(crunch_crps_integral(deep, 3.0, -100, 100, 1024), rel=REL)


def test_scipy_density_with_invalid_values_scores_nan_as_in_the_evaluators() -> None:
    d = {"type": "scipy", "name": "norm", "params": {"loc": 0.0, "scale": 0.0}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(crunch_crps_integral(d, 0.0, -10, 10, 1024))
    values, errors = crps_on_grid_checked([d], [0.0], -10, 10, num_points=1024, evaluator="crunch_synth")
    assert math.isnan(values[0]) and errors == [None]


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("density", "fragment"),
    [
        ({"type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": 0.0}}, "scale must be positive"),
        ({"type": "builtin", "name": "norm", "params": {"loc": 0.0}}, "missing parameter 'scale'"),
        ({"type": "builtin", "name": "normal", "params": {"loc": 0.0, "scale": 1.0}}, "unsupported builtin"),
        ({"type": "builtin", "name": "norm", "params": {"loc": "0", "scale": 1.0}}, "must be a number"),
        ({"type": "builtin", "name": "t", "params": {"df": 400.0, "loc": 0.0, "scale": 1.0}}, "OverflowError"),
        ({"type": "scipy", "name": "norm", "params": {"mu": 0.0}}, "takes"),
        ({"type": "scipy", "name": "t", "params": {"loc": 0.0}}, "requires"),
        ({"type": "scipy", "name": "not_a_distribution", "params": {}}, "unknown scipy"),
        ({"type": "kernel", "name": "norm", "params": {}}, "unknown density type"),
        ({"type": "mixture", "components": [{"density": norm(0, 1)}]}, "needs 'density' and 'weight'"),
        ({"type": "mixture"}, "components"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_densities_the_evaluators_raise_on_are_errors(density: object, fragment: str) -> None:
    values, errors = crps_on_grid_checked(
        [norm(0, 50), density], [0.0, 0.0], -1500, 1500, num_points=1024, evaluator="crunch_synth"
    )
    assert not math.isnan(values[0]) and errors[0] is None
    assert math.isnan(values[1]) and errors[1] is not None and fragment in errors[1]
    with pytest.raises(DensityError) as info:
        crps_on_grid([norm(0, 50), density], [0.0, 0.0], -1500, 1500, num_points=1024, evaluator="crunch_synth")
    assert info.value.index == 1


def test_student_t_with_a_huge_df_really_crashes_both_evaluators() -> None:
    d = {"type": "builtin", "name": "t", "params": {"df": 400.0, "loc": 0.0, "scale": 1.0}}
    with pytest.raises(OverflowError):
        crunch_crps_integral(d, 0.0, -10, 10, 1024)
    with pytest.raises(OverflowError):
        densitypdf_pdf(d, 0.0)


def test_invalid_arguments_are_refused() -> None:
    d = [norm(0, 1)]
    with pytest.raises(ValueError, match="evaluator"):
        crps_on_grid(d, [0.0], -1, 1, num_points=16, evaluator="synth")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_points"):
        crps_on_grid(d, [0.0], -1, 1, num_points=1, evaluator="crunch_synth")
    with pytest.raises(ValueError, match="t_min < t_max"):
        crps_on_grid(d, [0.0], 1, 1, num_points=16, evaluator="crunch_synth")
    with pytest.raises(ValueError, match="finite"):
        crps_on_grid(d, [0.0], -math.inf, 1, num_points=16, evaluator="crunch_synth")
    with pytest.raises(ValueError, match="observations"):
        crps_on_grid(d, [0.0, 1.0], -1, 1, num_points=16, evaluator="crunch_synth")
    with pytest.raises(ValueError, match="pdf must be one of"):
        parse_densities(d, pdf="scipy")  # type: ignore[arg-type]
    assert crps_on_grid([], [], -1, 1, num_points=16, evaluator="condorgame").shape == (0,)


# -- batch pdf --------------------------------------------------------------------------------------


def test_builtin_pdfs_equal_scipy() -> None:
    rng = np.random.default_rng(11)
    x = np.linspace(-1400, 1400, 301)
    for name in BUILTIN_FAMILIES:
        params = random_params(name, rng)
        ours = density_pdf([{"type": "builtin", "name": name, "params": params}], x)[0]
        expected = getattr(st, name).pdf(x, **params)
        finite = np.isfinite(expected)
        np.testing.assert_allclose(ours[finite], expected[finite], rtol=1e-9, atol=1e-300, err_msg=name)


def test_mixture_pdf_is_the_normalised_weighted_sum() -> None:
    x = np.array([-1.0, 0.0, 2.0])
    d = mixture((norm(0.0, 1.0), 3.0), (norm(2.0, 0.5), -1.0))  # weights are taken in absolute value
    expected = 0.75 * st.norm.pdf(x, 0, 1) + 0.25 * st.norm.pdf(x, 2, 0.5)
    np.testing.assert_allclose(density_pdf([d], x)[0], expected, rtol=1e-14)
    np.testing.assert_allclose(density_pdf([d], x, pdf="densitypdf")[0], expected, rtol=1e-14)


def test_density_pdf_takes_points_per_row_and_refuses_bad_shapes() -> None:
    d = [norm(0.0, 1.0), norm(1.0, 2.0)]
    x = np.array([[0.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(density_pdf(d, x), st.norm.pdf(x, [[0.0], [1.0]], [[1.0], [2.0]]), rtol=1e-14)
    with pytest.raises(ValueError, match="shape"):
        density_pdf(d, np.zeros((3, 2)))
    with pytest.raises(DensityError):
        density_pdf([norm(0.0, -1.0)], [0.0])
    batch = parse_densities(d)
    with pytest.raises(ValueError, match="out of range"):
        batch.pdf([0.0], 1, 5)
