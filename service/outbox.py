"""The transactional outbox: a state change and its event commit in one transaction.

`record_event` is the only way an event is produced. The relay (ingest) later moves unpublished rows to Redis
Streams, so an event is never lost when Redis is down and never published for a change that rolled back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import BigInteger, DateTime, Identity, Index, SmallInteger, String, func, insert, text
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


def insert_with_event_sql(table: str, columns: Sequence[str]) -> str:
    """Driver SQL (asyncpg's `$n` parameters) that inserts one row and then its event, for hot paths where a
    round trip and SQLAlchemy's per-statement work count.

    Parameters: the row's `columns` in order ($1...), then the event's id, type, host id, property id and JSON
    payload as text (`event_parameters`). The row's INSERT runs as a data-modifying CTE and the event is selected
    from what it returned, so the event exists exactly when the row does; a constraint violation fails the whole
    statement.
    """
    # Only the caller's table and column names are spliced in (they come from the models); every value is a $n.
    row_values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    event_id, event_type, host_id, property_id, payload = (f"${n}" for n in range(len(columns) + 1, len(columns) + 6))
    row_insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({row_values}) RETURNING 1"  # noqa: S608
    event_select = f"SELECT {event_id}, {event_type}, {EVENT_VERSION}, {host_id}, {property_id}, {payload}"
    return (
        f"WITH inserted_row AS ({row_insert}) "
        f"INSERT INTO outbox_events (event_id, type, v, host_id, property_id, payload) {event_select} FROM inserted_row"
    )


def event_parameters(event: dict[str, Any]) -> tuple[Any, ...]:
    """An `event_row` as the last parameters of `insert_with_event_sql`."""
    payload = msgspec.json.encode(event["payload"]).decode()
    return event["event_id"], event["type"], event["host_id"], event["property_id"], payload
