"""Checks run at start by every entry point, before any work: paths, and variables no setting reads.

* ``check_paths(settings, needs={...})`` checks the files and folders a command needs and raises
  one ``ConfigurationError`` naming each variable and the path tried:

  - ``"models"``: ``MODELS_DIR`` exists, is a folder, and holds at least one model folder
    (``<name>/main.py``); only with ``MODEL_GATEWAY=local``, the one gateway that reads it;
  - ``"configs"``: ``SCHEDULED_PREDICTION_CONFIGS_PATH``, when set, exists and is a valid config
    file (JSON, every entry valid, no unknown key);
  - ``"replay"``: ``REPLAY_PATH`` exists for the ``replay`` source, per subject when it contains
    ``{subject}``; the shipped dataset serves BTC only.

* ``unknown_variables()`` lists the variables of the environment, ``.env`` and ``.local.env``
  that look like the coordinator's (they start with a prefix of a setting's name) but that no
  setting reads, each with the nearest setting; ``warn_unknown_variables()`` logs them once per
  process.

* ``check_scoring(contract, settings)`` runs the contract's scoring rule on sample rounds and
  refuses a rule that scores distinct predictions all the same (unless ``ALLOW_CONSTANT_SCORING``);
  ``bootstrap.build_runtime`` calls it, so every entry point does.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from coordinator_core.config import DEFAULT_REPLAY_PATH, PROJECT_DIR, Settings
from coordinator_core.errors import ConfigurationError

logger = logging.getLogger("coordinator_core.config")

NEEDS = frozenset({"models", "configs", "replay"})


# -- paths --------------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    return str(path) if path.is_absolute() else f"{path} (in {Path.cwd()})"


def check_paths(settings: Settings, *, needs: Iterable[str]) -> None:
    """Raise ``ConfigurationError`` if a path the caller ``needs`` is missing or unusable."""
    needs = set(needs)
    if needs - NEEDS:
        raise ValueError(f"unknown needs {sorted(needs - NEEDS)}; use {sorted(NEEDS)}")
    problems: list[str] = []
    if "models" in needs and settings.model_gateway == "local":
        problems += _models_problems(settings)
    if "configs" in needs and settings.scheduled_prediction_configs_path:
        from coordinator_core.services.configs import load_config_file

        try:
            load_config_file(settings.scheduled_prediction_configs_path)
        except ConfigurationError as exc:
            problems.append(str(exc))
    if "replay" in needs and "replay" in settings.sources:
        problems += _replay_problems(settings)
    if problems:
        raise ConfigurationError("; ".join(problems))


def _models_problems(settings: Settings) -> list[str]:
    given = Path(settings.models_dir)
    path = settings.models_path
    if not path.exists():
        tried = [str(Path.cwd() / given)] if not given.is_absolute() else [str(given)]
        if not given.is_absolute():
            tried.append(str(PROJECT_DIR / given))
        return [f"MODELS_DIR: {settings.models_dir} does not exist (looked for {' and '.join(tried)})"]
    if not path.is_dir():
        return [f"MODELS_DIR: {_shown(path)} is a file, not a folder of model folders"]
    models = [p for p in path.iterdir() if p.is_dir() and (p / "main.py").is_file()]
    if not models:
        return [
            f"MODELS_DIR: {_shown(path)} holds no model folder; each model is a folder with a main.py, "
            f"e.g. {path / 'my_model' / 'main.py'}"
        ]
    return []


def _replay_problems(settings: Settings) -> list[str]:
    template = settings.replay_path
    if "{subject" not in template:
        path = Path(template)
        if not path.exists():
            return [f"REPLAY_PATH: {_shown(path)} does not exist"]
        if not path.is_file():
            return [f"REPLAY_PATH: {_shown(path)} is not a file (a CSV with header ts,open,high,low,close,volume)"]
        others = [s for s in settings.subjects if s != "BTC"]
        if path.resolve() == DEFAULT_REPLAY_PATH.resolve() and others:
            return [
                f"REPLAY_PATH: the shipped dataset is BTC only and FEED_SUBJECTS lists {', '.join(others)}; set "
                "REPLAY_PATH to a CSV per subject, e.g. data/{subject}.csv"
            ]
        return []
    problems = []
    for subject in settings.subjects:
        path = Path(template.format(subject=subject, subject_lower=subject.lower()))
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a file"
            problems.append(f"REPLAY_PATH: {_shown(path)} {what} (subject {subject}, from REPLAY_PATH={template!r})")
    return problems


# -- variables that no setting reads -------------------------------------------------------------

# Words too common to mark a variable as the coordinator's by themselves: such a field's prefix is
# its first two words (LOCAL_MODEL_, DATA_PROVIDER_, READ_DATABASE_, ...), or none.
GENERIC_WORDS = frozenset({"LOCAL", "DATA", "READ", "MISSING", "COMPUTE", "DATABASE", "NETWORK"})
# The project's own variables that no setting reads (tests, benchmarks, deployment).
KNOWN_VARIABLES = frozenset(
    {
        "COORDINATOR_HOME",  # prefect.yaml: where deployed runs execute
        "COORDINATOR_TEST_POSTGRES_URL",  # tests: the Postgres server the suite may use
        "COORDINATOR_REQUIRE_POSTGRES",  # tests: fail instead of skip without Postgres
        "BENCH_POSTGRES_URL",  # benchmarks
        "API_SCHEMATHESIS_EXAMPLES",  # tests: examples per API operation
    }
)
EXTRA_PREFIXES = ("COORDINATOR_",)


def setting_names() -> list[str]:
    return sorted(name.upper() for name in Settings.model_fields)


def project_prefixes() -> tuple[str, ...]:
    """Prefixes that mark a variable as the coordinator's, derived from the settings' names."""
    prefixes = set(EXTRA_PREFIXES)
    for name in setting_names():
        words = name.split("_")
        if len(words) < 2:
            continue
        if words[0] not in GENERIC_WORDS:
            prefixes.add(words[0] + "_")
        elif len(words) > 2:
            prefixes.add("_".join(words[:2]) + "_")
    return tuple(sorted(prefixes))


def unknown_variables(
    environ: Mapping[str, str] | None = None, env_files: Iterable[str | Path] = (".env", ".local.env")
) -> list[str]:
    """A message per variable that looks like a setting but is none, naming the nearest one."""
    from dotenv import dotenv_values

    sources: dict[str, str] = {name: "" for name in (os.environ if environ is None else environ)}
    for file in env_files:
        if Path(file).is_file():
            for name in dotenv_values(file):
                sources.setdefault(name, f" (in {file})")
    settings = set(setting_names())
    known = settings | KNOWN_VARIABLES
    prefixes = project_prefixes()
    messages = []
    for name, where in sorted(sources.items()):
        upper = name.upper()
        if upper in known or not upper.startswith(prefixes):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "no setting is close (see .local.env.example)"
        messages.append(f"{name}{where} is not a setting; {hint}")
    return messages


_warned: set[str] = set()


def warn_unknown_variables(**kwargs: Any) -> list[str]:
    """Log each message of ``unknown_variables`` as a warning, once per process; returns the new ones."""
    fresh = [message for message in unknown_variables(**kwargs) if message not in _warned]
    for message in fresh:
        _warned.add(message)
        logger.warning(message)
    return fresh


# -- the scoring function on sample inputs ---------------------------------------------------------

#: Predicted returns of the point samples: both signs, zero, small and large (a sign-only rule and a
#: magnitude rule both tell them apart).
SAMPLE_RETURNS = (-0.02, -0.004, 0.0, 0.003, 0.012)
#: (entry, exit) prices of the point samples' ground truths: down, up a little, up more.
SAMPLE_PRICES = ((100.0, 99.0), (100.0, 100.5), (100.0, 101.5))
#: Spreads of the density samples, as a fraction of the price per step.
SAMPLE_SCALES = (0.0005, 0.003, 0.02)

_checked: set[tuple[Any, ...]] = set()  # the rules that passed (held: their ids cannot be reused)


def scoring_rule_path(contract: Any, settings: Settings | None = None) -> str:
    """The dotted path of the rule that scores ``contract``'s predictions: ``score_round`` when the
    contract has one, else its ``scoring_function`` (``SCORING_FUNCTION`` when that replaced it)."""
    rule = contract.score_round or contract.scoring_function
    name = f"{getattr(rule, '__module__', '?')}:{getattr(rule, '__qualname__', type(rule).__name__)}"
    if (
        settings is not None
        and contract.score_round is None
        and settings.scoring_function.replace(":", ".") == (name.replace(":", "."))
    ):
        return settings.scoring_function
    return name


def scoring_samples(contract: Any) -> list[tuple[list[Any], dict[str, Any], dict[str, Any]]]:
    """Sample rounds ``(outputs, ground truth, scope)`` to run the contract's scoring rule on: the
    contract's own ``scoring_samples`` when it has them, else built-in ones for point forecasts of
    a return (``truth="price_pair"``) and for density paths (``truth="price_path"``); ``[]`` when
    no sample can be built (the check is then skipped, with a warning)."""
    if contract.scoring_samples is not None:
        return [(list(o), dict(t), dict(s)) for o, t, s in contract.scoring_samples()]
    scope = contract.scope.model_dump()
    if contract.output_kind == "point" and contract.truth == "price_pair":
        outputs = []
        for value in SAMPLE_RETURNS:
            try:
                outputs.append(contract.check_output({"value": value}, scope))
            except Exception:
                continue
        if len(outputs) < 2:
            return []
        truths = [
            contract.resolve_ground_truth({"price": entry, "ts": 0}, {"price": exit, "ts": scope["horizon_seconds"]})
            for entry, exit in SAMPLE_PRICES
        ]
        return [(outputs, truth, scope) for truth in truths if truth is not None]
    if contract.output_kind == "density_path" and contract.truth == "price_path":
        return _density_samples(contract, scope)
    return []


def _density_samples(contract: Any, scope: dict[str, Any]) -> list[tuple[list[Any], dict[str, Any], dict[str, Any]]]:
    horizon = int(scope["horizon_seconds"])
    steps = [int(s) for s in scope.get("steps") or [scope["step_seconds"]]]
    finest = min(steps)
    start, price = 1_700_000_000 - 1_700_000_000 % horizon, 60_000.0
    outputs = []
    for spread in SAMPLE_SCALES:
        raw = {
            str(step): [
                {"step": k * step, "type": "builtin", "name": "norm", "params": {"loc": 0.0, "scale": spread * price}}
                for k in range(1, horizon // step + 1)
            ]
            for step in steps
        }
        try:
            outputs.append(contract.check_output(raw, scope))
        except Exception:
            continue
    samples = []
    for drift in (-0.0004, 0.0001, 0.0007):
        series = [[start + i * finest, price * (1 + drift) ** i] for i in range(horizon // finest + 1)]
        truth = {
            "subject": scope.get("subject", "BTC"),
            "round_ts": start,
            "horizon_seconds": horizon,
            "steps": steps,
            "settled_ts": series[-1][0],
            "series": series,
            "source": "sample",
        }
        samples.append((outputs, truth, scope))
    return samples if len(outputs) >= 2 else []


def check_scoring(contract: Any, settings: Settings) -> None:
    """Run the contract's scoring rule on sample rounds (distinct predictions against sample ground
    truths) and raise ``ConfigurationError`` if it gives every one the same score: a stub left in
    place would pay everyone the same. ``ALLOW_CONSTANT_SCORING=true`` lets such a rule start. A
    rule that fails on the samples is left to the run's own checks (a warning here)."""
    if settings.allow_constant_scoring:
        return
    key = (
        contract.score_round,
        contract.scoring_function,
        contract.scoring_samples,
        contract.resolve_ground_truth,
        contract.validate_output,
        contract.output_type,
        contract.output_kind,
        contract.truth,
    )
    if key in _checked:
        return
    path = scoring_rule_path(contract, settings)
    samples = scoring_samples(contract)
    if not samples:
        logger.warning("scoring preflight skipped: no sample inputs for %s (give the contract scoring_samples)", path)
        return
    values: list[float] = []
    errors: list[str] = []
    for outputs, truth, scope in samples:
        for result in contract.score_batch(outputs, truth, scope, timeout=settings.scoring_timeout_seconds):
            if isinstance(result, dict):
                values.append(float(result["value"]))
            else:
                errors.append(str(result))
    if len(values) < 2:
        logger.warning(
            "scoring preflight: %s scored %d of the samples (%s)", path, len(values), "; ".join(errors[:2]) or "none"
        )
        return
    if len({float(f"{v:.10g}") for v in values}) == 1:
        raise ConfigurationError(
            f"scoring function {path} gives the same score ({values[0]:g}) to all {len(values)} distinct sample "
            f"predictions ({len(samples)} sample ground truths): it looks like a stub, and every model would be paid "
            "alike. Fix it, or set ALLOW_CONSTANT_SCORING=true to start anyway"
        )
    _checked.add(key)
