"""The model registry: the ``models`` table follows what the gateway reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import COPY_THRESHOLD, update_rows, upsert_rows
from coordinator_core.db.tables import Model
from coordinator_core.domain.ranking import Participant
from coordinator_core.gateway.base import ModelInfo

M: Any = Model.__table__  # type: ignore[attr-defined]
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

    def sync(self, infos: Sequence[ModelInfo], now: datetime) -> None:
        """Insert new models, refresh known ones, mark models the gateway no longer reports STOPPED."""
        rows: list[dict[str, Any]] = [
            {
                "id": i.model_id,
                "name": i.name,
                "deployment_identifier": i.deployment_id,
                "player_id": i.player_id,
                "player_name": i.player_name,
                "wallet": i.wallet,
                "hotkey": i.hotkey,
                "state": i.state,
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
        if len(rows) >= COPY_THRESHOLD:  # many models: rewrite only the new or changed ones
            stored = {
                r.id: tuple(r[1:])
                for r in self.db.execute(select(M.c.id, *[M.c[c] for c in SYNCED if c != "last_seen_at"])).all()
            }
            fields = [c for c in SYNCED if c != "last_seen_at"]
            changed = [r for r in rows if stored.get(r["id"]) != tuple(r[c] for c in fields)]
            same = [r["id"] for r in rows if stored.get(r["id"]) == tuple(r[c] for c in fields)]
            upsert_rows(self.db, M, changed, ["id"], update=SYNCED)
            if same:
                self.db.execute(
                    M.update().where(M.c.id.in_(same), M.c.last_seen_at.is_distinct_from(now)).values(last_seen_at=now)
                )
        else:
            upsert_rows(self.db, M, rows, ["id"], update=SYNCED)
        known = [i.model_id for i in infos]
        self.db.execute(
            M.update().where(~M.c.id.in_(known), M.c.state == "RUNNING").values(state="STOPPED", updated_at=now)
        )

    def running_ids(self) -> list[str]:
        return list(self.db.execute(select(M.c.id).where(M.c.state == "RUNNING").order_by(M.c.id)).scalars())

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
