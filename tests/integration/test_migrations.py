"""The alembic migrations create exactly the schema the SQLModel tables declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import coordinator_core.db.tables  # noqa: F401
from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import current, head


def test_migrated_schema_matches_the_tables(db_url: str) -> None:
    assert current(db_url) == head() == "0006"
    with get_engine(db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_models_leave_room_for_in_place_updates_on_postgres(db_url: str) -> None:
    """Revision 0006: every round rewrites each model's last seen time; fillfactor 50 keeps those
    updates heap-only (no index writes)."""
    if not db_url.startswith("postgresql"):
        return
    with get_engine(db_url).connect() as connection:
        options = connection.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'models'")).scalar()
    assert options == ["fillfactor=50"]
