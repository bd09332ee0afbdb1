"""Prediction rounds: build each due config's input from the newest feed data, tick the models,
ask for predictions and persist one prediction per (round, config, model).

A config is due when no round exists yet for its current slot ``floor(now, interval)`` (slots are
aligned to the epoch, so schedules never drift and a re-run for the same time writes nothing).
Model calls run outside any transaction; everything a round writes is committed at once.

Virtual ensembles (``CrunchContract.ensembles``) are built here, in the same transaction as the
round's predictions: each is one more prediction of the round, ``ensemble:<name>``, combining the
outputs of that round that passed validation (``coordinator_core.contribution.ensembles``), PENDING
like any model's and scored by the same rule. So a round and its ensembles are written together or
not at all, a re-run for the same time writes nothing (the round exists), and scoring treats an
ensemble as a model with no special path. No member answered: the ensemble is ABSENT for the round.

Absence: a registered model that is not RUNNING (stopped, or gone from the gateway) gets an ABSENT
prediction for each round once ``ABSENCE_GRACE_SECONDS`` have passed since it was last seen
running, until it is deregistered (``MODEL_DEREGISTER_AFTER_SECONDS``, or ``deregister``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator_core.clock import floor_time
from coordinator_core.collection import paused_collection
from coordinator_core.config import Settings
from coordinator_core.contract import CrunchContract, is_virtual
from coordinator_core.domain.statuses import InputStatus, PredictionStatus
from coordinator_core.errors import ValidationError
from coordinator_core.feeds.base import FeedScope, observe_delay
from coordinator_core.games.ticks import PricePoint, TickCursor, build_tick, group_by_cursor, points_from_records
from coordinator_core.gateway.base import CallResult, CallStatus, ModelGateway, ModelInfo
from coordinator_core.outputs.bounds import bounds_reason
from coordinator_core.ports import FeedRepository, StoredConfig, StoredRecord, UnitOfWork, UnitOfWorkFactory
from coordinator_core.services.configs import effective_scope, safe_key
from coordinator_core.services.feed_reader import as_candle

log = logging.getLogger(__name__)


@dataclass
class RoundResult:
    inputs: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Due:
    config: StoredConfig
    scope: dict[str, Any]
    round_at: datetime
    key: str = ""  # safe_key(scope_key)_roundtime, the suffix of every id of the round

    def __post_init__(self) -> None:
        self.key = f"{safe_key(self.config.scope_key)}_{self.round_at:%Y%m%dT%H%M%S}"

    @property
    def input_id(self) -> str:
        return f"INP_{self.key}"


MAX_TEXT = 2_000


def clean_text(text: str | None) -> str | None:
    """Model-controlled text made storable everywhere: no NUL byte (Postgres refuses it), bounded."""
    if text is None:
        return None
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Model-controlled output made storable as JSON(B): non-finite numbers and unknown objects become
    their repr, strings lose NUL bytes, nesting is bounded."""
    if depth > 20:
        return clean_text(repr(value))
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _json_safe(v, depth + 1) for k, v in list(value.items())[:1_000]}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in list(value)[:1_000]]
    return clean_text(repr(value))


