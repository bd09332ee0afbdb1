"""The alembic migrations create exactly the schema the SQLModel tables declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import coordinator_core.db.tables  # noqa: F401
from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import current, head


def test_migrated_schema_matches_the_tables(db_url: str) -> None:
    assert current(db_url) == head() == "0005"
    with get_engine(db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []
