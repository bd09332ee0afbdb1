"""The seam between the services and persistence: the rows services read, and the unit of work.

Services are short handlers of (unit of work, ports, parameters): they read these typed rows
through the repositories of a ``UnitOfWork``, call the domain's pure rules, hand the results back
and commit. ``coordinator_core.db.uow.SqlUnitOfWork`` implements it over SQLAlchemy (both
databases); ``tests/unit/fakes.py`` implements it in memory for unit tests.

A unit of work is a context manager: everything done inside is one transaction, rolled back
unless ``commit()`` is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

from coordinator_core.domain.ranking import Participant
from coordinator_core.domain.scoring import PendingPrediction, ScoreRow, StatusChange
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.gateway.base import ModelInfo


# -- rows ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredConfig:
    id: str
    scope_key: str
    scope_template: Mapping[str, Any]
    schedule: Mapping[str, Any]
    order: int = 0


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A stored feed record (final records only are read for inputs and ground truth)."""

    id: int
    ts_event: datetime
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DueInput:
    """A round waiting for its ground truth."""

    id: str
    scope: Mapping[str, Any]
    received_at: datetime
    resolvable_at: datetime
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriceQuery:
    """Which records resolve one round from one source: the newest record observed at or before
    ``entry_at`` and the newest observed at or before ``exit_at`` (observed = ``ts_event`` plus
    ``observe_delay``)."""

    key: str
    scope: FeedScope
    entry_at: datetime
    exit_at: datetime


@dataclass(frozen=True, slots=True)
class PricePair:
    entry: StoredRecord | None
    exit: StoredRecord | None
    later: bool = False  # a final record observed after the exit time exists: the exit price is settled


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    id: str
    period_start: datetime
    period_end: datetime
    status: str
    entries: list[Any]
    meta: Mapping[str, Any]
    created_at: datetime
    tx_hash: str | None
    submitted_at: datetime | None
    merkle_root: str | None = None
    gate: Mapping[str, Any] | None = None  # the gate's verdict: blocked reasons, flags, when checked

    @property
    def emission(self) -> Mapping[str, Any]:
        """The stored ``EmissionCheckpoint`` document (empty when there is none)."""
        first = self.entries[0] if self.entries else None
        return first if isinstance(first, Mapping) else {}


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A stored snapshot: one model's totals over one snapshot period."""

    id: str
    model_id: str
    period_start: datetime
    period_end: datetime
    totals: WindowTotals


