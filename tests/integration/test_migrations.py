"""The alembic migrations create exactly the schema the SQLModel tables declare."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import coordinator_core.db.tables  # noqa: F401
from coordinator_core.db.engine import get_engine
from coordinator_core.db.migrate import current, head


def test_migrated_schema_matches_the_tables(db_url: str) -> None:
    assert current(db_url) == head() == "0007"
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


UNUSED = {"ix_predictions_due", "ix_predictions_prediction_config_id", "ix_scores_input_id"}


def _indexes(db_url: str) -> set[str]:
    from sqlalchemy import inspect

    with get_engine(db_url).connect() as connection:
        found = inspect(connection)
        return {i["name"] for table in ("predictions", "scores") for i in found.get_indexes(table)}


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_revision_0007_drops_the_unused_indexes_and_makes_room_for_heap_only_status_changes(
    dialect: str, tmp_path: Path
) -> None:
    """Revision 0007 (on a database of this test's own: it migrates down and up again): every
    prediction and score written (and every status change) paid for three indexes nothing reads;
    predictions get fillfactor 50 on Postgres; the rest of the schema is untouched, and the
    downgrade restores both."""
    from alembic import command

    from coordinator_core.db.migrate import alembic_config, upgrade
    from tests.pg import create_database

    url = create_database("migrations") if dialect == "postgres" else f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    kept = _indexes(url)
    assert not kept & UNUSED and {"ix_predictions_performed_at", "ix_scores_scored_at"} <= kept
    assert _fillfactor(url) == (["fillfactor=50"] if dialect == "postgres" else None)
    command.downgrade(alembic_config(url), "0006")
    assert _indexes(url) == kept | UNUSED and _fillfactor(url) is None
    command.upgrade(alembic_config(url), "head")
    assert _indexes(url) == kept and current(url) == "0007"
    get_engine(url).dispose()


def _fillfactor(url: str) -> list[str] | None:
    if not url.startswith("postgresql"):
        return None
    with get_engine(url).connect() as connection:
        return connection.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'predictions'")).scalar()
