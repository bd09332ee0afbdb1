"""models: fillfactor 50 on Postgres, so the sync's update of every model each round is HOT

Revision ID: 0006
Revises: 0005

Every round's registry sync rewrites ``last_seen_at`` and ``running_at`` of every reported model
(``db.repositories.models``). None of those columns is indexed, so Postgres can update in place
(a heap-only tuple: no new index entries) when the row's page has room for the new version. With
the default fillfactor (100) pages are full and every update also writes the three indexes: at
5,000 models that update took 166 ms of a round; with room left in each page it is several times
cheaper. Pages written from now on keep half their space free (the table is small: one row per
model); existing pages gain room as vacuum frees old versions. SQLite: nothing to do.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE models SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE models RESET (fillfactor)")