def _prediction_row(
    due: _Due,
    model_id: str,
    result: CallResult | None,
    contract: CrunchContract,
    now: datetime,
    resolvable_at: datetime,
    tick: CallResult | None,
    absent_reason: str,
) -> dict[str, Any]:
    output: dict[str, Any] = {}
    reason = None
    runner_status = result.status.value if result else None
    if result is None:
        status, reason = PredictionStatus.ABSENT, absent_reason
    elif result.status is CallStatus.SUCCESS and (refused := bounds_reason(result.output)) is not None:
        # too deep, too big or too long to look at: refused before anything touches it
        status, reason, output = PredictionStatus.FAILED, clean_text(f"invalid output: {refused}"), {}
    elif result.status is CallStatus.SUCCESS:
        try:
            output = contract.check_output(result.output, due.scope)
            status = PredictionStatus.PENDING
        except ValidationError as exc:
            status, reason, output = (
                PredictionStatus.FAILED,
                clean_text(str(exc)),
                {"raw_output": _json_safe(result.output)},
            )
    else:
        status, reason = PredictionStatus.FAILED, clean_text(f"{result.status.value}: {result.detail or 'no detail'}")
    prefix = "ABS" if status is PredictionStatus.ABSENT else "PRE"
    meta: dict[str, Any] = {}
    if tick is not None and tick.status is not CallStatus.SUCCESS:
        meta["tick"] = {"status": tick.status.value, "detail": clean_text(tick.detail)}
    if result is not None and result.status is CallStatus.SUCCESS and result.detail:
        meta["late"] = clean_text(result.detail)  # a backtest waited past the live deadline
    return {
        "id": f"{prefix}_{model_id}_{due.key}",
        "input_id": due.input_id,
        "model_id": model_id,
        "prediction_config_id": due.config.id,
        "scope_key": due.config.scope_key,
        "scope_jsonb": due.scope,
        "status": status.value,
        "runner_status": runner_status,
        "failed_reason": clean_text(reason),
        "exec_time_ms": round(result.exec_time_ms, 3) if result else 0.0,
        "inference_output_jsonb": output,
        "meta_jsonb": meta,
        "performed_at": now,
        "resolvable_at": resolvable_at,
    }


def fresh_records(
    feeds: FeedRepository, settings: Settings, subject: str, now: datetime
) -> tuple[str, list[StoredRecord]] | None:
    """The newest window of the first source (in priority order) whose data is fresh at ``now``."""
    for source in settings.sources:
        scope = FeedScope(source, subject, settings.feed_kind, settings.feed_granularity)
        records = feeds.latest_records(scope, now, settings.feed_candles_window)
        if (
            records
            and (now - records[-1].ts_event - observe_delay(scope)).total_seconds() <= settings.max_staleness_seconds
        ):
            return source, records
    return None


def due_rounds(work: UnitOfWork, contract: CrunchContract, now: datetime) -> list[_Due]:
    """Active configs whose current slot ``floor(now, interval)`` has no round yet."""
    due = []
    for config in work.configs.active():
        interval = int(config.schedule.get("prediction_interval_seconds") or 60)
        scope = {**effective_scope(contract, dict(config.scope_template)), "scope_key": config.scope_key}
        due.append(_Due(config, scope, floor_time(now, interval)))
    existing = work.rounds.existing_inputs([item.input_id for item in due])
    return [item for item in due if item.input_id not in existing]


def ask(gateway: ModelGateway, contract: CrunchContract, item: _Due) -> dict[str, CallResult]:
    """Every model's answer for one round: one ``predict`` call, or, for a multi-resolution config
    (``steps``) whose predict call does not take the steps (the games' ``predict_all`` does), one
    call per step merged per model into ``{"<step>": output}`` (a model that fails any step fails
    the round, with that step named)."""
    subject, horizon = str(item.scope["subject"]), int(item.scope["horizon_seconds"])
    steps = item.scope.get("steps")
    takes_steps = any(argument.value == "steps" for argument in contract.calls.predict.arguments)
    if not steps or takes_steps:
        step = int(steps[0]) if steps else int(item.scope["step_seconds"])
        return gateway.predict(subject, horizon, step, steps=list(steps) if takes_steps and steps else None)
    per_step = {int(step): gateway.predict(subject, horizon, int(step)) for step in steps}
    merged: dict[str, CallResult] = {}
    for model_id in sorted(set().union(*per_step.values())):
        results = [(step, answers.get(model_id)) for step, answers in per_step.items()]
        elapsed = sum(r.exec_time_ms for _, r in results if r is not None)
        missing = next((step for step, r in results if r is None), None)
        failed = next(((step, r) for step, r in results if r is not None and r.status is not CallStatus.SUCCESS), None)
        if failed is not None:
            step, r = failed
            merged[model_id] = CallResult(r.status, None, f"step {step}: {r.detail or 'no detail'}", elapsed)
        elif missing is not None:
            merged[model_id] = CallResult(CallStatus.FAILED, None, f"step {missing}: no answer", elapsed)
        else:
            merged[model_id] = CallResult(
                CallStatus.SUCCESS, {str(step): r.output for step, r in results if r is not None}, None, elapsed
            )
    return merged


