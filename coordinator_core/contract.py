"""The competition, configured in Python: ``CrunchContract`` and the loader of extension points.

``CRUNCH_CONTRACT=module:attr`` names a ``CrunchContract`` instance (or a zero-argument factory).
Environment extension points replace single callables of the contract and are validated at start:
``SCORING_FUNCTION``, ``INFERENCE_INPUT_BUILDER``, ``INFERENCE_OUTPUT_VALIDATOR``,
``MODEL_SCORE_AGGREGATOR`` and ``LEADERBOARD_RANKER``.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from coordinator_core.domain.emission_strategy import EmissionStrategy, TiersEmission
from coordinator_core.domain.ranking import VIRTUAL_PREFIX, default_rank
from coordinator_core.domain.ranking import is_virtual as is_virtual
from coordinator_core.emission import default_build_emission
from coordinator_core.errors import ConfigurationError, ValidationError
from coordinator_core.scoring.ground_truth import price_return
from coordinator_core.scoring.rules import absolute_error_bps


class InferenceOutput(BaseModel):
    """Default model output: the predicted return of the subject over the horizon."""

    model_config = ConfigDict(extra="forbid")
    value: float

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class ScoreResult(BaseModel):
    """Default score: ``value`` (higher is better unless the ranking says ``asc``)."""

    model_config = ConfigDict(extra="allow")
    value: float
    success: bool = True
    failed_reason: str | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("score value must be a finite number")
        return value


class PredictionScope(BaseModel):
    model_config = ConfigDict(extra="allow")
    subject: str = "BTC"
    horizon_seconds: int = Field(3600, ge=1)
    step_seconds: int = Field(900, ge=1)
    steps: list[int] | None = Field(None, description="several step sizes of one horizon (multi-resolution)")


class RoundProfile(BaseModel):
    """A forecast profile (the games' ``FORECAST_PROFILES``): every ``interval`` seconds, one round
    per subject over ``horizon`` at each of ``steps``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    horizon: int = Field(ge=1)
    steps: list[int] = Field(min_length=1)
    interval: int = Field(ge=1)


class AggregationWindow(BaseModel):
    hours: int = Field(ge=1)


class Aggregation(BaseModel):
    windows: dict[str, AggregationWindow] = Field(
        default_factory=lambda: {
            "score_recent": AggregationWindow(hours=24),
            "score_steady": AggregationWindow(hours=72),
            "score_anchor": AggregationWindow(hours=168),
        }
    )
    ranking_key: str = "score_recent"
    ranking_direction: Literal["desc", "asc"] = "desc"

    @model_validator(mode="after")
    def _key_is_window(self) -> Aggregation:
        if self.ranking_key not in self.windows:
            raise ValueError(f"ranking_key {self.ranking_key!r} is not one of the windows {sorted(self.windows)}")
        return self


# Keys of other engines (or plausible slips) and what this one reads instead; None = not read at all.
SCHEDULE_RENAMES: dict[str, str | None] = {
    "every_seconds": "prediction_interval_seconds",
    "interval_seconds": "prediction_interval_seconds",
    "prediction_interval": "prediction_interval_seconds",
    "resolve_horizon_seconds": "resolve_after_seconds",
    "resolve_after": "resolve_after_seconds",
}
CONFIG_RENAMES: dict[str, str | None] = {
    "scope": "scope_template",
    "template": "scope_template",
    "enabled": "active",
    "metadata": "meta",
    "id": None,
}
_NOT_READ = {"id": "ids derive from scope_key here, so it would be ignored: remove it"}


def unknown_keys(
    data: dict[str, Any], known: Any, renames: dict[str, str | None], where: str = "", otherwise: str = ""
) -> list[str]:
    """One message per key of ``data`` that is not in ``known``, saying what to write instead
    (``otherwise`` is added to the hint of a key that is no known rename)."""
    import difflib

    problems = []
    for key in data:
        if key in known:
            continue
        if key in renames:
            target = renames[key]
            hint = f"use {target!r} instead" if target else _NOT_READ.get(key, "it is not read: remove it")
        else:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"the keys are {', '.join(known)}"
            hint += otherwise
        problems.append(f"{where}unknown key {key!r} ({hint})")
    return problems


class Schedule(BaseModel):
    """When a config's rounds run. Unknown keys are refused (``every_seconds`` is not read here)."""

    model_config = ConfigDict(extra="forbid")
    prediction_interval_seconds: int = Field(60, ge=1)
    resolve_after_seconds: int | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            problems = unknown_keys(data, cls.model_fields, SCHEDULE_RENAMES, "schedule: ")
            if problems:
                raise ValueError("; ".join(problems))
        return data


class ScheduledPredictionConfig(BaseModel):
    """One entry of ``scheduled_prediction_configs.json`` (the spec's format).

    Unknown keys are refused, at the top level and in ``schedule``, with a message naming the key,
    the config's ``scope_key`` and what to write instead; ``meta`` holds free-form data.
    """

    model_config = ConfigDict(extra="forbid")
    scope_key: str = Field(min_length=1)
    scope_template: dict[str, Any] = Field(default_factory=dict)
    schedule: Schedule = Field(default_factory=Schedule)
    active: bool = True
    order: int = 0
    meta: dict[str, Any] = Field(default_factory=dict, description="free-form data, stored as given")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        problems = unknown_keys(data, cls.model_fields, CONFIG_RENAMES, otherwise="; free-form data goes under 'meta'")
        if isinstance(data.get("schedule"), dict):
            problems += unknown_keys(data["schedule"], Schedule.model_fields, SCHEDULE_RENAMES, "schedule: ")
        if problems:
            scope_key = data.get("scope_key")
            label = f"config {scope_key!r}" if isinstance(scope_key, str) and scope_key else "config without scope_key"
            raise ValueError(f"{label}: {'; '.join(problems)}")
        return data


OutputKind = Literal["point", "density_path", "quantiles", "sample_paths"]
ArgumentType = Literal["JSON", "STRING", "INT", "DOUBLE"]
# "steps" (a JSON list of step seconds) lets a contract call predict_all(subject, horizon, steps), the games' API
CALL_VALUES = {"tick": ("data",), "predict": ("subject", "horizon_seconds", "step_seconds", "steps")}


class CallArgument(BaseModel):
    """One argument of a model call: which value, its wire type, positional or by keyword.

    Types are the model-runner's: JSON (dict/list), STRING, INT (8-byte signed), DOUBLE. Both
    gateways convert the value to that type (a non-integral INT is a configuration error).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str
    type: ArgumentType = "JSON"
    keyword: str | None = Field(None, description="pass as this keyword argument; None = positional")

    def convert(self, raw: Any) -> Any:
        if self.type == "STRING":
            return str(raw)
        if self.type == "DOUBLE":
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ConfigurationError(f"call argument {self.value!r}: {raw!r} is not a number (DOUBLE)")
            return float(raw)
        if self.type == "INT":
            if isinstance(raw, bool) or not isinstance(raw, int | float) or int(raw) != raw:
                raise ConfigurationError(f"call argument {self.value!r}: {raw!r} is not an integer (INT)")
            return int(raw)
        return raw


class ModelMethod(BaseModel):
    """The method a gateway calls on every model and the arguments it passes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    arguments: tuple[CallArgument, ...] = ()

    def bind(self, values: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, str, Any]]]:
        """``([(type, value), ...] positional, [(keyword, type, value), ...])`` for this call."""
        positional: list[tuple[str, Any]] = []
        keywords: list[tuple[str, str, Any]] = []
        for argument in self.arguments:
            value = argument.convert(values[argument.value])
            if argument.keyword:
                keywords.append((argument.keyword, argument.type, value))
            else:
                positional.append((argument.type, value))
        return positional, keywords