@dataclass(frozen=True, slots=True)
class StoredInput:
    """A stored round: its scope, times and, once resolved, its ground truth (``actuals``)."""

    id: str
    status: str
    scope: Mapping[str, Any]
    round_at: datetime
    received_at: datetime
    resolvable_at: datetime
    actuals: Mapping[str, Any] | None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def due(self) -> DueInput:
        """The round as the scoring service reads it."""
        return DueInput(self.id, self.scope, self.received_at, self.resolvable_at, self.meta)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of a conditional write: ``done`` (changed now), ``unchanged`` (already so:
    idempotent), ``missing`` or ``conflict`` (with the reason)."""

    code: str
    checkpoint: CheckpointRow | None = None
    message: str = ""


Aggregator = Callable[[list[dict[str, Any]]], dict[str, Any]]


# -- repositories -------------------------------------------------------------------------------------
class FeedRepository(Protocol):
    def upsert_records(self, scope: FeedScope, records: Sequence[SourceRecord], now: datetime) -> int: ...

    def advance_watermark(self, scope: FeedScope, newest: datetime | None, now: datetime, phase: str) -> None: ...

    def watermark(self, scope: FeedScope) -> datetime | None: ...

    def latest_records(self, scope: FeedScope, as_of: datetime, limit: int) -> list[StoredRecord]: ...

    def stored_times(self, scope: FeedScope, start: datetime, end: datetime) -> set[datetime]: ...

    def records_between(self, scope: FeedScope, start: datetime, as_of: datetime) -> list[StoredRecord]: ...

    def prune(self, cutoff: datetime, batch: int) -> int: ...

    def count(self) -> int: ...

    def price_pairs(self, queries: Sequence[PriceQuery]) -> dict[str, PricePair]: ...


class ConfigRepository(Protocol):
    def upsert(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def deactivate_unlisted(self, listed: Sequence[str], now: datetime) -> None: ...

    def active(self) -> list[StoredConfig]: ...


class ModelRepository(Protocol):
    def sync(
        self,
        infos: Sequence[ModelInfo],
        now: datetime,
        deregister_after: timedelta | None = None,
        absence_grace: timedelta | None = None,
    ) -> dict[str, tuple[str, datetime | None]]:
        """The registry follows the gateway; see ``db.repositories.models``. With
        ``absence_grace``: ``not_running(now, absence_grace)`` after the sync; without: ``{}``."""
        ...

    def not_running(self, now: datetime, grace: timedelta) -> dict[str, tuple[str, datetime | None]]:
        """Registered, not RUNNING, last seen running at or before ``now - grace``: id -> (state, running_at)."""
        ...

    def deregister(self, model_id: str, now: datetime) -> str | None:
        """Deregister one model; its state before, ``None`` when unknown."""
        ...

    def running_ids(self) -> list[str]: ...

    def record_failures(self, failures: Mapping[str, str], now: datetime) -> None: ...

    def participants(self, model_ids: Sequence[str]) -> dict[str, Participant]: ...

    def set_overall_scores(self, scores: Mapping[str, Mapping[str, Any]]) -> None: ...


class RoundRepository(Protocol):
    def existing_inputs(self, input_ids: Sequence[str]) -> set[str]: ...

    def add_rounds(self, inputs: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]]) -> None:
        """Insert inputs, then predictions; a stored round or (round, model) prediction is kept."""
        ...

    def due_inputs(self, now: datetime, after: tuple[datetime, str] | None, limit: int) -> list[DueInput]: ...

    def unsettled(self, until: datetime) -> int:
        """RECEIVED rounds whose ``resolvable_at`` is at or before ``until``."""
        ...

    def still_received(self, input_ids: Sequence[str]) -> set[str]: ...

    def predictions_of(self, input_ids: Sequence[str]) -> list[PendingPrediction]: ...

    def prediction_counts(self, input_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Per model, ``(predictions of any status, SCORED ones)`` of the rounds ``input_ids``."""
        ...

    def point_pairs(self, input_ids: Sequence[str]) -> list[tuple[str, str, datetime, Any, Any]]:
        """``(model_id, input_id, round_at, output "value", actuals "return")`` of every SCORED
        prediction of the rounds ``input_ids`` (either value ``None`` when absent)."""
        ...

    def resolve_inputs(self, truths: Mapping[str, Mapping[str, Any]], now: datetime) -> None: ...

    def give_up_inputs(
        self, reasons: Mapping[str, str], metas: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> int: ...

    def set_statuses(self, changes: Sequence[StatusChange], rounds: Sequence[str] = ()) -> None: ...

    def stored_inputs(self, input_ids: Sequence[str]) -> dict[str, StoredInput]: ...

    def resolved_inputs(
        self, start: datetime, end: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[StoredInput]:
        """RESOLVED rounds with ``round_at`` in ``[start, end)``, ordered by ``(round_at, id)``."""
        ...

    def predictions_by_id(self, prediction_ids: Sequence[str]) -> dict[str, PendingPrediction]: ...


class ScoreRepository(Protocol):
    def add(self, rows: Sequence[ScoreRow]) -> int: ...

    def mark_dirty(self, kind: str, periods: Sequence[datetime], owed_at: datetime) -> None:
        """Owe ``kind``'s work for ``periods``, incurred at ``owed_at`` (the earliest time is kept)."""
        ...

    def dirty(self, kind: str, until: datetime) -> list[datetime]:
        """The periods whose work is owed at or before ``until``."""
        ...

    def clear_dirty(self, kind: str, periods: Sequence[datetime]) -> None: ...

    def rebuild_snapshots(
        self, periods: Sequence[datetime], period_seconds: int, aggregator: Aggregator | None, now: datetime
    ) -> int: ...

    def window_totals(
        self, since: datetime, until: datetime, period_seconds: int | None = None
    ) -> dict[str, WindowTotals]:
        """Per model, the totals of the scores resolved in ``(since, until]`` (``period_seconds``: the
        snapshot period, needed when a bound is not on a period boundary)."""
        ...

    def counted_results(self, lo: datetime, hi: datetime) -> dict[str, list[dict[str, Any]]]:
        """Per model, the results (with their counted ``value``) of the scores resolved in
        ``(lo, hi]``, in ``(scored_at, prediction_id)`` order."""
        ...

    def snapshot_count(self, start: datetime, end: datetime) -> int: ...

    def first_snapshot_start(self) -> datetime | None: ...

    def snapshots_between(
        self,
        start: datetime,
        end: datetime,
        model_id: str | None = None,
        after: datetime | None = None,
        limit: int | None = None,
    ) -> list[SnapshotRow]:
        """Snapshots ending in ``(start, end]`` (of one model, starting after ``after``), ordered by
        ``(model_id, period_start)``."""
        ...

    def scores_between(self, lo: datetime, hi: datetime, model_id: str | None = None) -> list[ScoreRow]:
        """Score rows with ``scored_at`` in ``(lo, hi]``, ordered by ``(model_id, prediction_id)``."""
        ...

    def input_ids_between(self, lo: datetime, hi: datetime) -> list[str]:
        """The rounds with a score whose ``scored_at`` is in ``(lo, hi]``, sorted."""
        ...

    def scores_of(self, prediction_ids: Sequence[str]) -> dict[str, ScoreRow]: ...


class LeaderboardRepository(Protocol):
    def add(
        self, leaderboard_id: str, created_at: datetime, entries: list[dict[str, Any]], meta: Mapping[str, Any]
    ) -> None: ...


class CheckpointRepository(Protocol):
    def last_end(self) -> datetime | None: ...

    def add(self, row: Mapping[str, Any]) -> None: ...

    def get(self, checkpoint_id: str) -> CheckpointRow | None: ...

    def confirm(self, checkpoint_id: str, tx_hash: str, now: datetime) -> bool: ...

    def move(self, checkpoint_id: str, current: str, target: str) -> bool: ...

    def previous(self, period_end: datetime) -> CheckpointRow | None:
        """The newest checkpoint ending before ``period_end`` that is not GATED."""
        ...

    def set_gate(self, checkpoint_id: str, current: str, status: str, gate: Mapping[str, Any]) -> bool:
        """Record the gate's verdict (and ``status``) only if the status is still ``current``."""
        ...


class UnitOfWork(Protocol):
    @property
    def feeds(self) -> FeedRepository: ...

    @property
    def configs(self) -> ConfigRepository: ...

    @property
    def models(self) -> ModelRepository: ...

    @property
    def rounds(self) -> RoundRepository: ...

    @property
    def scores(self) -> ScoreRepository: ...

    @property
    def leaderboards(self) -> LeaderboardRepository: ...

    @property
    def checkpoints(self) -> CheckpointRepository: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

    def lock(self, name: str) -> None:
        """Serialise writers named ``name`` across processes until the transaction ends."""
        ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Each call is a new unit of work; ``read_only=True``: reads only (no transaction to end, no
    commit, no lock)."""

    def __call__(self, read_only: bool = False) -> UnitOfWork: ...
