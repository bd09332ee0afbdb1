"""Read queries behind the failure reports and the alerts: what failed in a period and why, rounds
that closed with nothing scored, models failing in a row, stale feeds, gated checkpoints.

Plain SQLAlchemy Core over an engine (no Prefect: the events are emitted by ``tasks.alerts``).
Every query is bounded: by a period on an index (``performed_at``), by a list of ids, or by a
``LIMIT`` per model on ``(model_id, performed_at)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from coordinator_core.db.tables import Input, InputStatus, Prediction, PredictionStatus
from coordinator_core.domain.failures import MODEL_KINDS, Failures, classify, group_reason
from coordinator_core.feeds.base import FeedScope, observe_delay
from coordinator_core.ports import CheckpointRow

P: Any = Prediction.__table__  # type: ignore[attr-defined]
IN: Any = Input.__table__  # type: ignore[attr-defined]
PAGE = 1_000
FRAC64_TOTAL = 1_000_000_000
FAILED_STATUSES = (PredictionStatus.FAILED.value, PredictionStatus.ABSENT.value)


# -- failures of a period -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureGroup:
    """Predictions of one model that failed for one cause (``domain.failures`` kind and reason with
    its numbers replaced by ``N``) in a period; ``example`` is one of the reasons as stored."""

    model_id: str
    kind: str
    reason: str
    count: int
    example: str
    first_at: datetime
    last_at: datetime


@dataclass
class PeriodFailures:
    statuses: Counter[str] = field(default_factory=Counter)
    groups: list[FailureGroup] = field(default_factory=list)

    @property
    def failures(self) -> Failures:
        out: Failures = Counter()
        for group in self.groups:
            out[(group.kind, group.reason)] += group.count
        return out


def failures(engine: Engine, start: datetime, end: datetime) -> PeriodFailures:
    """Predictions made in ``[start, end)``: counts by status, and the failed and absent ones by
    model and cause, most frequent first within each model."""
    window = (P.c.performed_at >= start, P.c.performed_at < end)
    with engine.connect() as connection:
        statuses = connection.execute(select(P.c.status, func.count()).where(*window).group_by(P.c.status)).all()
        rows = connection.execute(
            select(
                P.c.model_id,
                P.c.status,
                P.c.runner_status,
                P.c.failed_reason,
                func.count(),
                func.min(P.c.performed_at),
                func.max(P.c.performed_at),
            )
            .where(*window, P.c.status.in_(FAILED_STATUSES))
            .group_by(P.c.model_id, P.c.status, P.c.runner_status, P.c.failed_reason)
        ).all()
    merged: dict[tuple[str, str, str], list[Any]] = {}
    for model_id, status, runner_status, reason, count, first, last in rows:
        kind = classify(status, runner_status, reason) or status.lower()
        key = (model_id, kind, group_reason(reason))
        item = merged.get(key)
        if item is None:
            merged[key] = [int(count), reason or "", first, last]
        else:
            item[0] += int(count)
            item[2], item[3] = min(item[2], first), max(item[3], last)
    groups = [
        FailureGroup(model_id, kind, reason, count, example, first, last)
        for (model_id, kind, reason), (count, example, first, last) in merged.items()
    ]
    groups.sort(key=lambda g: (g.model_id, -g.count, g.kind, g.reason))
    return PeriodFailures(Counter({status: int(count) for status, count in statuses}), groups)


# -- rounds closed with nothing scored ----------------------------------------------------------------
@dataclass(frozen=True)
class UnscoredRound:
    input_id: str
    scope_key: str
    round_at: datetime
    resolved_at: datetime | None
    predictions: dict[str, int]  # by status
    reason: str  # why nothing was scored


def due_input_ids(engine: Engine, now: datetime) -> list[str]:
    """Rounds a scoring run at ``now`` will look at: RECEIVED, ``resolvable_at <= now`` (index
    ``(status, resolvable_at)``)."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(IN.c.id).where(IN.c.status == InputStatus.RECEIVED.value, IN.c.resolvable_at <= now)
            ).scalars()
        )