def tickable(gateway: ModelGateway, infos: list[ModelInfo]) -> list[str]:
    """The models a round ticks: RUNNING, and callable now."""
    return [i.model_id for i in infos if i.state == "RUNNING" and i.model_id not in gateway.load_errors]


def price_points(
    feeds: FeedRepository,
    gateway: ModelGateway,
    contract: CrunchContract,
    settings: Settings,
    models: list[str],
    source: str,
    subject: str,
    now: datetime,
) -> list[PricePoint]:
    """The prices the round's price ticks need: from the oldest point one of ``models`` lacks (the
    history window for a model never ticked with ``subject``) up to ``now``."""
    scope = FeedScope(source, subject, settings.feed_kind, settings.feed_granularity)
    lasts = [gateway.tick_cursors[m].last(subject) if m in gateway.tick_cursors else None for m in models]
    if not lasts or None in lasts:
        start = now - timedelta(seconds=contract.tick_history_seconds)
    else:
        start = datetime.fromtimestamp(min(last for last in lasts if last is not None), UTC)
    records = feeds.records_between(scope, start, now)
    return points_from_records(
        records, subject=subject, kind=scope.kind, granularity_seconds=settings.granularity_seconds
    )


def send_price_ticks(
    gateway: ModelGateway, contract: CrunchContract, infos: list[ModelInfo], points: list[PricePoint], now: datetime
) -> dict[str, CallResult]:
    """Tick every running model with the prices it has not received yet (``games.ticks``): models
    that share a cursor share one payload; a model's cursor moves only when its tick succeeded, so
    a failed tick is sent again next round."""
    cursors = {model_id: gateway.tick_cursors.get(model_id, TickCursor()) for model_id in tickable(gateway, infos)}
    results: dict[str, CallResult] = {}
    for cursor, model_ids in group_by_cursor(cursors).items():
        tick = build_tick(points, as_of=now, cursor=cursor, history_seconds=contract.tick_history_seconds)
        if not tick:
            continue  # nothing new for these models
        for model_id, answer in gateway.tick(tick.data, model_ids=model_ids).items():
            results[model_id] = answer
            if answer.status is CallStatus.SUCCESS:
                gateway.tick_cursors[model_id] = tick.cursor
    return results


def virtual_infos(contract: CrunchContract) -> list[ModelInfo]:
    """The registry rows of the contract's ensembles (state VIRTUAL: never asked, never STOPPED)."""
    return [
        ModelInfo(spec.model_id, spec.name, "", "virtual ensemble", "virtual", "VIRTUAL", meta={"kind": spec.kind})
        for spec in contract.ensembles
    ]


