"""Alerts as Prefect events, emitted from the tasks that see them (never from ``coordinator_core``).

=================================  ============================================  ==================================
event                              when                                          resource id
=================================  ============================================  ==================================
``coordinator.round.unscored``     a scoring run closed a round with 0 scored    ``coordinator.round.<input id>``
                                   predictions (every one failed or was absent,
                                   or the round gave up waiting for its price)
``coordinator.feed.stale``         after an ingest, the scope's newest record    ``coordinator.feed.<scope key>``
                                   is older than ``FEED_MAX_STALENESS_SECONDS``
``coordinator.checkpoint.gated``   a checkpoint was written with a non-empty     ``coordinator.checkpoint.<id>``
                                   ``meta_jsonb.gate`` or rewards ≠ 1e9
``coordinator.model.failing``      a model's newest predictions failed           ``coordinator.model.<model id>``
                                   ``ALERT_MODEL_FAILING_ROUNDS`` in a row (once,
                                   on the round that makes the streak that long)
=================================  ============================================  ==================================

Each payload says what, when and why (see the functions). Emitting inside a task run lets
Prefect relate the event to the flow run, task run and deployment. An alert that cannot be sent
is logged and never fails the run: the data it is about is already committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prefect.events import emit_event

from coordinator_core.diagnostics import CheckpointGate, FailingStreak, StaleFeed, UnscoredRound

log = logging.getLogger(__name__)
ROUND_UNSCORED = "coordinator.round.unscored"
FEED_STALE = "coordinator.feed.stale"
CHECKPOINT_GATED = "coordinator.checkpoint.gated"
MODEL_FAILING = "coordinator.model.failing"
EVENTS = (ROUND_UNSCORED, FEED_STALE, CHECKPOINT_GATED, MODEL_FAILING)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def emit(event: str, kind: str, key: str, payload: Mapping[str, Any], name: str | None = None) -> bool:
    """One alert; ``True`` when handed to Prefect's events worker."""
    resource = {"prefect.resource.id": f"coordinator.{kind}.{key}", "prefect.resource.name": name or key}
    try:
        return emit_event(event, resource=resource, payload=dict(payload)) is not None
    except Exception as exc:  # an alert never fails the run whose data is already committed
        log.warning("could not emit %s for %s: %s", event, key, exc)
        return False


def round_unscored(rounds: Iterable[UnscoredRound], as_of: datetime) -> int:
    sent = 0
    for item in rounds:
        payload = {
            "input_id": item.input_id,
            "scope_key": item.scope_key,
            "round_at": _time(item.round_at),
            "resolved_at": _time(item.resolved_at),
            "as_of": _time(as_of),
            "predictions": item.predictions,
            "reason": item.reason,
        }
        sent += emit(ROUND_UNSCORED, "round", item.input_id, payload, f"{item.scope_key} {_time(item.round_at)}")
    return sent


def feed_stale(stale: StaleFeed, as_of: datetime, fetched: int, written: int) -> bool:
    payload = {
        "scope": stale.scope,
        "watermark": _time(stale.watermark),
        "age_seconds": stale.age_seconds,
        "bound_seconds": stale.bound_seconds,
        "as_of": _time(as_of),
        "fetched": fetched,
        "written": written,
    }
    return emit(FEED_STALE, "feed", stale.scope, payload)


def checkpoint_gated(gate: CheckpointGate) -> bool:
    payload = {
        "checkpoint_id": gate.checkpoint_id,
        "period_start": _time(gate.period_start),
        "period_end": _time(gate.period_end),
        "gate": gate.gates,
        "total": gate.total,
        "expected_total": 1_000_000_000,
        "model_count": gate.model_count,
    }
    return emit(CHECKPOINT_GATED, "checkpoint", gate.checkpoint_id, payload)


def model_failing(streak: FailingStreak, threshold: int, as_of: datetime) -> bool:
    payload = {
        "model_id": streak.model_id,
        "rounds": streak.rounds,
        "threshold": threshold,
        "since": _time(streak.since),
        "as_of": _time(as_of),
        "reasons": streak.reasons[:5],
    }
    return emit(MODEL_FAILING, "model", streak.model_id, payload)
