"""Alembic environment: runs against the URL given by ``coordinator_core.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import coordinator_core.db.tables  # noqa: F401  (registers the tables)
from coordinator_core.db.engine import get_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = get_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
