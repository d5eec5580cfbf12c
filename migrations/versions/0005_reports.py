"""Reports: their status rows, their files (bytea) and hosts' statement schedules.

`uq_reports_host_id` on (host_id, kind, period_key) makes a scheduled statement exist once per host and period.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_schedules",
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("stopped_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("format IN ('csv', 'xlsx')", name=op.f("ck_report_schedules_format_known")),
        sa.CheckConstraint("frequency IN ('weekly', 'monthly')", name=op.f("ck_report_schedules_frequency_known")),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_report_schedules_host_id_users")),
        sa.PrimaryKeyConstraint("host_id", "frequency", name=op.f("pk_report_schedules")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("period_key", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("format IN ('csv', 'xlsx')", name=op.f("ck_reports_format_known")),
        sa.CheckConstraint("kind IN ('earnings')", name=op.f("ck_reports_kind_known")),
        sa.CheckConstraint("status IN ('PENDING', 'RUNNING', 'DONE', 'FAILED')", name=op.f("ck_reports_status_known")),
        sa.CheckConstraint("period_end > period_start", name=op.f("ck_reports_window_not_empty")),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_reports_host_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("host_id", "kind", "period_key", name=op.f("uq_reports_host_id")),
    )
    op.create_index(
        "ix_reports_queue",
        "reports",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('PENDING', 'RUNNING')"),
    )
    op.create_table(
        "report_files",
        sa.Column("report_id", sa.UUID(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_report_files_report_id_reports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_report_files")),
    )


def downgrade() -> None:
    op.drop_table("report_files")
    op.drop_index(
        "ix_reports_queue", table_name="reports", postgresql_where=sa.text("status IN ('PENDING', 'RUNNING')")
    )
    op.drop_table("reports")
    op.drop_table("report_schedules")
