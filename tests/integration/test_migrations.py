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


def test_round_path_storage_on_postgres(db_url: str) -> None:
    """Revision 0006: every round rewrites each model's last seen time; fillfactor 50 keeps those
    updates heap-only (no index writes); the round input is compressed with lz4."""
    if not db_url.startswith("postgresql"):
        return
    with get_engine(db_url).connect() as connection:
        options = connection.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'models'")).scalar()
        compression = connection.execute(
            text(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = 'inputs'::regclass "
                "AND attname = 'raw_data_jsonb'"
            )
        ).scalar()
        lz4 = connection.execute(
            text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
    assert options == ["fillfactor=50"]
    assert compression == ("l" if lz4 else "")  # the round input: lz4 where the server has it
