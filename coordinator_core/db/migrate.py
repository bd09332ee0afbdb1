"""Schema migrations with alembic (``coordinator db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creates the SQLite file if needed)."""
    command.upgrade(alembic_config(url), revision)


def head() -> str:
    """The newest revision the migrations define."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return str(ScriptDirectory.from_config(config).get_current_head())


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from coordinator_core.db.engine import get_engine

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