def unscored_rounds(engine: Engine, input_ids: Sequence[str]) -> list[UnscoredRound]:
    """Of ``input_ids``, the rounds now RESOLVED of which no prediction is SCORED."""
    out: list[UnscoredRound] = []
    ids = list(input_ids)
    with engine.connect() as connection:
        for offset in range(0, len(ids), PAGE):
            page = ids[offset : offset + PAGE]
            inputs = connection.execute(
                select(IN.c.id, IN.c.scope_key, IN.c.round_at, IN.c.resolved_at, IN.c.meta_jsonb).where(
                    IN.c.id.in_(page), IN.c.status == InputStatus.RESOLVED.value
                )
            ).all()
            if not inputs:
                continue
            counts: dict[str, dict[str, int]] = {}
            for input_id, status, count in connection.execute(
                select(P.c.input_id, P.c.status, func.count())
                .where(P.c.input_id.in_([r.id for r in inputs]))
                .group_by(P.c.input_id, P.c.status)
            ).all():
                counts.setdefault(input_id, {})[status] = int(count)
            for row in inputs:
                by_status = counts.get(row.id, {})
                if by_status.get(PredictionStatus.SCORED.value, 0):
                    continue
                reason = (row.meta_jsonb or {}).get("unresolved_reason") or (
                    "no prediction" if not by_status else "every prediction failed or was absent"
                )
                out.append(UnscoredRound(row.id, row.scope_key, row.round_at, row.resolved_at, by_status, reason))
    return sorted(out, key=lambda r: (r.round_at, r.input_id))


# -- models failing in a row --------------------------------------------------------------------------
@dataclass(frozen=True)
class FailingStreak:
    model_id: str
    rounds: int  # the newest predictions that all failed, counted up to the limit asked
    reasons: list[str]  # their grouped reasons, newest first, distinct
    since: datetime  # the oldest prediction of the streak


def failing_streaks(engine: Engine, model_ids: Iterable[str], limit: int) -> dict[str, FailingStreak]:
    """For each model, how many of its newest predictions (up to ``limit``) failed by its own fault
    (``domain.failures.MODEL_KINDS``: error, timeout, invalid output, absent). One indexed query of
    ``limit`` rows per model (``(model_id, performed_at)``)."""
    out: dict[str, FailingStreak] = {}
    with engine.connect() as connection:
        for model_id in sorted(set(model_ids)):
            rows = connection.execute(
                select(P.c.status, P.c.runner_status, P.c.failed_reason, P.c.performed_at)
                .where(P.c.model_id == model_id)
                .order_by(P.c.performed_at.desc(), P.c.id.desc())
                .limit(limit)
            ).all()
            streak: list[Any] = []
            for row in rows:
                if classify(row.status, row.runner_status, row.failed_reason) not in MODEL_KINDS:
                    break
                streak.append(row)
            if streak:
                reasons = list(dict.fromkeys(group_reason(r.failed_reason) for r in streak))
                out[model_id] = FailingStreak(model_id, len(streak), reasons, streak[-1].performed_at)
    return out


# -- feeds and checkpoints ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StaleFeed:
    scope: str
    watermark: datetime | None
    age_seconds: float | None  # how long ago the newest final record was observed; None: never
    bound_seconds: int


def stale_feed(scope: FeedScope, watermark: datetime | None, now: datetime, bound_seconds: int) -> StaleFeed | None:
    """The scope is stale at ``now`` when its newest final record was observed more than
    ``bound_seconds`` ago (``FEED_MAX_STALENESS_SECONDS``: the bound past which rounds are skipped)."""
    if watermark is None:
        return StaleFeed(scope.key, None, None, bound_seconds)
    age = (now - (watermark + observe_delay(scope))).total_seconds()
    return StaleFeed(scope.key, watermark, age, bound_seconds) if age > bound_seconds else None


@dataclass(frozen=True)
class CheckpointGate:
    checkpoint_id: str
    period_start: datetime
    period_end: datetime
    gates: list[Any]
    total: int  # Σ cruncher reward_pct (frac64); 1e9 when nothing holds it back
    model_count: int


def checkpoint_gate(row: CheckpointRow) -> CheckpointGate | None:
    """A stored checkpoint that is gated: a non-empty ``meta_jsonb.gate`` list, or cruncher rewards
    that do not sum to 1,000,000,000."""
    gates = list(row.meta.get("gate") or [])
    emission = row.entries[0] if row.entries else {}
    total = sum(int(r.get("reward_pct", 0)) for r in emission.get("cruncher_rewards", []))
    if not gates and total == FRAC64_TOTAL:
        return None
    return CheckpointGate(
        row.id, row.period_start, row.period_end, gates, total, int(row.meta.get("model_count", 0) or 0)
    )


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return str(timedelta(seconds=round(seconds)))
