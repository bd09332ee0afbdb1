"""checkpoints: merkle_root (tamper evidence) and gate_jsonb (the gate's verdict before money moves)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from coordinator_core.db.types import JsonType

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("merkle_root", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("gate_jsonb", JsonType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("gate_jsonb")
        batch.drop_column("merkle_root")
