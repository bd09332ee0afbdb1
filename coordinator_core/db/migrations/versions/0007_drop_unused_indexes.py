"""Drop three indexes no query uses: predictions (status, resolvable_at), predictions
(prediction_config_id) and scores (input_id)

Revision ID: 0007
Revises: 0006

Each prediction and each score written pays one entry in every index of its table, and a
prediction's status change (PENDING -> SCORED, FAILED, ABSENT at scoring time) writes a new row
version with a new entry in every index again (``status`` is not a heap-only update). These three
serve nothing:

- ``ix_predictions_due (status, resolvable_at)``: what is due is found through the rounds
  (``ix_inputs_due`` on ``inputs``), then their predictions by ``uq_predictions_round_model``;
- ``ix_predictions_prediction_config_id`` and ``ix_scores_input_id``: no query filters on those
  columns, and the rows they point at (configs, rounds) are never deleted, so no foreign-key check
  looks them up either (a config is deactivated, never removed).

The queries, their results and the constraints are unchanged. Downgrade creates them again.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.drop_index("ix_predictions_due")
        batch_op.drop_index("ix_predictions_prediction_config_id")
    with op.batch_alter_table("scores") as batch_op:
        batch_op.drop_index("ix_scores_input_id")


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch_op:
        batch_op.create_index("ix_scores_input_id", ["input_id"], unique=False)
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.create_index("ix_predictions_prediction_config_id", ["prediction_config_id"], unique=False)
        batch_op.create_index("ix_predictions_due", ["status", "resolvable_at"], unique=False)
