"""initial schema: the ten tables

Revision ID: 0001
Revises:
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import coordinator_core.db.types
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "checkpoints",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("period_start", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "entries_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tx_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("submitted_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period_end"),
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkpoints_status"), ["status"], unique=False)

    op.create_table(
        "feed_ingestion_state",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("granularity", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("last_event_ts", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "subject", "kind", "granularity", name="uq_feed_ingestion_scope"),
    )
    op.create_table(
        "feed_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("granularity", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ts_event", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ts_ingested", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column(
            "values_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "subject", "kind", "granularity", "ts_event", name="uq_feed_records_event"),
    )
    with op.batch_alter_table("feed_records", schema=None) as batch_op:
        batch_op.create_index("ix_feed_records_ts_event", ["ts_event"], unique=False)

    op.create_table(
        "leaderboards",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "entries_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("created_at"),
    )
    op.create_table(
        "models",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("deployment_identifier", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("player_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("player_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("wallet", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("hotkey", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("first_seen_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failure_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("last_failure_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "overall_score_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "scores_by_scope_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_models_player_id"), ["player_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_models_state"), ["state"], unique=False)

    op.create_table(
        "scheduled_prediction_configs",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scope_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "scope_template_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "schedule_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope_key"),
    )
    with op.batch_alter_table("scheduled_prediction_configs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduled_prediction_configs_active"), ["active"], unique=False)

    op.create_table(
        "inputs",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("prediction_config_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scope_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("round_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolvable_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "raw_data_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "actuals_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "scope_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["prediction_config_id"],
            ["scheduled_prediction_configs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prediction_config_id", "round_at", name="uq_inputs_round"),
    )
    with op.batch_alter_table("inputs", schema=None) as batch_op:
        batch_op.create_index("ix_inputs_due", ["status", "resolvable_at"], unique=False)

    op.create_table(
        "snapshots",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("period_start", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("prediction_count", sa.Integer(), nullable=False),
        sa.Column("scored_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("absent_count", sa.Integer(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column(
            "result_summary_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "period_start", name="uq_snapshots_model_period"),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_snapshots_period_end", ["period_end"], unique=False)

    op.create_table(
        "predictions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("input_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("prediction_config_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scope_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "scope_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("runner_status", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("failed_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("exec_time_ms", sa.Float(), nullable=False),
        sa.Column(
            "inference_output_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "meta_jsonb", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("performed_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolvable_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["input_id"],
            ["inputs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
        ),
        sa.ForeignKeyConstraint(
            ["prediction_config_id"],
            ["scheduled_prediction_configs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("input_id", "model_id", name="uq_predictions_round_model"),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index("idx_predictions_lookup", ["model_id", "performed_at"], unique=False)
        batch_op.create_index("ix_predictions_due", ["status", "resolvable_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_predictions_prediction_config_id"), ["prediction_config_id"], unique=False)

    op.create_table(
        "scores",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("prediction_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("input_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("prediction_status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("failed_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "result_jsonb",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("scored_at", coordinator_core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["input_id"],
            ["inputs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prediction_id"),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scores_input_id"), ["input_id"], unique=False)
        batch_op.create_index("ix_scores_model_scored", ["model_id", "scored_at"], unique=False)
        batch_op.create_index("ix_scores_scored_at", ["scored_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_scored_at")
        batch_op.drop_index("ix_scores_model_scored")
        batch_op.drop_index(batch_op.f("ix_scores_input_id"))

    op.drop_table("scores")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_prediction_config_id"))
        batch_op.drop_index("ix_predictions_due")
        batch_op.drop_index("idx_predictions_lookup")

    op.drop_table("predictions")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshots_period_end")

    op.drop_table("snapshots")
    with op.batch_alter_table("inputs", schema=None) as batch_op:
        batch_op.drop_index("ix_inputs_due")

    op.drop_table("inputs")
    with op.batch_alter_table("scheduled_prediction_configs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_prediction_configs_active"))

    op.drop_table("scheduled_prediction_configs")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_models_state"))
        batch_op.drop_index(batch_op.f("ix_models_player_id"))

    op.drop_table("models")
    op.drop_table("leaderboards")
    with op.batch_alter_table("feed_records", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_records_ts_event")

    op.drop_table("feed_records")
    op.drop_table("feed_ingestion_state")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkpoints_status"))

    op.drop_table("checkpoints")
