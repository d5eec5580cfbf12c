"""The transactional outbox: a state change and its event commit in one transaction.

`record_event` is the only way an event is produced. The relay (ingest) later moves unpublished rows to Redis
Streams, so an event is never lost when Redis is down and never published for a change that rolled back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Insert,
    SmallInteger,
    String,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base

EVENT_VERSION = 1


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    # The relay reads unpublished events in order; the partial index stays small however long the history.
    __table_args__ = (Index("ix_outbox_events_unpublished", "id", postgresql_where=text("published_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(64))
    v: Mapped[int] = mapped_column(SmallInteger, default=EVENT_VERSION)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    host_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    property_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


def event_row(event_type: str, *, host_id: uuid.UUID, property_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """The outbox row of one event; `fields` must be JSON-ready (dates as ISO strings)."""
    return {
        "event_id": uuid.uuid4(),
        "type": event_type,
        "v": EVENT_VERSION,
        "host_id": host_id,
        "property_id": property_id,
        "payload": fields,
    }


async def record_event(
    session: AsyncSession, event_type: str, *, host_id: uuid.UUID, property_id: uuid.UUID, **fields: Any
) -> None:
    """Add an event to the caller's transaction."""
    await session.execute(
        insert(OutboxEvent).values(event_row(event_type, host_id=host_id, property_id=property_id, **fields))
    )


def insert_with_event(row_insert: Insert, event: dict[str, Any]) -> Insert:
    """One statement that inserts a row and then its event, for hot paths where a round trip counts.

    The row's INSERT runs as a data-modifying CTE and the event is selected from what it returned, so the event
    exists exactly when the row does; a constraint violation fails the whole statement.
    """
    inserted = row_insert.returning(literal_column("1").label("inserted")).cte("inserted_row")
    table = OutboxEvent.__table__
    values = [literal(value, type_=table.c[name].type) for name, value in event.items()]
    return insert(OutboxEvent).from_select(list(event), select(*values).select_from(inserted))