class ModelCalls(BaseModel):
    """How the gateways call the models (both backends honour it).

    ``tick`` receives the value ``data`` (the round input; ``None`` = never tick); ``predict`` can
    receive ``subject``, ``horizon_seconds`` and ``step_seconds``. The default is the spec's
    ``tick(data)`` with one JSON argument and ``predict(subject, horizon_seconds, step_seconds)``
    as STRING, INT, INT, all positional.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    tick: ModelMethod | None = ModelMethod(name="tick", arguments=(CallArgument(value="data", type="JSON"),))
    predict: ModelMethod = ModelMethod(
        name="predict",
        arguments=(
            CallArgument(value="subject", type="STRING"),
            CallArgument(value="horizon_seconds", type="INT"),
            CallArgument(value="step_seconds", type="INT"),
        ),
    )

    @model_validator(mode="after")
    def _known_values(self) -> ModelCalls:
        for kind, method in (("tick", self.tick), ("predict", self.predict)):
            if method is None:
                continue
            unknown = [a.value for a in method.arguments if a.value not in CALL_VALUES[kind]]
            if unknown:
                raise ValueError(f"{kind} call: unknown value(s) {unknown}; use {', '.join(CALL_VALUES[kind])}")
            keywords = [a.keyword for a in method.arguments if a.keyword]
            if len(set(keywords)) != len(keywords):
                raise ValueError(f"{kind} call: a keyword is used twice")
        return self

    def methods(self) -> list[str]:
        return [m.name for m in (self.tick, self.predict) if m is not None]


EnsembleKind = Literal["mean", "mixture", "quantiles"]
#: the output kind each ensemble kind combines
ENSEMBLE_OUTPUTS: dict[str, str] = {"mean": "point", "mixture": "density_path", "quantiles": "quantiles"}


class EnsembleSpec(BaseModel):
    """A virtual ensemble: scored like a model every round under the id ``ensemble:<name>``, shown on
    the leaderboard (``virtual: true``, no rank, no participant) and never paid.

    ``kind``: ``mean`` (the mean of point forecasts), ``mixture`` (the equal-weight mixture of the
    members' densities, ``density_path`` outputs) or ``quantiles`` (the members' quantiles averaged
    level by level); see ``coordinator_core.contribution.ensembles``. Its members are every paid
    model whose output of the round passed validation (FAILED/ABSENT answers are left out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: EnsembleKind = "mean"

    @property
    def model_id(self) -> str:
        return f"{VIRTUAL_PREFIX}{self.name}"


class ClusterRule(BaseModel):
    """Clone clusters at every checkpoint (``coordinator_core.contribution.clusters``): streams of
    point forecasts whose lead-lag correlation over the period reaches ``threshold`` (at a lag of up
    to ``max_lag`` rounds, over at least ``min_overlap`` shared rounds) share one emission slot."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    threshold: float = Field(0.99, gt=0, le=1)
    max_lag: int = Field(6, ge=0)
    min_overlap: int = Field(72, ge=3)


def default_build_input(subject: str, candles: list[dict[str, Any]], asof_ts: int, granularity: str) -> dict[str, Any]:
    """The model input: newest closed candles, ascending."""
    return {"symbol": subject, "subject": subject, "asof_ts": asof_ts, "granularity": granularity, "candles": candles}


def default_aggregate_snapshot(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every numeric (non-boolean) key of the score results."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for result in results:
        for key, value in result.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


def custom_aggregator(contract: CrunchContract) -> Callable[[list[dict[str, Any]]], dict[str, Any]] | None:
    """The contract's aggregator when it is not the default mean (``MODEL_SCORE_AGGREGATOR``): it
    then scores the leaderboard windows and the checkpoints (``domain.windows``)."""
    return None if contract.aggregate_snapshot is default_aggregate_snapshot else contract.aggregate_snapshot


class CrunchContract(BaseModel):
    """Types, scope, aggregation and callables of one competition."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    raw_input_type: type[BaseModel] | None = None
    output_type: type[BaseModel] = InferenceOutput
    score_type: type[BaseModel] = ScoreResult
    scope: PredictionScope = Field(default_factory=PredictionScope)
    aggregation: Aggregation = Field(default_factory=Aggregation)
    scheduled_configs: list[ScheduledPredictionConfig] | None = None
    calls: ModelCalls = Field(default_factory=ModelCalls)

    crunch_pubkey: str = ""
    compute_provider: str | None = None
    data_provider: str | None = None

    build_input: Callable[..., dict[str, Any]] = default_build_input
    validate_output: Callable[[Any], dict[str, Any]] | None = None
    resolve_ground_truth: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] = price_return
    scoring_function: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] = absolute_error_bps
    aggregate_snapshot: Callable[[list[dict[str, Any]]], dict[str, Any]] = default_aggregate_snapshot
    rank: Callable[[list[dict[str, Any]], str, str], list[dict[str, Any]]] = default_rank
    build_emission: Callable[..., dict[str, Any]] = default_build_emission
    emission: EmissionStrategy = Field(
        default_factory=TiersEmission,
        description="how the ranking becomes shares: tiers (default), softmax, proportional or rank_decay "
        "(coordinator_core.domain.emission_strategy); a custom build_emission hook replaces it",
    )

    ensembles: list[EnsembleSpec] = Field(
        default_factory=list,
        description="virtual ensembles scored every round as 'ensemble:<name>' and never paid; the first one "
        "is the ensemble each model's contribution is measured on",
    )
    clusters: ClusterRule = Field(
        default_factory=ClusterRule, description="clone clusters: one emission slot per cluster at every checkpoint"
    )

    # -- probabilistic games (see coordinator_core.games.presets) -------------------------------
    output_kind: OutputKind = Field(
        "point",
        description="built-in output validation: 'point' (output_type), 'density_path' (densitypdf densities "
        "per step of the horizon, at every step of the config's 'steps'), 'quantiles', 'sample_paths'",
    )
    max_components: int = Field(3, ge=1, description="density_path: leaf mixture components per density")
    truth: Literal["price_pair", "price_path", "dataset"] = Field(
        "price_pair",
        description="'price_pair': resolve_ground_truth(entry, exit); 'price_path': the stored prices from the "
        "round's timestamp to its settlement point, for path rules (the games' increments); 'dataset': "
        "resolve_truth(scope, input meta, now), e.g. a tournament's targets",
    )
    round_input: Callable[[str, datetime], dict[str, Any] | None] | None = Field(
        None,
        description="tournament mode: (subject, now) -> the round's dataset (sent once to every model), "
        "instead of the feed's candles; None outside the dataset (no round)",
    )
    resolve_truth: Callable[[Mapping[str, Any], Mapping[str, Any], datetime], dict[str, Any] | None] | None = Field(
        None, description="truth='dataset': (scope, input meta, now) -> the round's ground truth, None until known"
    )
    score_round: Callable[[Sequence[Any], Mapping[str, Any], Mapping[str, Any]], list[Any]] | None = Field(
        None,
        description="batch scorer of one round: (outputs, truth, scope) -> one result dict or ValidationError "
        "per output; replaces scoring_function when set",
    )
    tick_format: Literal["input", "price_ticks"] = Field(
        "input",
        description="'input': tick(build_input(...)) to every model; 'price_ticks': the games' {subject: "
        "[(ts, price), ...]}, the history window on a model's first tick, then only new points",
    )
    tick_history_seconds: int = Field(30 * 86_400, ge=0, description="price_ticks: the first tick's history")
    settlement_latency_seconds: int = Field(
        0, ge=0, description="price_path: how long after its last point a round waits for late prices"
    )
    profile: RoundProfile | None = Field(
        None, description="the default configs: one per subject with this horizon, steps and interval"
    )
    supported_subjects: list[str] | None = Field(None, description="subjects the rules can score (None: any)")
    metrics: tuple[str, ...] | None = Field(
        None,
        description="the leaderboard's metric columns over the ranking window (coordinator_core.domain.metrics."
        "METRICS); None: the default of the output kind (domain.metrics.default_metrics); () shows none",
    )
    scoring_samples: Callable[[], Sequence[tuple[Sequence[Any], Mapping[str, Any], Mapping[str, Any]]]] | None = Field(
        None,
        description="sample rounds (outputs, ground truth, scope) the scoring preflight scores at start "
        "(coordinator_core.preflight.check_scoring); None: built-in samples for point returns and density paths",
    )

    @model_validator(mode="after")
    def _ensembles_fit(self) -> CrunchContract:
        names = [e.name for e in self.ensembles]
        if len(set(names)) != len(names):
            raise ValueError(f"ensembles: a name is used twice ({names})")
        for spec in self.ensembles:
            wanted = ENSEMBLE_OUTPUTS[spec.kind]
            if wanted != self.output_kind:
                raise ValueError(
                    f"ensemble {spec.name!r}: kind {spec.kind!r} combines {wanted!r} outputs, "
                    f"the contract's output_kind is {self.output_kind!r}"
                )
        if getattr(self.emission, "kind", None) == "contribution" and not self.ensembles:
            raise ValueError("emission kind 'contribution' needs an ensemble (contribution is measured on the first)")
        if self.metrics is not None:
            from coordinator_core.domain.metrics import check_metrics

            check_metrics(self.metrics, self.output_kind)
        return self

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The leaderboard's metric groups: ``metrics``, or the output kind's default."""
        from coordinator_core.domain.metrics import default_metrics

        return self.metrics if self.metrics is not None else default_metrics(self.output_kind)

    # -- behaviour used by the services ------------------------------------------------------
    @property
    def history_seconds(self) -> int:
        """How far back the feed must reach before the first round: the first price tick's history."""
        return self.tick_history_seconds if self.tick_format == "price_ticks" else 0

    def check_output(self, raw: Any, scope: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate a model's output for the round's ``scope``; raise ``ValidationError`` with the
        reason. Never coerces (the built-in kinds normalise to one stored form)."""
        if self.validate_output is None and self.output_kind != "point":
            return check_probabilistic(self.output_kind, raw, scope or {}, self.max_components)
        if self.validate_output is not None:
            try:
                return dict(self.validate_output(raw))
            except Exception as exc:  # the hook's own error is the reason
                raise ValidationError(f"invalid output: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValidationError(
                f'invalid output: expected an object like {{"value": 0.001}}, got {type(raw).__name__} {raw!r:.80}'
            )
        if self.output_type is InferenceOutput:
            fast = _plain_value(raw)
            if fast is not None:
                return fast
        try:
            return self.output_type.model_validate(raw, strict=True).model_dump()
        except PydanticValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'output'}: {e['msg']}" for e in exc.errors())
            raise ValidationError(f"invalid output: {reasons}") from None

    def score(self, prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
        """Score one prediction; raise ``ValidationError`` if the rule fails or returns a bad shape."""
        try:
            result = self.scoring_function(prediction, ground_truth)
        except Exception as exc:
            raise ValidationError(f"scoring function raised {type(exc).__name__}: {exc}") from exc
        return self.check_score(result)

    def score_batch(
        self,
        outputs: Sequence[Any],
        ground_truth: Mapping[str, Any],
        scope: Mapping[str, Any],
        timeout: float | None = None,
    ) -> list[dict[str, Any] | ValidationError]:
        """Score every output of one round: by ``score_round`` when the contract has one (all at
        once), else one ``scoring_function`` call each, each call with the deadline ``timeout``
        (``scoring.guard``). Per output: the validated result, or the ``ValidationError`` that
        fails that prediction only."""
        from coordinator_core.scoring.guard import Raised, TimedOut, call_each

        def failure(outcome: Any) -> ValidationError | None:
            if isinstance(outcome, Raised):
                return ValidationError(f"scoring function raised {type(outcome.error).__name__}: {outcome.error}")
            if isinstance(outcome, TimedOut):
                return ValidationError(
                    f"scoring function did not answer within {outcome.seconds:g} s (SCORING_TIMEOUT_SECONDS)"
                )
            return None

        if self.score_round is None:
            truth = dict(ground_truth)
            rule = self.scoring_function
            outcomes = call_each([partial(rule, output, truth) for output in outputs], timeout)
            out: list[dict[str, Any] | ValidationError] = []
            for outcome in outcomes:
                error = failure(outcome)
                if error is None:
                    try:
                        out.append(self.check_score(outcome))
                    except ValidationError as exc:
                        out.append(exc)
                else:
                    out.append(error)
            return out
        (outcome,) = call_each([partial(self.score_round, outputs, ground_truth, scope)], timeout)
        error = failure(outcome)
        if error is not None:  # the rule, not a model, failed: every prediction of the round fails
            return [error] * len(outputs)
        raw = outcome
        if len(raw) != len(outputs):
            reason = ValidationError(f"score_round returned {len(raw)} results for {len(outputs)} outputs")
            return [reason] * len(outputs)
        results: list[dict[str, Any] | ValidationError] = []
        for item in raw:
            if isinstance(item, ValidationError):
                results.append(item)
                continue
            try:
                results.append(self.check_score(item))
            except ValidationError as exc:
                results.append(exc)
        return results

    def check_score(self, result: Any) -> dict[str, Any]:
        """A scoring rule's result, validated by ``score_type`` (strict; never coerced)."""
        if self.score_type is ScoreResult:
            fast = _plain_score(result)
            if fast is not None:
                return fast
        try:
            return self.score_type.model_validate(result, strict=True).model_dump()
        except PydanticValidationError as exc:
            raise ValidationError(
                f"scoring function returned an invalid score {result!r:.120}: {exc.errors()[0]['msg']}"
            ) from None


def check_probabilistic(kind: OutputKind, raw: Any, scope: Mapping[str, Any], max_components: int) -> dict[str, Any]:
    """The built-in probabilistic outputs, stored as JSON objects:

    * ``density_path``: ``{"<step>": [density, ...]}`` for every step of the scope (``steps``, else
      ``step_seconds``): ``horizon // step`` densities each (``outputs.validate_multi_resolution``);
      a bare list is accepted when the scope has one step (a ``predict`` answer);
    * ``quantiles``: ``{"levels": [...], "values": [...]}``;
    * ``sample_paths``: ``{"start_time", "time_increment", "paths"}`` (Synth's format).
    """
    from coordinator_core import outputs

    horizon = int(scope.get("horizon_seconds") or 0)
    steps = [int(s) for s in scope.get("steps") or [scope.get("step_seconds") or horizon]]
    if kind == "density_path":
        if isinstance(raw, list) and len(steps) == 1:
            return {
                str(steps[0]): outputs.validate_density_path(
                    raw, horizon=horizon, step=steps[0], max_components=max_components
                )
            }
        normal = outputs.validate_multi_resolution(raw, horizon=horizon, steps=steps, max_components=max_components)
        return {str(step): densities for step, densities in normal.items()}
    if kind == "quantiles":
        return outputs.validate_quantiles(raw)
    return outputs.validate_sample_paths(raw, horizon=horizon, time_increment=steps[0])


def _finite_number(value: Any) -> bool:
    return type(value) in (float, int) and math.isfinite(value)


def _plain_value(raw: Any) -> dict[str, Any] | None:
    """``InferenceOutput``'s strict validation for the common case ``{"value": <finite number>}``,
    without pydantic (hot path of a round); ``None`` sends anything else to pydantic."""
    if type(raw) is dict and len(raw) == 1 and _finite_number(raw.get("value")):
        return {"value": float(raw["value"])}
    return None


def _plain_score(result: Any) -> dict[str, Any] | None:
    """``ScoreResult``'s strict validation and dump (fields first, then extra keys as given) for a
    plain dict, without pydantic (hot path of scoring); ``None`` sends anything else to pydantic,
    which gives the reason."""
    if type(result) is not dict or not _finite_number(result.get("value")):
        return None
    success = result.get("success", True)
    reason = result.get("failed_reason")
    if type(success) is not bool or (reason is not None and type(reason) is not str):
        return None
    out: dict[str, Any] = {"value": float(result["value"]), "success": success, "failed_reason": reason}
    for key, item in result.items():
        if key not in out:
            out[key] = item
    return out


def resolve_object(path: str, variable: str) -> Any:
    """Import ``module:attr`` (or ``module.attr``) and return the attribute."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(f"{variable}: {path!r} is not a dotted path like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigurationError(
            f"{variable}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})"
        ) from exc
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigurationError(f"{variable}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    return target


def resolve_callable(path: str, variable: str, params: tuple[str, ...] = ()) -> Callable[..., Any]:
    """Import ``module:attr``; check it is callable and accepts ``params`` positionally."""
    target = resolve_object(path, variable)
    if not callable(target):
        raise ConfigurationError(f"{variable}: {path!r} is not callable")
    if params:
        try:
            signature = inspect.signature(target)
            signature.bind(*params)
        except TypeError:
            raise ConfigurationError(
                f"{variable}: {path!r} must accept {len(params)} positional arguments ({', '.join(params)})"
            ) from None
        except ValueError:
            pass  # builtins without a signature: trust them
    return target


def load_contract(settings: Any) -> CrunchContract:
    """The contract named by ``CRUNCH_CONTRACT`` (default: the built-in one), with env overrides."""
    contract = CrunchContract()
    if settings.crunch_contract:
        target = resolve_object(settings.crunch_contract, "CRUNCH_CONTRACT")
        if not isinstance(target, CrunchContract) and not callable(target):
            raise ConfigurationError(
                f"CRUNCH_CONTRACT: {settings.crunch_contract!r} is neither a CrunchContract nor a factory"
            )
        contract = target if isinstance(target, CrunchContract) else target()
        if not isinstance(contract, CrunchContract):
            raise ConfigurationError(f"CRUNCH_CONTRACT: {settings.crunch_contract!r} did not give a CrunchContract")
    updates: dict[str, Any] = {}
    hooks = (
        ("scoring_function", "SCORING_FUNCTION", "scoring_function", ("prediction", "ground_truth")),
        (
            "inference_input_builder",
            "INFERENCE_INPUT_BUILDER",
            "build_input",
            ("subject", "candles", "asof_ts", "granularity"),
        ),
        ("inference_output_validator", "INFERENCE_OUTPUT_VALIDATOR", "validate_output", ("output",)),
        ("model_score_aggregator", "MODEL_SCORE_AGGREGATOR", "aggregate_snapshot", ("results",)),
        ("leaderboard_ranker", "LEADERBOARD_RANKER", "rank", ("entries", "ranking_key", "direction")),
    )
    default_scoring = type(settings).model_fields["scoring_function"].default
    for field, variable, attribute, params in hooks:
        path = getattr(settings, field)
        if not path or (field == "scoring_function" and path == default_scoring and settings.crunch_contract):
            continue  # a contract's own scoring rule wins over the default path
        updates[attribute] = resolve_callable(path, variable, params)
    if not contract.crunch_pubkey and settings.crunch_pubkey:
        updates["crunch_pubkey"] = settings.crunch_pubkey
    if contract.compute_provider is None and settings.compute_provider_pubkey:
        updates["compute_provider"] = settings.compute_provider_pubkey
    if contract.data_provider is None and settings.data_provider_pubkey:
        updates["data_provider"] = settings.data_provider_pubkey
    return contract.model_copy(update=updates) if updates else contract
