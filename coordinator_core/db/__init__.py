"""Storage: SQLModel tables, engine and unit of work, alembic migrations."""
