"""Round-path storage on Postgres: models fillfactor 50 (the sync's update of every model each
round is HOT) and the round input compressed with lz4

Revision ID: 0006
Revises: 0005

Every round's registry sync rewrites ``last_seen_at`` and ``running_at`` of every reported model
(``db.repositories.models``). None of those columns is indexed, so Postgres can update in place
(a heap-only tuple: no new index entries) when the row's page has room for the new version. With
the default fillfactor (100) pages are full and every update also writes the three indexes: at
5,000 models that update took 166 ms of a round; with room left in each page about half of that.
Pages written from now on keep half their space free (the table is small: one row per model);
existing pages gain room as vacuum frees old versions.

Every round also writes its input (``inputs.raw_data_jsonb``: the candle window the models saw,
about 19 KB for 120 one-minute candles), which Postgres compresses on insert: lz4 instead of the
default pglz takes that insert from about 1.2 ms to 0.8 ms. Only where the server was built with
lz4 (``default_toast_compression`` lists it); existing values stay as stored. SQLite: nothing to do.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LZ4 = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        ALTER TABLE inputs ALTER COLUMN raw_data_jsonb SET COMPRESSION lz4;
    END IF;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE models SET (fillfactor = 50)")
        op.execute(LZ4)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE inputs ALTER COLUMN raw_data_jsonb SET COMPRESSION default")
        op.execute("ALTER TABLE models RESET (fillfactor)")
