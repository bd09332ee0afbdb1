"""derived_dirty.owed_at (when the work was owed: paid only by a refresh at or after it) and
models.running_at (when the gateway last reported the model RUNNING: absence and deregistration)

Revision ID: 0005
Revises: 0004

Existing debts keep ``owed_at`` NULL: owed since before this revision, paid by any refresh (as
before). Existing models get ``running_at`` = ``last_seen_at``, the last time the gateway reported
them (the best time known of their last run).
"""

import sqlalchemy as sa
from alembic import op

from coordinator_core.db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("derived_dirty") as batch:
        batch.add_column(sa.Column("owed_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("running_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE models SET running_at = last_seen_at")


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("running_at")
    with op.batch_alter_table("derived_dirty") as batch:
        batch.drop_column("owed_at")
