"""Output types of the prediction games: pure validators that normalise or refuse, with a reason.

Order of use on a raw model output:

1. ``check_bounds(raw)`` / ``bounds_reason(raw)`` — depth, size and string limits, checked
   iteratively before anything else touches the value (``bounds``);
2. one validator of the competition's output type — each returns the **normalised** output or
   raises ``coordinator_core.errors.ValidationError`` whose message starts with the path of the
   field at fault, e.g. ``steps.300[4].components[1].density.params.scale: must be > 0, got -0.2``:

   * ``validate_density`` — one densitypdf density (``density``);
   * ``validate_density_path`` / ``validate_multi_resolution`` — ``predict`` / ``predict_all``
     answers (``density_path``), with ``check_steps`` for the configuration;
   * ``validate_quantiles`` (``quantiles``) and ``validate_sample_paths`` (``samples``).

The validators are safe on their own too: they recurse at most ``MAX_NESTING`` mixture levels,
compare sizes before iterating, and never ``repr`` a container. Configuration mistakes (a step that
does not divide the horizon) raise ``ConfigurationError`` instead: they are not the model's fault.
"""

from coordinator_core.outputs.bounds import DEFAULT_BOUNDS, Bounds, bounds_reason, check_bounds
from coordinator_core.outputs.density import (
    CONDOR_MAX_COMPONENTS,
    CRUNCH_SYNTH_MAX_COMPONENTS,
    FAMILIES,
    MAX_NESTING,
    WEIGHT_SUM_TOLERANCE,
    count_components,
    validate_density,
)
from coordinator_core.outputs.density_path import check_steps, validate_density_path, validate_multi_resolution
from coordinator_core.outputs.quantiles import validate_quantiles
from coordinator_core.outputs.samples import validate_sample_paths

__all__ = [
    "CONDOR_MAX_COMPONENTS",
    "CRUNCH_SYNTH_MAX_COMPONENTS",
    "DEFAULT_BOUNDS",
    "FAMILIES",
    "MAX_NESTING",
    "WEIGHT_SUM_TOLERANCE",
    "Bounds",
    "bounds_reason",
    "check_bounds",
    "check_steps",
    "count_components",
    "validate_density",
    "validate_density_path",
    "validate_multi_resolution",
    "validate_quantiles",
    "validate_sample_paths",
]
