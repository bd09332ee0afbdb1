"""derived_dirty: work owed to snapshots and the leaderboard, durable across kills

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from coordinator_core.db.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "derived_dirty",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "period_start"),
    )


def downgrade() -> None:
    op.drop_table("derived_dirty")
