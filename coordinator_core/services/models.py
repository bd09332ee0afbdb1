"""The model registry: the ``models`` table follows what the gateway reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from coordinator_core.db.engine import upsert_statement
from coordinator_core.db.tables import Model
from coordinator_core.gateway.base import ModelInfo


def sync_registry(session: Session, infos: list[ModelInfo], now: datetime) -> None:
    """Insert new models, refresh known ones, and mark models the gateway no longer reports STOPPED."""
    table: Any = Model.__table__
    if infos:
        rows = [
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
        session.execute(
            upsert_statement(
                session,
                table,
                ["id"],
                update=[
                    "name",
                    "deployment_identifier",
                    "player_id",
                    "player_name",
                    "wallet",
                    "hotkey",
                    "state",
                    "last_seen_at",
                    "meta_jsonb",
                ],
            ),
            rows,
        )
    known = [i.model_id for i in infos]
    session.execute(
        table.update().where(~table.c.id.in_(known), table.c.state == "RUNNING").values(state="STOPPED", updated_at=now)
    )


def running_model_ids(session: Session) -> list[str]:
    return list(session.exec(select(Model.id).where(Model.state == "RUNNING").order_by(col(Model.id))).all())


def record_failures(session: Session, failures: dict[str, str], now: datetime) -> None:
    table: Any = Model.__table__
    for model_id, code in failures.items():
        session.execute(
            table.update().where(table.c.id == model_id).values(last_failure_code=code, last_failure_at=now)
        )
