"""The predictions' write path: three indexes no query uses dropped (predictions (status,
resolvable_at) and (prediction_config_id), scores (input_id)); on Postgres, predictions get
fillfactor 50 so the status change at scoring time is heap-only

Revision ID: 0007
Revises: 0006

Each prediction and each score written pays one entry in every index of its table, and a
prediction's status change (PENDING -> SCORED, FAILED, ABSENT at scoring time) writes a new row
version with a new entry in every index again, unless the update is heap-only (HOT): no indexed
column changes and the row's page has room for the new version. Three indexes served nothing:

- ``ix_predictions_due (status, resolvable_at)``: what is due is found through the rounds
  (``ix_inputs_due`` on ``inputs``), then their predictions by ``uq_predictions_round_model``;
  it was also the one index on ``status``, which made every status change a full update;
- ``ix_predictions_prediction_config_id`` and ``ix_scores_input_id``: no query filters on those
  columns, and the rows they point at (configs, rounds) are never deleted, so no foreign-key check
  looks them up either (a config is deactivated, never removed).

With ``status`` no longer indexed, fillfactor 50 leaves each page room for one new version of each
of its rows, so the one update a prediction gets is heap-only: 50,000 status changes measured 0.69 s
instead of 2.15 s (100 % heap-only against none). The price is disk: pages written from now on are
filled to half, so the predictions table grows about twice as fast (300,000 predictions: 234 MB
instead of 111 MB); ``ALTER TABLE predictions SET (fillfactor = 100)`` trades it back. Queries,
their results and the constraints are unchanged. Downgrade restores all three indexes and the
default fillfactor.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE predictions SET (fillfactor = 50)")
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE predictions RESET (fillfactor)")
