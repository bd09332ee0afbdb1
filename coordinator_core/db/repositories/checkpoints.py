"""Emission checkpoints and their two conditional writes (confirm, move)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import upsert_rows
from coordinator_core.db.tables import Checkpoint, CheckpointStatus
from coordinator_core.ports import CheckpointRow

CK: Any = Checkpoint.__table__  # type: ignore[attr-defined]
COLUMNS = (
    CK.c.id,
    CK.c.period_start,
    CK.c.period_end,
    CK.c.status,
    CK.c.entries_jsonb,
    CK.c.meta_jsonb,
    CK.c.created_at,
    CK.c.tx_hash,
    CK.c.submitted_at,
    CK.c.merkle_root,
    CK.c.gate_jsonb,
)


def checkpoint_row(row: Any) -> CheckpointRow:
    """A row selected with ``COLUMNS`` as the port's ``CheckpointRow``."""
    return CheckpointRow(
        row.id,
        row.period_start,
        row.period_end,
        row.status,
        row.entries_jsonb or [],
        row.meta_jsonb or {},
        row.created_at,
        row.tx_hash,
        row.submitted_at,
        row.merkle_root,
        row.gate_jsonb,
    )


class SqlCheckpointRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def last_end(self) -> datetime | None:
        return self.db.execute(select(func.max(CK.c.period_end))).scalar()

    def add(self, row: Mapping[str, Any]) -> None:
        """One checkpoint per ``period_end``; an existing one is never replaced."""
        upsert_rows(self.db, CK, [row], ["period_end"])

    def get(self, checkpoint_id: str) -> CheckpointRow | None:
        row = self.db.execute(select(*COLUMNS).where(CK.c.id == checkpoint_id)).first()
        return checkpoint_row(row) if row is not None else None

    def confirm(self, checkpoint_id: str, tx_hash: str, now: datetime) -> bool:
        """PENDING → SUBMITTED with ``tx_hash``: one conditional UPDATE (``status = PENDING AND
        tx_hash IS NULL``), so of two concurrent confirms only one changes the row."""
        result = self.db.execute(
            CK.update()
            .where(CK.c.id == checkpoint_id, CK.c.status == CheckpointStatus.PENDING.value, CK.c.tx_hash.is_(None))
            .values(status=CheckpointStatus.SUBMITTED.value, tx_hash=tx_hash, submitted_at=now)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def move(self, checkpoint_id: str, current: str, target: str) -> bool:
        """``current`` → ``target`` only if the status is still ``current`` (one conditional UPDATE)."""
        result = self.db.execute(
            CK.update().where(CK.c.id == checkpoint_id, CK.c.status == current).values(status=target)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def previous(self, period_end: datetime) -> CheckpointRow | None:
        """The newest checkpoint ending before ``period_end`` that is not GATED (unique index on
        ``period_end``)."""
        row = self.db.execute(
            select(*COLUMNS)
            .where(CK.c.period_end < period_end, CK.c.status != CheckpointStatus.GATED.value)
            .order_by(CK.c.period_end.desc())
            .limit(1)
        ).first()
        return checkpoint_row(row) if row is not None else None

    def set_gate(self, checkpoint_id: str, current: str, status: str, gate: Mapping[str, Any]) -> bool:
        """The gate's verdict and ``status``, only if the status is still ``current`` (one conditional
        UPDATE; a confirmed checkpoint is never touched)."""
        result = self.db.execute(
            CK.update()
            .where(CK.c.id == checkpoint_id, CK.c.status == current, CK.c.tx_hash.is_(None))
            .values(status=status, gate_jsonb=dict(gate))
        )
        return result.rowcount == 1  # type: ignore[attr-defined]
