"""Metrics tables kept by the aggregators, and the trigger that wakes the outbox relay at commit.

The statement-level trigger sends one `pg_notify` per inserting statement; Postgres delivers notifications only
when the transaction commits (and folds duplicates within it), so the relay wakes exactly when rows are visible.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ZERO = sa.text("0")


def upgrade() -> None:
    op.create_table(
        "metric_properties",
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delisted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.PrimaryKeyConstraint("property_id", name=op.f("pk_metric_properties")),
    )
    op.create_index(op.f("ix_metric_properties_host_id"), "metric_properties", ["host_id"], unique=False)
    op.create_table(
        "metric_blocks",
        sa.Column("block_id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("removed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("block_id", name=op.f("pk_metric_blocks")),
    )
    op.create_index(op.f("ix_metric_blocks_property_id"), "metric_blocks", ["property_id"], unique=False)
    op.create_table(
        "metric_bookings",
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("refund_due", sa.Integer(), nullable=True),
        sa.Column(
            "refunds", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_metric_bookings")),
    )
    op.create_index(op.f("ix_metric_bookings_property_id"), "metric_bookings", ["property_id"], unique=False)
    op.create_table(
        "metric_days",
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("booked_nights", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("accommodation_revenue", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("gross_earnings", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("refunds", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("host_fees", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("bookings_confirmed", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("bookings_cancelled", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("bookings_expired", sa.Integer(), server_default=ZERO, nullable=False),
        sa.Column("stay_nights", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("lead_time_days", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.PrimaryKeyConstraint("property_id", "day", name=op.f("pk_metric_days")),
    )
    op.create_index("ix_metric_days_host_id_day", "metric_days", ["host_id", "day"], unique=False)
    op.execute(
        "CREATE FUNCTION notify_outbox_relay() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('staypulse_outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_relay()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION notify_outbox_relay()")
    op.drop_index("ix_metric_days_host_id_day", table_name="metric_days")
    op.drop_table("metric_days")
    op.drop_index(op.f("ix_metric_bookings_property_id"), table_name="metric_bookings")
    op.drop_table("metric_bookings")
    op.drop_index(op.f("ix_metric_blocks_property_id"), table_name="metric_blocks")
    op.drop_table("metric_blocks")
    op.drop_index(op.f("ix_metric_properties_host_id"), table_name="metric_properties")
    op.drop_table("metric_properties")
