"""predictions: index (performed_at, id) for time-ordered pages without a model filter

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_predictions_performed_at", "predictions", ["performed_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_predictions_performed_at", table_name="predictions")