def ensemble_output(kind: str, outputs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ensemble of one round from its members' validated outputs (``None``: none answered)."""
    from coordinator_core.contribution import average_quantiles, mean_point, mixture_multi_resolution

    if kind == "mean":
        ensemble = mean_point(outputs)
    elif kind == "quantiles":
        ensemble = average_quantiles(outputs)
    else:
        ensemble = mixture_multi_resolution(outputs)
        if ensemble is not None:
            return {str(step): densities for step, densities in ensemble.output.items()}
    return None if ensemble is None else dict(ensemble.output)


def ensemble_rows(
    contract: CrunchContract, due: _Due, rows: list[dict[str, Any]], now: datetime, resolvable_at: datetime
) -> list[dict[str, Any]]:
    """One prediction row per ensemble of the round, from the round's PENDING (validated) rows."""
    members = [r for r in rows if r["status"] == PredictionStatus.PENDING.value and not is_virtual(r["model_id"])]
    out = []
    for spec in contract.ensembles:
        reason = None
        try:
            output = ensemble_output(spec.kind, [r["inference_output_jsonb"] for r in members])
        except ValueError as exc:  # members that cannot be combined (different levels or steps)
            output, reason = None, clean_text(f"the members' outputs cannot be combined: {exc}")
        if output is None:
            status = PredictionStatus.FAILED if reason else PredictionStatus.ABSENT
            reason = reason or "no member answered"
        else:
            status = PredictionStatus.PENDING
        prefix = "ABS" if status is PredictionStatus.ABSENT else "PRE"
        out.append(
            {
                "id": f"{prefix}_{spec.model_id}_{due.key}",
                "input_id": due.input_id,
                "model_id": spec.model_id,
                "prediction_config_id": due.config.id,
                "scope_key": due.config.scope_key,
                "scope_jsonb": due.scope,
                "status": status.value,
                "runner_status": None,
                "failed_reason": reason,
                "exec_time_ms": 0.0,
                "inference_output_jsonb": output or {},
                "meta_jsonb": {"virtual": True, "kind": spec.kind, "members": [r["model_id"] for r in members]},
                "performed_at": now,
                "resolvable_at": resolvable_at,
            }
        )
    return out


def _away_reason(state: str, running_at: datetime | None) -> str:
    seen = f"last seen running at {running_at.isoformat()}" if running_at is not None else "never seen running"
    return f"no answer: model is registered but {state}, not running ({seen})"


def predict_round(
    uow: UnitOfWorkFactory, gateway: ModelGateway, contract: CrunchContract, settings: Settings, now: datetime
) -> RoundResult:
    """Run every round due at ``now``: build inputs (reads only), call the models (outside any
    transaction), then sync the registry with what the gateway reports and persist one prediction
    per (round, model), in one transaction. A model the registry holds as RUNNING after the sync
    (the gateway's RUNNING models) that gave no answer is ABSENT; so is a registered model that is
    not RUNNING (stopped, or gone from the gateway) once ``ABSENCE_GRACE_SECONDS`` have passed since
    it was last seen running, until it is DEREGISTERED (``MODEL_DEREGISTER_AFTER_SECONDS`` without
    running, or ``coordinator models deregister``). Its rows are those of a running model that did
    not answer (status ABSENT, id ``ABS_…``), so the missing-prediction policy charges them.
    Automatic cycle collection is paused for the round (``collection.paused_collection``)."""
    with paused_collection():
        return _predict_round(uow, gateway, contract, settings, now)


def _predict_round(
    uow: UnitOfWorkFactory, gateway: ModelGateway, contract: CrunchContract, settings: Settings, now: datetime
) -> RoundResult:
    result = RoundResult()
    infos = gateway.models()
    with uow(read_only=True) as work:  # reads only: no transaction held, none to end
        due = due_rounds(work, contract, now)
        by_subject: dict[str, list[_Due]] = {}
        for item in due:
            by_subject.setdefault(item.scope["subject"], []).append(item)
        inputs: dict[str, dict[str, Any]] = {}
        source_used: dict[str, str] = {}
        points: dict[str, list[PricePoint]] = {}
        round_meta: dict[str, dict[str, Any]] = {}
        for subject, items in by_subject.items():
            if contract.round_input is not None:  # tournament mode: the round is a dataset
                dataset = contract.round_input(subject, now)
                if dataset is None:
                    for item in items:
                        result.skipped[item.config.scope_key] = f"the contract's round_input has no data for {now}"
                    continue
                inputs[subject], source_used[subject] = dataset, "dataset"
                round_meta[subject] = {"era": dataset["era"]} if "era" in dataset else {}
                continue
            fresh = fresh_records(work.feeds, settings, subject, now)
            if fresh is None:
                keys = ", ".join(
                    FeedScope(source, subject, settings.feed_kind, settings.feed_granularity).key
                    for source in settings.sources
                )
                reason = (
                    f"no feed data for {keys} observed after {now - timedelta(seconds=settings.max_staleness_seconds)}"
                )
                for item in items:
                    result.skipped[item.config.scope_key] = reason
                log.warning("round at %s skipped for %s: %s", now, subject, reason)
                continue
            source_used[subject], records = fresh
            inputs[subject] = contract.build_input(
                subject, [as_candle(r) for r in records], int(now.timestamp()), settings.feed_granularity
            )
            if contract.tick_format == "price_ticks":
                models = tickable(gateway, infos)
                points[subject] = price_points(
                    work.feeds, gateway, contract, settings, models, source_used[subject], subject, now
                )
    registry = [*infos, *virtual_infos(contract)]
    deregister_after = timedelta(seconds=settings.model_deregister_after_seconds)
    if not inputs:
        with uow() as work:
            work.models.sync(registry, now, deregister_after)
            work.commit()
        return result

    answers: list[tuple[_Due, dict[str, CallResult], dict[str, CallResult]]] = []
    round_ts: dict[str, int] = {}
    for subject, data in inputs.items():
        if contract.tick_format == "price_ticks":
            ticks = send_price_ticks(gateway, contract, infos, points[subject], now)
            observed = [p.ts for p in points[subject] if p.observed_at <= int(now.timestamp())]
            if observed:
                round_ts[subject] = max(observed)
        else:
            ticks = gateway.tick(data)
        for item in by_subject[subject]:
            answers.append((item, ticks, ask(gateway, contract, item)))

    load_errors = gateway.load_errors
    with uow() as work:
        # registered, not running, past the grace (after the sync): charged for the round as a
        # model that did not answer
        away = work.models.sync(registry, now, deregister_after, timedelta(seconds=settings.absence_grace_seconds))
        running = [i.model_id for i in infos if i.state == "RUNNING"]  # the registry after the sync
        away = {m: v for m, v in away.items() if m not in running and m not in load_errors}
        input_rows, prediction_rows = [], []
        failures: dict[str, str] = {}
        for item, ticks, predictions in answers:
            wait = max(int(item.scope["horizon_seconds"]), int(item.config.schedule.get("resolve_after_seconds") or 0))
            resolvable_at = now + timedelta(seconds=wait)
            subject = item.scope["subject"]
            if contract.truth == "price_path" and subject in round_ts:
                # the settlement gate: the last point of the path (ts + h) observed and final, plus
                # the publish latency the contract allows for late prices
                scope = FeedScope(source_used[subject], subject, settings.feed_kind, settings.feed_granularity)
                settles = datetime.fromtimestamp(round_ts[subject] + int(item.scope["horizon_seconds"]), UTC)
                resolvable_at = settles + observe_delay(scope) + timedelta(seconds=contract.settlement_latency_seconds)
            input_rows.append(
                {
                    "id": item.input_id,
                    "prediction_config_id": item.config.id,
                    "scope_key": item.config.scope_key,
                    "status": InputStatus.RECEIVED.value,
                    "round_at": item.round_at,
                    "received_at": now,
                    "resolvable_at": resolvable_at,
                    "resolved_at": None,
                    "raw_data_jsonb": inputs[subject],
                    "actuals_jsonb": None,
                    "meta_jsonb": {
                        **round_meta.get(subject, {}),
                        **({"round_ts": round_ts[subject]} if subject in round_ts else {}),
                    },
                    "scope_jsonb": {
                        "source": source_used[subject],
                        "sources": settings.sources,
                        "kind": settings.feed_kind,
                        "granularity": settings.feed_granularity,
                        **item.scope,
                    },
                }
            )
            round_rows: list[dict[str, Any]] = []
            for model_id in sorted(set(running) | set(predictions) | set(away)):
                answer = predictions.get(model_id)
                if model_id in load_errors:
                    absent = f"no answer: model failed to load ({load_errors[model_id]})"
                elif model_id in away and answer is None:
                    absent = _away_reason(*away[model_id])
                else:
                    absent = "no answer: model was registered as RUNNING but did not respond"
                row = _prediction_row(item, model_id, answer, contract, now, resolvable_at, ticks.get(model_id), absent)
                round_rows.append(row)
                result.statuses[row["status"]] += 1
                if answer is not None and answer.status is not CallStatus.SUCCESS:
                    failures[model_id] = answer.status.value
            prediction_rows += round_rows
            prediction_rows += ensemble_rows(contract, item, round_rows, now, resolvable_at)
            result.inputs.append(item.input_id)
        work.rounds.add_rounds(input_rows, prediction_rows)
        work.models.record_failures(failures, now)
        work.commit()
    log.info("round at %s: %d inputs, predictions %s", now, len(result.inputs), dict(result.statuses))
    return result


def deregister(uow: UnitOfWorkFactory, model_id: str, now: datetime) -> str | None:
    """Deregister ``model_id`` at once (``coordinator models deregister``): no more ABSENT rows for
    it until the gateway reports it RUNNING again. Returns its state before, ``None`` when the
    registry does not hold it (nothing is written)."""
    with uow() as work:
        before = work.models.deregister(model_id, now)
        if before is not None:
            work.commit()
    if before is not None and before != "DEREGISTERED":
        log.warning("model %s deregistered by hand (was %s)", model_id, before)
    return before
