"""The model registry: the ``models`` table follows what the gateway reports.

``running_at`` is the last time the gateway reported the model RUNNING. A model it no longer
reports is STOPPED; a registered model (any state but DEREGISTERED) that is not RUNNING is charged
ABSENT rows by the rounds (``not_running``, after ``ABSENCE_GRACE_SECONDS``) until it runs again or
is DEREGISTERED: automatically after ``MODEL_DEREGISTER_AFTER_SECONDS`` without being seen running
(counted from ``first_seen_at`` for a model never seen running), or by ``deregister``. A
DEREGISTERED model stays so until the gateway reports it RUNNING: then it is registered again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, any_, bindparam, case, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import update_rows, upsert_rows
from coordinator_core.db.tables import Model
from coordinator_core.domain.ranking import Participant
from coordinator_core.domain.statuses import ModelState
from coordinator_core.gateway.base import ModelInfo

log = logging.getLogger(__name__)
M: Any = Model.__table__  # type: ignore[attr-defined]
RUNNING, STOPPED, DEREGISTERED = ModelState.RUNNING.value, ModelState.STOPPED.value, ModelState.DEREGISTERED.value
VIRTUAL = ModelState.VIRTUAL.value
SYNCED = [
    "name",
    "deployment_identifier",
    "player_id",
    "player_name",
    "wallet",
    "hotkey",
    "state",
    "last_seen_at",
    "meta_jsonb",
]


class SqlModelRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def sync(self, infos: Sequence[ModelInfo], now: datetime, deregister_after: timedelta | None = None) -> None:
        """Insert new models, refresh known ones, mark models the gateway no longer reports STOPPED;
        ``running_at = now`` for the models it reports RUNNING; a DEREGISTERED model stays so unless
        it is reported RUNNING (then it is registered again); with ``deregister_after``, a
        registered model not seen running for that long is DEREGISTERED. Set-based: one statement
        for each of these."""
        reported_running = [i.model_id for i in infos if i.state == RUNNING]
        fields = [c for c in SYNCED if c != "last_seen_at"]  # last seen changes every run: set below
        stored = {r.id: tuple(r[1:]) for r in self.db.execute(select(M.c.id, *[M.c[c] for c in fields])).all()}
        state_at = fields.index("state")
        deregistered = {model_id for model_id, row in stored.items() if row[state_at] == DEREGISTERED}
        back = sorted(deregistered & set(reported_running))
        if back:
            log.info("models seen running again, registered again: %s", ", ".join(back))
        rows: list[dict[str, Any]] = [
            {
                "id": i.model_id,
                "name": i.name,
                "deployment_identifier": i.deployment_id,
                "player_id": i.player_id,
                "player_name": i.player_name,
                "wallet": i.wallet,
                "hotkey": i.hotkey,
                "state": DEREGISTERED if i.model_id in deregistered and i.state != RUNNING else i.state,
                "first_seen_at": now,
                "last_seen_at": now,
                "created_at": now,
                "updated_at": now,
                "overall_score_jsonb": {},
                "scores_by_scope_jsonb": [],
                "meta_jsonb": i.meta,
            }
            for i in infos
        ]
        # write only the new or changed ones (a re-run, or a round with the same models, writes none)
        upsert_rows(
            self.db, M, [r for r in rows if stored.get(r["id"]) != tuple(r[c] for c in fields)], ["id"], update=SYNCED
        )
        known = [i.model_id for i in infos]
        if known:
            # one statement for what changes every run: last seen now, and running now for the models
            # reported RUNNING (after the upsert a reported model's state is RUNNING exactly then)
            self.db.execute(
                M.update()
                .where(
                    _among(self.db, M.c.id, known),
                    M.c.last_seen_at.is_distinct_from(now)
                    | ((M.c.state == RUNNING) & M.c.running_at.is_distinct_from(now)),
                )
                .values(
                    last_seen_at=now,
                    running_at=case((M.c.state == RUNNING, literal(now, M.c.running_at.type)), else_=M.c.running_at),
                )
            )
        self.db.execute(
            M.update()
            .where(~_among(self.db, M.c.id, known), M.c.state == RUNNING)
            .values(state=STOPPED, updated_at=now)
        )
        if deregister_after is not None:
            gone = self.db.execute(
                M.update()
                .where(
                    M.c.state.not_in([RUNNING, DEREGISTERED, VIRTUAL]),
                    func.coalesce(M.c.running_at, M.c.first_seen_at) <= now - deregister_after,
                )
                .values(state=DEREGISTERED, updated_at=now)
                .returning(M.c.id)
            ).scalars()
            dropped = sorted(gone)
            if dropped:
                log.warning(
                    "models not seen running for %s, deregistered (no more ABSENT rows): %s",
                    deregister_after,
                    ", ".join(dropped),
                )

    def not_running(self, now: datetime, grace: timedelta) -> dict[str, tuple[str, datetime | None]]:
        """Registered models (not DEREGISTERED) that are not RUNNING and were last seen running at
        or before ``now - grace`` (never seen running: first seen then): ``id -> (state,
        running_at)``, the models a round at ``now`` writes ABSENT."""
        rows = self.db.execute(
            select(M.c.id, M.c.state, M.c.running_at)
            .where(
                M.c.state.not_in([RUNNING, DEREGISTERED, VIRTUAL]),
                func.coalesce(M.c.running_at, M.c.first_seen_at) <= now - grace,
            )
            .order_by(M.c.id)
        ).all()
        return {r.id: (r.state, r.running_at) for r in rows}

    def deregister(self, model_id: str, now: datetime) -> str | None:
        """Deregister one model at once: its state before (``None`` when the id is unknown)."""
        before = self.db.execute(select(M.c.state).where(M.c.id == model_id)).scalar()
        if before is not None and before != DEREGISTERED:
            self.db.execute(M.update().where(M.c.id == model_id).values(state=DEREGISTERED, updated_at=now))
        return before

    def running_ids(self) -> list[str]:
        return list(self.db.execute(select(M.c.id).where(M.c.state == RUNNING).order_by(M.c.id)).scalars())

    def record_failures(self, failures: Mapping[str, str], now: datetime) -> None:
        """The last failure code per model: one set-based update."""
        update_rows(
            self.db,
            M,
            "id",
            [
                {"id": model_id, "last_failure_code": code, "last_failure_at": now}
                for model_id, code in failures.items()
            ],
        )

    def participants(self, model_ids: Sequence[str]) -> dict[str, Participant]:
        if not model_ids:
            return {}
        rows = self.db.execute(
            select(M.c.id, M.c.name, M.c.player_id, M.c.player_name, M.c.wallet).where(
                M.c.id.in_(sorted(set(model_ids)))
            )
        ).all()
        return {r.id: Participant(r.id, r.name, r.player_id, r.player_name, r.wallet) for r in rows}

    def set_overall_scores(self, scores: Mapping[str, Mapping[str, Any]]) -> None:
        """``overall_score_jsonb`` of every model in ``scores``: one set-based update."""
        update_rows(
            self.db, M, "id", [{"id": model_id, "overall_score_jsonb": dict(v)} for model_id, v in scores.items()]
        )


def _among(db: Connection, column: Any, ids: Sequence[str]) -> Any:
    """``column IN ids`` as one bound array on Postgres (``= ANY(:ids)``: no statement of thousands of
    parameters to compile and send), a plain ``IN`` on SQLite."""
    if db.dialect.name == "postgresql":
        return column == any_(bindparam("among_ids", list(ids), type_=ARRAY(String)))
    return column.in_(list(ids))
