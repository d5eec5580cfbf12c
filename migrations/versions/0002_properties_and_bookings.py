"""Properties, pricing rules, blocks, calendar feeds, bookings, idempotency keys, reviews and the outbox.

The exclusion constraint `ex_bookings_no_overlapping_stays` is the final guarantee against double booking.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("v", sa.SmallInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_events_event_id")),
    )
    # The relay reads unpublished events in order; the partial index stays small however long the history.
    op.create_index(
        "ix_outbox_events_unpublished", "outbox_events", ["id"], postgresql_where=sa.text("published_at IS NULL")
    )
    op.create_table(
        "properties",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("city", sa.String(length=120), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("max_guests", sa.SmallInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("nightly_price", sa.Integer(), nullable=False),
        sa.Column("cleaning_fee", sa.Integer(), nullable=False),
        sa.Column("tax_rate_bps", sa.Integer(), nullable=False),
        sa.Column("min_nights", sa.SmallInteger(), nullable=False),
        sa.Column("max_nights", sa.SmallInteger(), nullable=False),
        sa.Column("cancellation_policy", sa.String(length=16), nullable=False),
        sa.Column("calendar_token", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "cancellation_policy IN ('flexible', 'moderate', 'strict')",
            name=op.f("ck_properties_cancellation_policy_known"),
        ),
        sa.CheckConstraint("cleaning_fee >= 0", name=op.f("ck_properties_cleaning_fee_non_negative")),
        sa.CheckConstraint("max_guests >= 1", name=op.f("ck_properties_max_guests_positive")),
        sa.CheckConstraint("min_nights >= 1 AND min_nights <= max_nights", name=op.f("ck_properties_nights_bounds")),
        sa.CheckConstraint("nightly_price >= 0", name=op.f("ck_properties_nightly_price_non_negative")),
        sa.CheckConstraint("tax_rate_bps >= 0 AND tax_rate_bps <= 5000", name=op.f("ck_properties_tax_rate_range")),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_properties_host_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_properties")),
        sa.UniqueConstraint("calendar_token", name=op.f("uq_properties_calendar_token")),
    )
    op.create_index(op.f("ix_properties_host_id"), "properties", ["host_id"], unique=False)
    # Search: city equality (case-insensitive) then price range, live properties only.
    op.execute("CREATE INDEX ix_properties_search ON properties (lower(city), nightly_price) WHERE deleted_at IS NULL")
    op.create_table(
        "bookings",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("guest_id", sa.UUID(), nullable=False),
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("check_in", sa.Date(), nullable=False),
        sa.Column("check_out", sa.Date(), nullable=False),
        sa.Column("guests", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("nightly_prices", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("accommodation_amount", sa.Integer(), nullable=False),
        sa.Column("discount_amount", sa.Integer(), nullable=False),
        sa.Column("cleaning_fee", sa.Integer(), nullable=False),
        sa.Column("service_fee", sa.Integer(), nullable=False),
        sa.Column("taxes", sa.Integer(), nullable=False),
        sa.Column("total_amount", sa.Integer(), nullable=False),
        sa.Column("refunded_amount", sa.Integer(), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=8), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'CONFIRMED', 'COMPLETED', 'EXPIRED', 'CANCELLED')",
            name=op.f("ck_bookings_status_known"),
        ),
        sa.CheckConstraint(
            "cardinality(nightly_prices) = check_out - check_in", name=op.f("ck_bookings_one_price_per_night")
        ),
        sa.CheckConstraint("check_out > check_in", name=op.f("ck_bookings_stay_not_empty")),
        sa.CheckConstraint("guests >= 1", name=op.f("ck_bookings_guests_positive")),
        sa.CheckConstraint("total_amount >= 0 AND refunded_amount >= 0", name=op.f("ck_bookings_money_non_negative")),
        sa.ForeignKeyConstraint(["guest_id"], ["users.id"], name=op.f("fk_bookings_guest_id_users")),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_bookings_host_id_users")),
        sa.ForeignKeyConstraint(["property_id"], ["properties.id"], name=op.f("fk_bookings_property_id_properties")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index(op.f("ix_bookings_guest_id"), "bookings", ["guest_id"], unique=False)
    op.create_index(op.f("ix_bookings_host_id"), "bookings", ["host_id"], unique=False)
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlapping_stays EXCLUDE USING gist "
        "(property_id WITH =, daterange(check_in, check_out) WITH &&) WHERE (status IN ('PENDING', 'CONFIRMED'))"
    )
    op.create_index(
        "ix_bookings_pending_hold", "bookings", ["hold_expires_at"], postgresql_where=sa.text("status = 'PENDING'")
    )
    op.create_index(op.f("ix_bookings_property_id"), "bookings", ["property_id"], unique=False)
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_calendar_feeds_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
    )
    op.create_index(op.f("ix_calendar_feeds_property_id"), "calendar_feeds", ["property_id"], unique=False)
    op.create_table(
        "date_price_overrides",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("during", postgresql.DATERANGE(), nullable=False),
        sa.Column("nightly_price", sa.Integer(), nullable=False),
        sa.CheckConstraint("nightly_price >= 0", name=op.f("ck_date_price_overrides_nightly_price_non_negative")),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_date_price_overrides_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_date_price_overrides")),
    )
    op.execute(
        "ALTER TABLE date_price_overrides ADD CONSTRAINT ex_date_price_overrides_no_overlap "
        "EXCLUDE USING gist (property_id WITH =, during WITH &&)"
    )
    op.create_table(
        "stay_discounts",
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("min_nights", sa.SmallInteger(), nullable=False),
        sa.Column("percent", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("min_nights >= 2", name=op.f("ck_stay_discounts_min_nights_range")),
        sa.CheckConstraint("percent BETWEEN 1 AND 90", name=op.f("ck_stay_discounts_percent_range")),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_stay_discounts_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("property_id", "min_nights", name=op.f("pk_stay_discounts")),
    )
    op.create_table(
        "weekday_prices",
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("nightly_price", sa.Integer(), nullable=False),
        sa.CheckConstraint("nightly_price >= 0", name=op.f("ck_weekday_prices_nightly_price_non_negative")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_weekday_prices_weekday_range")),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_weekday_prices_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("property_id", "weekday", name=op.f("pk_weekday_prices")),
    )
    op.create_table(
        "availability_blocks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("during", postgresql.DATERANGE(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("feed_id", sa.UUID(), nullable=True),
        sa.Column("ical_uid", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("source IN ('host', 'ical')", name=op.f("ck_availability_blocks_source_known")),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["calendar_feeds.id"],
            name=op.f("fk_availability_blocks_feed_id_calendar_feeds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_availability_blocks_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_availability_blocks")),
    )
    op.execute(
        "CREATE INDEX ix_availability_blocks_property_during ON availability_blocks USING gist (property_id, during)"
    )
    # An imported calendar blocks each date range once, however many times (and under whichever UIDs) it repeats.
    op.create_index(
        "uq_availability_blocks_feed_during",
        "availability_blocks",
        ["feed_id", "during"],
        unique=True,
        postgresql_where=sa.text("feed_id IS NOT NULL"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_idempotency_keys_booking_id_bookings")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("property_id", sa.UUID(), nullable=False),
        sa.Column("guest_id", sa.UUID(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_reviews_booking_id_bookings")),
        sa.ForeignKeyConstraint(["guest_id"], ["users.id"], name=op.f("fk_reviews_guest_id_users")),
        sa.ForeignKeyConstraint(["property_id"], ["properties.id"], name=op.f("fk_reviews_property_id_properties")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_reviews_booking_id")),
    )
    op.create_index(op.f("ix_reviews_property_id"), "reviews", ["property_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_reviews_property_id"), table_name="reviews")
    op.drop_table("reviews")
    op.drop_table("idempotency_keys")
    op.drop_table("availability_blocks")
    op.drop_table("weekday_prices")
    op.drop_table("stay_discounts")
    op.drop_table("date_price_overrides")
    op.drop_index(op.f("ix_calendar_feeds_property_id"), table_name="calendar_feeds")
    op.drop_table("calendar_feeds")
    op.drop_index(op.f("ix_bookings_property_id"), table_name="bookings")
    op.drop_index(op.f("ix_bookings_host_id"), table_name="bookings")
    op.drop_index(op.f("ix_bookings_guest_id"), table_name="bookings")
    op.drop_table("bookings")
    op.drop_index(op.f("ix_properties_host_id"), table_name="properties")
    op.drop_table("properties")
    op.drop_table("outbox_events")
