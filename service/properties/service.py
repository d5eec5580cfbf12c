"""Property rules: only hosts create, only the owner changes, deleting hides but keeps history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.guards import ensure_owner
from service.auth.tokens import CurrentUser
from service.bookings.models import LIVE_STATUSES, Booking
from service.errors import Conflict, InvalidField, NotFound
from service.outbox import record_event
from service.properties.models import Property
from service.properties.schemas import PropertyCreate, PropertyUpdate
from service.properties.validation import check_reference_fields
from service.stays import local_today


def property_event_fields(prop: Property) -> dict[str, Any]:
    """What aggregators need to know of a property to count its available nights."""
    return {"timezone": prop.timezone, "currency": prop.currency, "active": prop.deleted_at is None}


async def create_property(session: AsyncSession, host: CurrentUser, data: PropertyCreate) -> Property:
    check_reference_fields(timezone=data.timezone, currency=data.currency, country=data.country)
    if data.min_nights > data.max_nights:
        raise InvalidField("min_nights", "must not exceed max_nights")
    prop = Property(host_id=host.id, **msgspec.structs.asdict(data))
    prop.title, prop.city = data.title.strip(), data.city.strip()
    session.add(prop)
    await session.flush()
    await record_event(session, "property.created", host_id=host.id, property_id=prop.id, **property_event_fields(prop))
    return prop


async def get_property(session: AsyncSession, property_id: uuid.UUID, *, for_update: bool = False) -> Property:
    """A live property, or 404 (a deleted one is gone for everybody)."""
    statement = select(Property).where(Property.id == property_id, Property.deleted_at.is_(None))
    prop = await session.scalar(statement.with_for_update() if for_update else statement)
    if prop is None:
        raise NotFound(f"No property {property_id}.")
    return prop


async def get_owned_property(
    session: AsyncSession, property_id: uuid.UUID, user: CurrentUser, *, for_update: bool = False
) -> Property:
    prop = await get_property(session, property_id, for_update=for_update)
    ensure_owner(prop.host_id, user, "property")
    return prop


async def update_property(
    session: AsyncSession, property_id: uuid.UUID, user: CurrentUser, data: PropertyUpdate
) -> Property:
    prop = await get_owned_property(session, property_id, user, for_update=True)
    changes = {name: value for name, value in msgspec.structs.asdict(data).items() if value is not msgspec.UNSET}
    check_reference_fields(
        timezone=changes.get("timezone"), currency=changes.get("currency"), country=changes.get("country")
    )
    if changes.get("min_nights", prop.min_nights) > changes.get("max_nights", prop.max_nights):
        raise InvalidField("min_nights", "must not exceed max_nights")
    if "currency" in changes and changes["currency"] != prop.currency and await _has_bookings(session, prop.id):
        raise Conflict("The currency of a property with bookings cannot change.", field="currency")
    for name, value in changes.items():
        setattr(prop, name, value.strip() if name in ("title", "city") else value)
    await session.flush()
    await session.refresh(prop)
    if changes:
        await record_event(
            session,
            "property.updated",
            host_id=prop.host_id,
            property_id=prop.id,
            changed=sorted(changes),
            **property_event_fields(prop),
        )
    return prop


async def delete_property(session: AsyncSession, property_id: uuid.UUID, user: CurrentUser) -> None:
    """Hide the property; refused (409) while a live booking still has nights ahead."""
    prop = await get_owned_property(session, property_id, user, for_update=True)
    upcoming = select(Booking.id).where(
        Booking.property_id == prop.id,
        Booking.status.in_(LIVE_STATUSES),
        Booking.check_out > local_today(prop.timezone),
    )
    if await session.scalar(select(exists(upcoming))):
        raise Conflict("This property has upcoming bookings; cancel them before deleting it.")
    prop.deleted_at = dt.datetime.now(dt.UTC)
    await session.flush()
    await record_event(
        session, "property.deleted", host_id=prop.host_id, property_id=prop.id, **property_event_fields(prop)
    )


async def list_host_properties(
    session: AsyncSession, host_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[Property], bool]:
    rows = await session.scalars(
        select(Property)
        .where(Property.host_id == host_id, Property.deleted_at.is_(None))
        .order_by(Property.created_at, Property.id)
        .limit(limit + 1)
        .offset(offset)
    )
    found = list(rows)
    return found[:limit], len(found) > limit


async def _has_bookings(session: AsyncSession, property_id: uuid.UUID) -> bool:
    count = await session.scalar(select(func.count()).where(Booking.property_id == property_id))
    return bool(count)
