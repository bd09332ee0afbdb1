"""Rounds: inputs (one per config and round time) and their predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, text
from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import update_rows, upsert_batches
from coordinator_core.db.engine import among, text_array
from coordinator_core.db.tables import Input, InputStatus, Prediction, PredictionStatus
from coordinator_core.domain.scoring import PendingPrediction, StatusChange
from coordinator_core.ports import DueInput, StoredInput

IN: Any = Input.__table__  # type: ignore[attr-defined]
P: Any = Prediction.__table__  # type: ignore[attr-defined]
RESOLVED = InputStatus.RESOLVED.value
SCORED = PredictionStatus.SCORED.value
PAGE = 5_000  # ids per IN (...) list
# the ids (and rounds) bound as one text array literal each, not a list psycopg2 renders as
# ARRAY[...] of one constant per id (35 ms of planning for 50,000)
SCORED_BY_ID = text(
    f"UPDATE predictions SET status = '{SCORED}', failed_reason = NULL WHERE id = ANY(CAST(:ids AS varchar[]))"
)
SCORED_IN_ROUNDS = text(
    f"UPDATE predictions AS p SET status = '{SCORED}', failed_reason = NULL "
    "FROM unnest(CAST(:ids AS varchar[])) AS u(id) WHERE p.input_id = ANY(CAST(:rounds AS varchar[])) AND p.id = u.id"
)
POINT_PAIRS = (  # built once: every leaderboard rebuild of a point competition reads it
    select(P.c.model_id, P.c.input_id, IN.c.round_at, P.c.inference_output_jsonb["value"], IN.c.actuals_jsonb["return"])
    .join(IN, IN.c.id == P.c.input_id)
    .where(P.c.input_id.in_(bindparam("ids", expanding=True)), P.c.status == PredictionStatus.SCORED.value)
)
EXISTING = {  # built once per dialect: every round asks
    dialect: select(IN.c.id).where(among(IN.c.id, "ids", dialect)) for dialect in ("postgresql", "sqlite")
}


class SqlRoundRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    # -- predict ------------------------------------------------------------------------------------
    def existing_inputs(self, input_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(input_ids)
        for offset in range(0, len(ids), PAGE):
            found.update(
                self.db.execute(EXISTING[self.db.dialect.name], {"ids": ids[offset : offset + PAGE]}).scalars()
            )
        return found

    def add_rounds(self, inputs: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]]) -> None:
        """Insert the rounds' inputs, then their predictions; a stored round (config, round time)
        or prediction (round, model) is left as it is (on Postgres one statement for both,
        ``bulk.upsert_batches``)."""
        upsert_batches(
            self.db, [(IN, inputs, ["prediction_config_id", "round_at"]), (P, predictions, ["input_id", "model_id"])]
        )

    # -- score --------------------------------------------------------------------------------------
    def due_inputs(self, now: datetime, after: tuple[datetime, str] | None, limit: int) -> list[DueInput]:
        """Rounds still RECEIVED whose ``resolvable_at`` has come, in ``(resolvable_at, id)`` order
        after the cursor ``after`` (index ``(status, resolvable_at)``)."""
        query = select(IN.c.id, IN.c.scope_jsonb, IN.c.received_at, IN.c.resolvable_at, IN.c.meta_jsonb).where(
            IN.c.status == InputStatus.RECEIVED.value, IN.c.resolvable_at <= now
        )
        if after is not None:
            at, key = after
            query = query.where(or_(IN.c.resolvable_at > at, and_(IN.c.resolvable_at == at, IN.c.id > key)))
        rows = self.db.execute(query.order_by(IN.c.resolvable_at, IN.c.id).limit(limit)).all()
        return [DueInput(r.id, r.scope_jsonb, r.received_at, r.resolvable_at, r.meta_jsonb or {}) for r in rows]

    def unsettled(self, until: datetime) -> int:
        """Rounds still RECEIVED (neither resolved nor given up) whose ``resolvable_at`` is at or
        before ``until``: what a checkpoint ending at ``until`` waits for."""
        query = select(func.count()).where(IN.c.status == InputStatus.RECEIVED.value, IN.c.resolvable_at <= until)
        return int(self.db.execute(query).scalar() or 0)

    def still_received(self, input_ids: Sequence[str]) -> set[str]:
        """Which of these rounds are still waiting for their ground truth (not resolved meanwhile)."""
        found: set[str] = set()
        ids = list(input_ids)
        for offset in range(0, len(ids), PAGE):
            found.update(
                self.db.execute(
                    select(IN.c.id).where(
                        IN.c.id.in_(ids[offset : offset + PAGE]), IN.c.status == InputStatus.RECEIVED.value
                    )
                ).scalars()
            )
        return found

    def predictions_of(self, input_ids: Sequence[str]) -> list[PendingPrediction]:
        out: list[PendingPrediction] = []
        ids = list(input_ids)
        for offset in range(0, len(ids), PAGE):
            rows = self.db.execute(
                select(P.c.id, P.c.model_id, P.c.input_id, P.c.status, P.c.inference_output_jsonb, P.c.failed_reason)
                .where(P.c.input_id.in_(ids[offset : offset + PAGE]))
                .order_by(P.c.input_id, P.c.id)
            ).all()
            out += [  # unpacked as tuples: a row's attributes by name cost 5 µs a prediction
                PendingPrediction(pid, model_id, input_id, status, output or {}, reason)
                for pid, model_id, input_id, status, output, reason in rows
            ]
        return out

    def point_pairs(self, input_ids: Sequence[str]) -> list[tuple[str, str, datetime, Any, Any]]:
        """``(model_id, input_id, round_at, output "value", actuals "return")`` of every SCORED
        prediction of the rounds ``input_ids``: one join per page of ids that reads only those two
        JSON values (not whole outputs and rounds), for the point metrics."""
        out: list[tuple[str, str, datetime, Any, Any]] = []
        ids = sorted(set(input_ids))
        for offset in range(0, len(ids), PAGE):
            out += [tuple(r) for r in self.db.execute(POINT_PAIRS, {"ids": ids[offset : offset + PAGE]}).all()]
        return out

    def prediction_counts(self, input_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Per model, ``(predictions of any status, SCORED ones)`` of the rounds ``input_ids``: one
        ``GROUP BY`` per page of ids, no outputs read."""
        out: dict[str, tuple[int, int]] = {}
        ids = sorted(set(input_ids))
        scored = func.sum(case((P.c.status == PredictionStatus.SCORED.value, 1), else_=0))
        for offset in range(0, len(ids), PAGE):
            rows = self.db.execute(
                select(P.c.model_id, func.count(), scored)
                .where(P.c.input_id.in_(ids[offset : offset + PAGE]))
                .group_by(P.c.model_id)
            ).all()
            for model_id, total, done in rows:
                before = out.get(model_id, (0, 0))
                out[model_id] = (before[0] + int(total), before[1] + int(done or 0))
        return out

    def resolve_inputs(self, truths: Mapping[str, Mapping[str, Any]], now: datetime) -> None:
        update_rows(
            self.db,
            IN,
            "id",
            [
                {"id": input_id, "status": RESOLVED, "actuals_jsonb": dict(truth), "resolved_at": now}
                for input_id, truth in truths.items()
            ],
        )

    def give_up_inputs(self, reasons: Mapping[str, str], metas: Mapping[str, Mapping[str, Any]], now: datetime) -> int:
        """Resolve rounds without ground truth: the input keeps why (``meta.unresolved_reason``),
        and its PENDING predictions fail with ``reasons[input_id]``. Returns predictions failed."""
        if not reasons:
            return 0
        update_rows(
            self.db,
            IN,
            "id",
            [
                {"id": input_id, "status": RESOLVED, "resolved_at": now, "meta_jsonb": dict(metas[input_id])}
                for input_id in reasons
            ],
        )
        pending = self.db.execute(
            select(P.c.id, P.c.input_id).where(
                P.c.input_id.in_(list(reasons)), P.c.status == PredictionStatus.PENDING.value
            )
        ).all()
        update_rows(
            self.db,
            P,
            "id",
            [
                {"id": r.id, "status": PredictionStatus.FAILED.value, "failed_reason": reasons[r.input_id]}
                for r in pending
            ],
        )
        return len(pending)

    def set_statuses(self, changes: Sequence[StatusChange], rounds: Sequence[str] = ()) -> None:
        """Every prediction's new status (and reason), set-based: on Postgres one ``UPDATE`` for
        the predictions that were scored, and one staged update for those that failed (each with
        its reason). ``rounds``, the rounds of the changed predictions when the caller knows them,
        narrows the first to their rows (an index scan on the round, the ids joined by hash:
        half the time of a batch of 50,000, which the planner otherwise took as a scan of the
        whole table); a prediction it does not find there is updated by its id alone."""
        rest = list(changes)
        if self.db.dialect.name == "postgresql":
            scored = sorted({c.prediction_id for c in rest if c.status == SCORED and c.failed_reason is None})
            if scored:
                done = 0
                if rounds:
                    done = self.db.execute(
                        SCORED_IN_ROUNDS, {"ids": text_array(scored), "rounds": text_array(sorted(set(rounds)))}
                    ).rowcount  # type: ignore[attr-defined]
                if done != len(scored):
                    self.db.execute(SCORED_BY_ID, {"ids": text_array(scored)})
            rest = [c for c in rest if not (c.status == SCORED and c.failed_reason is None)]
        update_rows(
            self.db,
            P,
            "id",
            [{"id": c.prediction_id, "status": c.status, "failed_reason": c.failed_reason} for c in rest],
        )

    # -- reads of stored rounds (explain, shadow scoring) ---------------------------------------------
    def stored_inputs(self, input_ids: Sequence[str]) -> dict[str, StoredInput]:
        out: dict[str, StoredInput] = {}
        ids = sorted(set(input_ids))
        for offset in range(0, len(ids), PAGE):
            rows = self.db.execute(select(*INPUT_COLUMNS).where(IN.c.id.in_(ids[offset : offset + PAGE]))).all()
            out.update((r.id, _stored_input(r)) for r in rows)
        return out

    def resolved_inputs(
        self, start: datetime, end: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[StoredInput]:
        """RESOLVED rounds with ``round_at`` in ``[start, end)``, in ``(round_at, id)`` order after
        ``after``."""
        query = select(*INPUT_COLUMNS).where(IN.c.status == RESOLVED, IN.c.round_at >= start, IN.c.round_at < end)
        if after is not None:
            at, key = after
            query = query.where(or_(IN.c.round_at > at, and_(IN.c.round_at == at, IN.c.id > key)))
        rows = self.db.execute(query.order_by(IN.c.round_at, IN.c.id).limit(limit)).all()
        return [_stored_input(r) for r in rows]

    def predictions_by_id(self, prediction_ids: Sequence[str]) -> dict[str, PendingPrediction]:
        out: dict[str, PendingPrediction] = {}
        ids = sorted(set(prediction_ids))
        for offset in range(0, len(ids), PAGE):
            rows = self.db.execute(
                select(
                    P.c.id, P.c.model_id, P.c.input_id, P.c.status, P.c.inference_output_jsonb, P.c.failed_reason
                ).where(P.c.id.in_(ids[offset : offset + PAGE]))
            ).all()
            out.update(
                (
                    r.id,
                    PendingPrediction(
                        r.id, r.model_id, r.input_id, r.status, r.inference_output_jsonb or {}, r.failed_reason
                    ),
                )
                for r in rows
            )
        return out


INPUT_COLUMNS = (
    IN.c.id,
    IN.c.status,
    IN.c.scope_jsonb,
    IN.c.round_at,
    IN.c.received_at,
    IN.c.resolvable_at,
    IN.c.actuals_jsonb,
    IN.c.meta_jsonb,
)


def _stored_input(r: Any) -> StoredInput:
    return StoredInput(
        r.id,
        r.status,
        r.scope_jsonb or {},
        r.round_at,
        r.received_at,
        r.resolvable_at,
        r.actuals_jsonb,
        r.meta_jsonb or {},
    )
