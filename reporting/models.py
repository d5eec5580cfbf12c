"""The `reports`, `report_files` and `report_schedules` tables.

A report's file lives in Postgres (`report_files.content`, bytea) beside its status row, so whichever API node a
download reaches can serve it, and a report is DONE exactly when its file committed. `(host_id, kind,
period_key)` is unique: a scheduled statement exists once per host and period however many workers race to
create it (on-demand reports have no period key, and Postgres treats NULLs as distinct).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, Timestamps

REPORT_KINDS = ("earnings",)
REPORT_FORMATS = ("csv", "xlsx")
REPORT_STATUSES = ("PENDING", "RUNNING", "DONE", "FAILED")
FREQUENCIES = ("weekly", "monthly")


class Report(Timestamps, Base):
    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint("kind IN ('earnings')", name="kind_known"),
        CheckConstraint(f"format IN {REPORT_FORMATS}", name="format_known"),
        CheckConstraint(f"status IN {REPORT_STATUSES}", name="status_known"),
        CheckConstraint("period_end > period_start", name="window_not_empty"),
        UniqueConstraint("host_id", "kind", "period_key"),
        Index("ix_reports_queue", "created_at", postgresql_where=text("status IN ('PENDING', 'RUNNING')")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    # The unique key below leads with host_id, so it also serves a host's report list.
    host_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    # `monthly:2026-11` or `weekly:2026-11-16` for scheduled statements; NULL for on-demand reports.
    period_key: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    row_count: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ReportFile(Base):
    """A finished report's bytes, apart from its row so that listing reports never reads files."""

    __tablename__ = "report_files"

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class ReportSchedule(Timestamps, Base):
    """A host's weekly or monthly statement. A host without a monthly row still gets the default monthly one."""

    __tablename__ = "report_schedules"
    __table_args__ = (
        CheckConstraint(f"frequency IN {FREQUENCIES}", name="frequency_known"),
        CheckConstraint(f"format IN {REPORT_FORMATS}", name="format_known"),
    )

    host_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    frequency: Mapped[str] = mapped_column(String(8), primary_key=True)
    format: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why the worker stopped this schedule (its statement failed every attempt); shown to the host.
    stopped_reason: Mapped[str | None] = mapped_column(Text)
