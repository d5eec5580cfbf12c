"""Metric hosts: a version per host, bumped by every aggregator transaction that changes the host's metrics.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_hosts",
        sa.Column("host_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("host_id", name=op.f("pk_metric_hosts")),
    )


def downgrade() -> None:
    op.drop_table("metric_hosts")
