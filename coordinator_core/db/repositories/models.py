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
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, false, func, literal, select, true, union_all
from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import update_rows, upsert_rows
from coordinator_core.db.engine import among
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
SYNCED_FIELDS = [c for c in SYNCED if c != "last_seen_at"]  # compared with the gateway's report
STATE_AT = SYNCED_FIELDS.index("state")
_SYNC: dict[str, tuple[Any, Any]] = {}  # per dialect: (the reported models' stored rows, the UPDATE)


def _stale(row: Any, cutoff: str) -> Any:
    """Not seen running since the bound ``cutoff`` (a model never seen running: since it was first
    seen). ``row``: the ``models`` columns (the table's, or those of the rows an UPDATE returns)."""
    return func.coalesce(row.running_at, row.first_seen_at) <= bindparam(cutoff, type_=M.c.running_at.type)


def _away(row: Any, cutoff: str) -> Any:
    """Registered (not DEREGISTERED), not RUNNING (nor a VIRTUAL ensemble), and stale: charged
    ABSENT rows by the rounds after the grace, DEREGISTERED by the sync after ``deregister_after``."""
    return row.state.not_in([RUNNING, DEREGISTERED, VIRTUAL]) & _stale(row, cutoff)


_STALE = _stale(M.c, "cutoff")
_AWAY = _away(M.c, "cutoff")
_NOT_RUNNING = select(M.c.id, M.c.state, M.c.running_at).where(_AWAY).order_by(M.c.id)


def _sync_statements(dialect: str) -> tuple[Any, Any]:
    """The two statements of every sync, built once per dialect: the stored rows of the reported
    models (bound ``known``), and the UPDATE (bound: ``now``, ``known``: the ids the
    gateway reports, ``cutoff``: ``now - deregister_after`` or NULL for no deregistration).

    For a reported model: last seen ``now``, and running ``now`` when RUNNING. A RUNNING model no
    longer reported: STOPPED. A registered model not RUNNING (nor DEREGISTERED, nor VIRTUAL) not
    seen running since ``cutoff`` (``first_seen_at`` for a model never seen running): DEREGISTERED;
    so is a RUNNING model no longer reported whose last run is that old (stopped and deregistered
    by the same sync). A change of state sets ``updated_at``. Returns the changed rows' id and new
    state."""
    built = _SYNC.get(dialect)
    if built is not None:
        return built
    now = bindparam("now", type_=M.c.last_seen_at.type)
    known = among(M.c.id, "known", dialect)
    running = M.c.state == RUNNING
    stops = ~known & running
    state = case(
        (stops & _STALE, literal(DEREGISTERED)),
        (stops, literal(STOPPED)),
        (_AWAY, literal(DEREGISTERED)),
        else_=M.c.state,
    )
    update = (
        M.update()
        .where(
            (known & (M.c.last_seen_at.is_distinct_from(now) | (running & M.c.running_at.is_distinct_from(now))))
            | stops
            | _AWAY
        )
        .values(
            last_seen_at=case((known, now), else_=M.c.last_seen_at),
            running_at=case((known & running, now), else_=M.c.running_at),
            state=state,
            updated_at=case((stops | _AWAY, now), else_=M.c.updated_at),
        )
        .returning(M.c.id, M.c.state)
    )
    stored = select(M.c.id, *[M.c[c] for c in SYNCED_FIELDS]).where(known)
    built = _SYNC[dialect] = (stored, update)
    return built


@cache
def _sync_and_away(update: Any) -> Any:
    """Postgres: the sync's ``update`` and ``not_running`` (bound ``grace``: ``now - grace``) in ONE
    statement. The UPDATE is a data-modifying CTE returning the rows it changed, with their new
    values; the models it did not touch are read as they were (unchanged by it). Rows: ``id,
    state, running_at, changed`` (the UPDATE wrote it), ``away`` (``not_running`` holds it)."""
    changed = update.returning(M.c.running_at, M.c.first_seen_at).cte("changed")
    return union_all(
        select(
            changed.c.id,
            changed.c.state,
            changed.c.running_at,
            true().label("changed"),
            _away(changed.c, "grace").label("away"),
        ),
        select(M.c.id, M.c.state, M.c.running_at, false(), true()).where(
            _away(M.c, "grace"), M.c.id.not_in(select(changed.c.id))
        ),
    )


class SqlModelRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def sync(
        self,
        infos: Sequence[ModelInfo],
        now: datetime,
        deregister_after: timedelta | None = None,
        absence_grace: timedelta | None = None,
    ) -> dict[str, tuple[str, datetime | None]]:
        """Insert new models, refresh known ones, mark models the gateway no longer reports STOPPED;
        ``running_at = now`` for the models it reports RUNNING; a DEREGISTERED model stays so unless
        it is reported RUNNING (then it is registered again); with ``deregister_after``, a
        registered model not seen running for that long is DEREGISTERED. One read, an upsert of
        the new or changed models only (none when the registry is unchanged), and one UPDATE for
        what changes every run (``_sync_statements``). With ``absence_grace``, returns
        ``not_running(now, absence_grace)`` after the sync (on Postgres read by the UPDATE's own
        statement, ``_sync_and_away``); without, ``{}``."""
        known = [i.model_id for i in infos]
        read, update = _sync_statements(self.db.dialect.name)
        # only the reported models' rows: a model not reported changes only by the UPDATE below, and
        # only from a state that is not DEREGISTERED
        stored = {r[0]: tuple(r[1:]) for r in self.db.execute(read, {"known": known}).all()}
        before = {model_id: row[STATE_AT] for model_id, row in stored.items()}
        changed: list[dict[str, Any]] = []
        back = []
        for i in infos:
            state = i.state
            if before.get(i.model_id) == DEREGISTERED:
                if state == RUNNING:
                    back.append(i.model_id)
                else:
                    state = DEREGISTERED  # stays so until it is seen running
            synced = (i.name, i.deployment_id, i.player_id, i.player_name, i.wallet, i.hotkey, state, i.meta)
            if stored.get(i.model_id) != synced:  # new, or changed: written (a re-run writes none)
                changed.append(
                    {
                        "id": i.model_id,
                        **dict(zip(SYNCED_FIELDS, synced, strict=True)),
                        "first_seen_at": now,
                        "last_seen_at": now,
                        "created_at": now,
                        "updated_at": now,
                        "overall_score_jsonb": {},
                        "scores_by_scope_jsonb": [],
                    }
                )
        if back:
            log.info("models seen running again, registered again: %s", ", ".join(sorted(back)))
        upsert_rows(self.db, M, changed, ["id"], update=SYNCED)
        cutoff = None if deregister_after is None else now - deregister_after
        params = {"now": now, "known": known, "cutoff": cutoff}
        away: dict[str, tuple[str, datetime | None]] = {}
        if absence_grace is not None and self.db.dialect.name == "postgresql":
            rows = self.db.execute(_sync_and_away(update), {**params, "grace": now - absence_grace}).all()
            changes = [(r.id, r.state) for r in rows if r.changed]
            away = {r.id: (r.state, r.running_at) for r in sorted(rows) if r.away}
        else:
            changes = [(r.id, r.state) for r in self.db.execute(update, params).all()]
            if absence_grace is not None:
                away = self.not_running(now, absence_grace)
        dropped = sorted(
            model_id for model_id, state in changes if state == DEREGISTERED and before.get(model_id) != DEREGISTERED
        )
        if dropped:
            log.warning(
                "models not seen running for %s, deregistered (no more ABSENT rows): %s",
                deregister_after,
                ", ".join(dropped),
            )
        return away

    def not_running(self, now: datetime, grace: timedelta) -> dict[str, tuple[str, datetime | None]]:
        """Registered models (not DEREGISTERED) that are not RUNNING and were last seen running at
        or before ``now - grace`` (never seen running: first seen then): ``id -> (state,
        running_at)``, the models a round at ``now`` writes ABSENT."""
        rows = self.db.execute(_NOT_RUNNING, {"cutoff": now - grace}).all()
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
