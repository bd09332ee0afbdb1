"""Leaderboards: one row per as-of time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from coordinator_core.db.bulk import upsert_rows
from coordinator_core.db.tables import Leaderboard

LB: Any = Leaderboard.__table__  # type: ignore[attr-defined]


class SqlLeaderboardRepository:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def add(
        self, leaderboard_id: str, created_at: datetime, entries: list[dict[str, Any]], meta: Mapping[str, Any]
    ) -> None:
        """One leaderboard per ``created_at``; rebuilding at the same time replaces its entries."""
        upsert_rows(
            self.db,
            LB,
            [{"id": leaderboard_id, "created_at": created_at, "entries_jsonb": entries, "meta_jsonb": dict(meta)}],
            ["created_at"],
            update=["entries_jsonb"],
        )
