"""Scheduled prediction configs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import upsert_rows
from coordinator_core.db.tables import ScheduledPredictionConfigRow
from coordinator_core.ports import StoredConfig

C: Any = ScheduledPredictionConfigRow.__table__  # type: ignore[attr-defined]
ACTIVE = (
    select(C.c.id, C.c.scope_key, C.c.scope_template_jsonb, C.c.schedule_jsonb, C.c.order)
    .where(C.c.active.is_(True))
    .order_by(C.c.order, C.c.id)
)


class SqlConfigRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def upsert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Upsert by ``scope_key``; an unchanged config writes nothing."""
        upsert_rows(
            self.db,
            C,
            rows,
            ["scope_key"],
            update=["scope_template_jsonb", "schedule_jsonb", "active", "order", "meta_jsonb"],
        )

    def deactivate_unlisted(self, listed: Sequence[str], now: datetime) -> None:
        self.db.execute(
            C.update().where(~C.c.id.in_(list(listed)), C.c.active.is_(True)).values(active=False, updated_at=now)
        )

    def active(self) -> list[StoredConfig]:
        rows = self.db.execute(ACTIVE).all()
        return [
            StoredConfig(r.id, r.scope_key, r.scope_template_jsonb or {}, r.schedule_jsonb or {}, r.order) for r in rows
        ]
