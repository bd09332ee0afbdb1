"""An in-memory unit of work (``coordinator_core.ports.UnitOfWork``) for unit tests of the services.

The repositories keep plain Python state and follow the SQL repositories' documented semantics
(natural keys, "observed" feed records, snapshots rebuilt from scores). A unit of work works on a
copy of the state and publishes it only on ``commit()``, so a block left without committing (or by
an exception) changes nothing, as a rolled-back transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator_core.clock import floor_time
from coordinator_core.domain.periods import aligned, period_end, period_start
from coordinator_core.domain.ranking import Participant
from coordinator_core.domain.scoring import PendingPrediction, ScoreRow, StatusChange
from coordinator_core.domain.statuses import CheckpointStatus, InputStatus, PredictionStatus
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.feeds.base import FeedScope, SourceRecord, observe_delay
from coordinator_core.gateway.base import ModelInfo
from coordinator_core.ports import (
    CheckpointRow,
    DueInput,
    PricePair,
    PriceQuery,
    SnapshotRow,
    StoredConfig,
    StoredInput,
    StoredRecord,
)


@dataclass
class State:
    records: dict[str, dict[datetime, dict[str, Any]]] = field(default_factory=dict)
    watermarks: dict[str, datetime | None] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    scores: dict[str, ScoreRow] = field(default_factory=dict)
    dirty: dict[tuple[str, datetime], datetime | None] = field(default_factory=dict)  # -> owed_at
    snapshots: dict[tuple[str, datetime], dict[str, Any]] = field(default_factory=dict)
    leaderboards: dict[datetime, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    locks: list[str] = field(default_factory=list)
    commits: int = 0
    next_id: int = 1


class FakeFeeds:
    def __init__(self, s: State) -> None:
        self.s = s

    def upsert_records(self, scope: FeedScope, records: Sequence[SourceRecord], now: datetime) -> int:
        stored = self.s.records.setdefault(scope.key, {})
        written = 0
        for r in records:
            old = stored.get(r.ts_event)
            if old is not None and (old["final"] and not r.final):
                continue
            if old is None or (old["values"], old["final"]) != (r.values, r.final):
                ident = old["id"] if old else self.s.next_id
                self.s.next_id += old is None
                stored[r.ts_event] = {"id": ident, "values": dict(r.values), "final": r.final}
                written += 1
        return written

    def advance_watermark(self, scope: FeedScope, newest: datetime | None, now: datetime, phase: str) -> None:
        current = self.s.watermarks.get(scope.key)
        if scope.key not in self.s.watermarks or (newest is not None and (current is None or newest > current)):
            self.s.watermarks[scope.key] = newest

    def watermark(self, scope: FeedScope) -> datetime | None:
        return self.s.watermarks.get(scope.key)

    def _final(self, scope: FeedScope, cutoff: datetime) -> list[StoredRecord]:
        stored = self.s.records.get(scope.key, {})
        return [
            StoredRecord(v["id"], ts, v["values"]) for ts, v in sorted(stored.items()) if v["final"] and ts <= cutoff
        ]

    def latest_records(self, scope: FeedScope, as_of: datetime, limit: int) -> list[StoredRecord]:
        return self._final(scope, as_of - observe_delay(scope))[-limit:]

    def records_between(self, scope: FeedScope, start: datetime, as_of: datetime) -> list[StoredRecord]:
        return [r for r in self._final(scope, as_of - observe_delay(scope)) if r.ts_event >= start]

    def price_pairs(self, queries: Sequence[PriceQuery]) -> dict[str, PricePair]:
        out = {}
        for q in queries:
            entry = self._final(q.scope, q.entry_at - observe_delay(q.scope))
            exit_ = self._final(q.scope, q.exit_at - observe_delay(q.scope))
            cutoff = q.exit_at - observe_delay(q.scope)
            later = any(r.ts_event > cutoff for r in self._final(q.scope, datetime.max.replace(tzinfo=UTC)))
            out[q.key] = PricePair(entry[-1] if entry else None, exit_[-1] if exit_ else None, later)
        return out


class FakeConfigs:
    def __init__(self, s: State) -> None:
        self.s = s

    def upsert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.s.configs[row["scope_key"]] = dict(row)

    def deactivate_unlisted(self, listed: Sequence[str], now: datetime) -> None:
        for row in self.s.configs.values():
            if row["id"] not in listed:
                row["active"] = False

    def active(self) -> list[StoredConfig]:
        rows = sorted((r for r in self.s.configs.values() if r["active"]), key=lambda r: (r["order"], r["id"]))
        return [
            StoredConfig(r["id"], r["scope_key"], r["scope_template_jsonb"], r["schedule_jsonb"], r["order"])
            for r in rows
        ]


class FakeModels:
    def __init__(self, s: State) -> None:
        self.s = s

    def sync(
        self,
        infos: Sequence[ModelInfo],
        now: datetime,
        deregister_after: timedelta | None = None,
        absence_grace: timedelta | None = None,
    ) -> dict[str, tuple[str, datetime | None]]:
        for i in infos:
            row = self.s.models.setdefault(
                i.model_id, {"overall": {}, "failure": None, "first_seen": now, "running_at": None}
            )
            kept = row.get("state") == "DEREGISTERED" and i.state != "RUNNING"  # only running registers again
            row.update(info=i, state="DEREGISTERED" if kept else i.state)
            if i.state == "RUNNING":
                row["running_at"] = now
        for model_id, row in self.s.models.items():
            if model_id not in {i.model_id for i in infos} and row["state"] == "RUNNING":
                row["state"] = "STOPPED"
        if deregister_after is not None:
            for row in self.s.models.values():
                since = row["running_at"] or row["first_seen"]
                if row["state"] not in ("RUNNING", "DEREGISTERED", "VIRTUAL") and since <= now - deregister_after:
                    row["state"] = "DEREGISTERED"
        return {} if absence_grace is None else self.not_running(now, absence_grace)

    def not_running(self, now: datetime, grace: timedelta) -> dict[str, tuple[str, datetime | None]]:
        return {
            m: (row["state"], row["running_at"])
            for m, row in sorted(self.s.models.items())
            if row["state"] not in ("RUNNING", "DEREGISTERED", "VIRTUAL")
            and (row["running_at"] or row["first_seen"]) <= now - grace
        }

    def deregister(self, model_id: str, now: datetime) -> str | None:
        row = self.s.models.get(model_id)
        if row is None:
            return None
        before = str(row["state"])
        row["state"] = "DEREGISTERED"
        return before

    def running_ids(self) -> list[str]:
        return sorted(m for m, row in self.s.models.items() if row["state"] == "RUNNING")

    def record_failures(self, failures: Mapping[str, str], now: datetime) -> None:
        for model_id, code in failures.items():
            self.s.models[model_id]["failure"] = (code, now)

    def participants(self, model_ids: Sequence[str]) -> dict[str, Participant]:
        out = {}
        for model_id in model_ids:
            if model_id in self.s.models:
                i = self.s.models[model_id]["info"]
                out[model_id] = Participant(model_id, i.name, i.player_id, i.player_name, i.wallet)
        return out

    def set_overall_scores(self, scores: Mapping[str, Mapping[str, Any]]) -> None:
        for model_id, value in scores.items():
            self.s.models[model_id]["overall"] = dict(value)


class FakeRounds:
    def __init__(self, s: State) -> None:
        self.s = s

    def existing_inputs(self, input_ids: Sequence[str]) -> set[str]:
        return {i for i in input_ids if i in self.s.inputs}

    def add_rounds(self, inputs: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]]) -> None:
        """One prediction per (round, model): a row whose round and model are stored is skipped."""
        for row in inputs:
            self.s.inputs.setdefault(row["id"], dict(row))
        stored = {(p["input_id"], p["model_id"]) for p in self.s.predictions.values()}
        for row in predictions:
            if (row["input_id"], row["model_id"]) not in stored:
                stored.add((row["input_id"], row["model_id"]))
                self.s.predictions.setdefault(row["id"], dict(row))

    def due_inputs(self, now: datetime, after: tuple[datetime, str] | None, limit: int) -> list[DueInput]:
        due = sorted(
            (
                r
                for r in self.s.inputs.values()
                if r["status"] == InputStatus.RECEIVED.value and r["resolvable_at"] <= now
            ),
            key=lambda r: (r["resolvable_at"], r["id"]),
        )
        if after is not None:
            due = [r for r in due if (r["resolvable_at"], r["id"]) > after]
        return [
            DueInput(r["id"], r["scope_jsonb"], r["received_at"], r["resolvable_at"], r["meta_jsonb"])
            for r in due[:limit]
        ]

    def unsettled(self, until: datetime) -> int:
        return sum(
            1
            for r in self.s.inputs.values()
            if r["status"] == InputStatus.RECEIVED.value and r["resolvable_at"] <= until
        )

    def still_received(self, input_ids: Sequence[str]) -> set[str]:
        return {i for i in input_ids if self.s.inputs[i]["status"] == InputStatus.RECEIVED.value}

    def predictions_of(self, input_ids: Sequence[str]) -> list[PendingPrediction]:
        rows = sorted(
            (p for p in self.s.predictions.values() if p["input_id"] in set(input_ids)),
            key=lambda p: (p["input_id"], p["id"]),
        )
        return [
            PendingPrediction(
                p["id"], p["model_id"], p["input_id"], p["status"], p["inference_output_jsonb"], p["failed_reason"]
            )
            for p in rows
        ]

    def point_pairs(self, input_ids: Sequence[str]) -> list[tuple[str, str, datetime, Any, Any]]:
        out = []
        for p in self.predictions_of(input_ids):
            stored = self.s.inputs.get(p.input_id)
            if p.status == "SCORED" and stored is not None:
                actuals = stored.get("actuals_jsonb") or {}
                out.append((p.model_id, p.input_id, stored["round_at"], p.output.get("value"), actuals.get("return")))
        return out

    def prediction_counts(self, input_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for p in self.predictions_of(input_ids):
            total, scored = out.get(p.model_id, (0, 0))
            out[p.model_id] = (total + 1, scored + (p.status == "SCORED"))
        return out

    def resolve_inputs(self, truths: Mapping[str, Mapping[str, Any]], now: datetime) -> None:
        for input_id, truth in truths.items():
            self.s.inputs[input_id].update(
                status=InputStatus.RESOLVED.value, actuals_jsonb=dict(truth), resolved_at=now
            )

    def give_up_inputs(self, reasons: Mapping[str, str], metas: Mapping[str, Mapping[str, Any]], now: datetime) -> int:
        failed = 0
        for input_id, reason in reasons.items():
            self.s.inputs[input_id].update(
                status=InputStatus.RESOLVED.value, resolved_at=now, meta_jsonb=dict(metas[input_id])
            )
            for p in self.s.predictions.values():
                if p["input_id"] == input_id and p["status"] == PredictionStatus.PENDING.value:
                    p.update(status=PredictionStatus.FAILED.value, failed_reason=reason)
                    failed += 1
        return failed

    def set_statuses(self, changes: Sequence[StatusChange], rounds: Sequence[str] = ()) -> None:
        for c in changes:
            self.s.predictions[c.prediction_id].update(status=c.status, failed_reason=c.failed_reason)

    def _stored(self, r: dict[str, Any]) -> StoredInput:
        return StoredInput(
            r["id"],
            r["status"],
            r.get("scope_jsonb") or {},
            r["round_at"],
            r["received_at"],
            r["resolvable_at"],
            r.get("actuals_jsonb"),
            r.get("meta_jsonb") or {},
        )

    def stored_inputs(self, input_ids: Sequence[str]) -> dict[str, StoredInput]:
        return {i: self._stored(self.s.inputs[i]) for i in input_ids if i in self.s.inputs}

    def resolved_inputs(
        self, start: datetime, end: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[StoredInput]:
        rows = sorted(
            (
                r
                for r in self.s.inputs.values()
                if r["status"] == InputStatus.RESOLVED.value and start <= r["round_at"] < end
            ),
            key=lambda r: (r["round_at"], r["id"]),
        )
        if after is not None:
            rows = [r for r in rows if (r["round_at"], r["id"]) > after]
        return [self._stored(r) for r in rows[:limit]]

    def predictions_by_id(self, prediction_ids: Sequence[str]) -> dict[str, PendingPrediction]:
        out = {}
        for pid in prediction_ids:
            p = self.s.predictions.get(pid)
            if p is not None:
                out[pid] = PendingPrediction(
                    p["id"], p["model_id"], p["input_id"], p["status"], p["inference_output_jsonb"], p["failed_reason"]
                )
        return out


class FakeScores:
    def __init__(self, s: State) -> None:
        self.s = s

    def add(self, rows: Sequence[ScoreRow]) -> int:
        new = [r for r in rows if r.prediction_id not in self.s.scores]
        for r in new:
            self.s.scores[r.prediction_id] = r
        return len(new)

    def mark_dirty(self, kind: str, periods: Sequence[datetime], owed_at: datetime) -> None:
        for p in periods:
            if (kind, p) not in self.s.dirty:
                self.s.dirty[(kind, p)] = owed_at
            else:  # the earlier time is kept (None: owed since before owed_at existed)
                known = self.s.dirty[(kind, p)]
                self.s.dirty[(kind, p)] = None if known is None else min(known, owed_at)

    def dirty(self, kind: str, until: datetime) -> list[datetime]:
        return sorted(p for (k, p), at in self.s.dirty.items() if k == kind and (at is None or at <= until))

    def clear_dirty(self, kind: str, periods: Sequence[datetime]) -> None:
        for p in periods:
            self.s.dirty.pop((kind, p), None)

    def rebuild_snapshots(
        self, periods: Sequence[datetime], period_seconds: int, aggregator: Any, now: datetime
    ) -> int:
        from coordinator_core.contract import default_aggregate_snapshot

        written = 0
        for start in periods:
            end = start + timedelta(seconds=period_seconds)
            groups: dict[str, list[ScoreRow]] = {}
            for row in sorted(self.s.scores.values(), key=lambda r: r.prediction_id):
                if start < row.scored_at <= end:
                    groups.setdefault(row.model_id, []).append(row)
            for model_id, rows in groups.items():
                results = [dict(r.result) for r in rows if r.success]
                self.s.snapshots[(model_id, start)] = {
                    "period_end": end,
                    "totals": WindowTotals(
                        sum(r.value for r in rows),
                        len(rows),
                        sum(r.success for r in rows),
                        sum(r.prediction_status == PredictionStatus.FAILED.value for r in rows),
                        sum(r.prediction_status == PredictionStatus.ABSENT.value for r in rows),
                    ),
                    "summary": (aggregator or default_aggregate_snapshot)(results),
                }
                written += 1
        return written

    def window_totals(
        self, since: datetime, until: datetime, period_seconds: int | None = None
    ) -> dict[str, WindowTotals]:
        """The snapshots overlapping ``(since, until]``, less the scores of the edge periods outside
        it, as the SQL repository does (whose agreement with the scores themselves is tested on it)."""
        out: dict[str, WindowTotals] = {}
        for (model_id, start), snap in self.s.snapshots.items():
            if snap["period_end"] > since and start < until:
                out[model_id] = out.get(model_id, WindowTotals()) + snap["totals"]
        if period_seconds is None:
            return out
        low, high = period_start(since, period_seconds), period_end(until, period_seconds)
        for row in self.s.scores.values():
            if (not aligned(since, period_seconds) and low < row.scored_at <= since) or (
                not aligned(until, period_seconds) and until < row.scored_at <= high
            ):
                part = WindowTotals(
                    -row.value,
                    -1,
                    -int(row.success),
                    -int(row.prediction_status == PredictionStatus.FAILED.value),
                    -int(row.prediction_status == PredictionStatus.ABSENT.value),
                )
                out[row.model_id] = out.get(row.model_id, WindowTotals()) + part
        return {m: t for m, t in out.items() if t.prediction_count > 0}

    def counted_results(self, lo: datetime, hi: datetime) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(self.s.scores.values(), key=lambda r: (r.scored_at, r.prediction_id)):
            if lo < row.scored_at <= hi:
                out.setdefault(row.model_id, []).append({**row.result, "value": row.value})
        return out

    def snapshot_count(self, start: datetime, end: datetime) -> int:
        return sum(1 for snap in self.s.snapshots.values() if start < snap["period_end"] <= end)

    def first_snapshot_start(self) -> datetime | None:
        return min((start for _, start in self.s.snapshots), default=None)

    def snapshots_between(
        self,
        start: datetime,
        end: datetime,
        model_id: str | None = None,
        after: datetime | None = None,
        limit: int | None = None,
    ) -> list[SnapshotRow]:
        rows = [
            SnapshotRow(f"SNAP_{m}_{p:%Y%m%dT%H%M%S}", m, p, snap["period_end"], snap["totals"])
            for (m, p), snap in sorted(self.s.snapshots.items())
            if start < snap["period_end"] <= end
            and (model_id is None or m == model_id)
            and (after is None or p > after)
        ]
        return rows if limit is None else rows[:limit]

    def input_ids_between(self, lo: datetime, hi: datetime) -> list[str]:
        return sorted({r.input_id for r in self.s.scores.values() if lo < r.scored_at <= hi})

    def scores_between(self, lo: datetime, hi: datetime, model_id: str | None = None) -> list[ScoreRow]:
        return sorted(
            (
                r
                for r in self.s.scores.values()
                if lo < r.scored_at <= hi and (model_id is None or r.model_id == model_id)
            ),
            key=lambda r: (r.model_id, r.prediction_id),
        )

    def scores_of(self, prediction_ids: Sequence[str]) -> dict[str, ScoreRow]:
        return {p: self.s.scores[p] for p in prediction_ids if p in self.s.scores}


class FakeLeaderboards:
    def __init__(self, s: State) -> None:
        self.s = s

    def add(
        self, leaderboard_id: str, created_at: datetime, entries: list[dict[str, Any]], meta: Mapping[str, Any]
    ) -> None:
        self.s.leaderboards[created_at] = {"id": leaderboard_id, "entries": entries, "meta": dict(meta)}


class FakeCheckpoints:
    def __init__(self, s: State) -> None:
        self.s = s

    def last_end(self) -> datetime | None:
        return max((c["period_end"] for c in self.s.checkpoints.values()), default=None)

    def add(self, row: Mapping[str, Any]) -> None:
        if all(c["period_end"] != row["period_end"] for c in self.s.checkpoints.values()):
            self.s.checkpoints[row["id"]] = dict(row)

    def get(self, checkpoint_id: str) -> CheckpointRow | None:
        c = self.s.checkpoints.get(checkpoint_id)
        if c is None:
            return None
        return CheckpointRow(
            c["id"],
            c["period_start"],
            c["period_end"],
            c["status"],
            c["entries_jsonb"],
            c["meta_jsonb"],
            c["created_at"],
            c["tx_hash"],
            c["submitted_at"],
            c.get("merkle_root"),
            c.get("gate_jsonb"),
        )

    def confirm(self, checkpoint_id: str, tx_hash: str, now: datetime) -> bool:
        c = self.s.checkpoints.get(checkpoint_id)
        if c is None or c["status"] != CheckpointStatus.PENDING.value or c["tx_hash"] is not None:
            return False
        c.update(status=CheckpointStatus.SUBMITTED.value, tx_hash=tx_hash, submitted_at=now)
        return True

    def move(self, checkpoint_id: str, current: str, target: str) -> bool:
        c = self.s.checkpoints.get(checkpoint_id)
        if c is None or c["status"] != current:
            return False
        c["status"] = target
        return True

    def previous(self, period_end: datetime) -> CheckpointRow | None:
        earlier = [
            c
            for c in self.s.checkpoints.values()
            if c["period_end"] < period_end and c["status"] != CheckpointStatus.GATED.value
        ]
        if not earlier:
            return None
        return self.get(max(earlier, key=lambda c: c["period_end"])["id"])

    def set_gate(self, checkpoint_id: str, current: str, status: str, gate: Mapping[str, Any]) -> bool:
        c = self.s.checkpoints.get(checkpoint_id)
        if c is None or c["status"] != current or c["tx_hash"] is not None:
            return False
        c.update(status=status, gate_jsonb=dict(gate))
        return True


class FakeUnitOfWork:
    def __init__(self, state: State, read_only: bool = False) -> None:
        self.state = state
        self.read_only = read_only

    def __enter__(self) -> FakeUnitOfWork:
        self.work = copy.deepcopy(self.state)
        s = self.work
        self.feeds, self.configs, self.models = FakeFeeds(s), FakeConfigs(s), FakeModels(s)
        self.rounds, self.scores = FakeRounds(s), FakeScores(s)
        self.leaderboards, self.checkpoints = FakeLeaderboards(s), FakeCheckpoints(s)
        return self

    def __exit__(self, *exc: object) -> None:
        self.work = None  # type: ignore[assignment]

    def lock(self, name: str) -> None:
        assert not self.read_only, "a read-only unit of work cannot lock"
        self.work.locks.append(name)

    def commit(self) -> None:
        assert not self.read_only, "a read-only unit of work cannot commit"
        self.work.commits += 1
        self.state.__dict__.update(copy.deepcopy(self.work).__dict__)


def fake_uow(state: State | None = None) -> tuple[State, Any]:
    """``(state, factory)``: the state every committed unit of work of ``factory`` shares."""
    state = state or State()
    return state, lambda read_only=False: FakeUnitOfWork(state, read_only)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hour_floor(value: datetime) -> datetime:
    return floor_time(value, 3600)
