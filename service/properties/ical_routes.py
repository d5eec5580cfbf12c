"""Calendar sync over HTTP: the public iCal feed, its secret link, and the calendars a host imports."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.security.jwt import Token
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.guards import host_only
from service.auth.tokens import CurrentUser
from service.errors import NotFound
from service.properties import calendar_export, calendar_import
from service.properties.models import CalendarFeed, Property
from service.properties.schemas import CalendarExportOut, CalendarImportIn, CalendarImportOut, CalendarSyncOut
from service.properties.service import get_owned_property
from service.settings import Settings

AuthRequest = Request[CurrentUser, Token, State]
ICS_SUFFIX = ".ics"


class CalendarFeedController(Controller):
    path = "/calendars"
    tags = ["calendar sync"]

    @get(
        "/{calendar_file:str}",
        exclude_from_auth=True,
        summary="A property's taken dates as iCalendar; the secret token in the URL is the permission",
        media_type="text/calendar",
    )
    async def feed(self, db_session: NamedDependency[AsyncSession], calendar_file: FromPath[str]) -> Response[bytes]:
        # Litestar matches whole path segments, so the ".ics" that calendar apps like to see is checked here.
        token = calendar_file.removesuffix(ICS_SUFFIX)
        if token == calendar_file:
            raise NotFound("Calendar addresses end in .ics.")
        body = await calendar_export.export_calendar(db_session, token)
        return Response(
            body,
            media_type="text/calendar",
            headers={"Cache-Control": "private, max-age=300", "Content-Disposition": 'inline; filename="calendar.ics"'},
        )


class PropertyCalendarSyncController(Controller):
    path = "/properties/{property_id:uuid}"
    tags = ["calendar sync"]
    guards = [host_only]

    @get("/calendar-export", summary="The secret iCal link other channels import (owner)")
    async def export_link(
        self, db_session: NamedDependency[AsyncSession], request: AuthRequest, property_id: FromPath[uuid.UUID]
    ) -> CalendarExportOut:
        prop = await get_owned_property(db_session, property_id, request.user)
        return _export_link(request, prop)

    @post(
        "/calendar-export/rotate",
        status_code=200,
        summary="Replace the iCal link; the old one stops working at once (owner)",
    )
    async def rotate_export_link(
        self, db_session: NamedDependency[AsyncSession], request: AuthRequest, property_id: FromPath[uuid.UUID]
    ) -> CalendarExportOut:
        prop = await get_owned_property(db_session, property_id, request.user, for_update=True)
        await calendar_export.rotate_token(db_session, prop)
        return _export_link(request, prop)

    @get("/calendar-imports", summary="Calendars imported from other channels, with their last sync (owner)")
    async def imports(
        self, db_session: NamedDependency[AsyncSession], request: AuthRequest, property_id: FromPath[uuid.UUID]
    ) -> list[CalendarImportOut]:
        prop = await get_owned_property(db_session, property_id, request.user)
        return [_feed_out(feed) for feed in await calendar_import.list_feeds(db_session, prop)]

    @post("/calendar-imports", summary="Import another channel's iCal calendar; the worker syncs it (owner)")
    async def add_import(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        data: JSONBody[CalendarImportIn],
    ) -> CalendarImportOut:
        prop = await get_owned_property(db_session, property_id, request.user, for_update=True)
        return _feed_out(await calendar_import.add_feed(db_session, prop, data.url))

    @delete("/calendar-imports/{feed_id:uuid}", summary="Stop importing a calendar and reopen what it blocked (owner)")
    async def remove_import(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        feed_id: FromPath[uuid.UUID],
    ) -> None:
        prop = await get_owned_property(db_session, property_id, request.user)
        await calendar_import.remove_feed(db_session, prop, feed_id)

    @post("/calendar-imports/{feed_id:uuid}/sync", status_code=200, summary="Sync an imported calendar now (owner)")
    async def sync_import(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        feed_id: FromPath[uuid.UUID],
    ) -> CalendarSyncOut:
        prop = await get_owned_property(db_session, property_id, request.user)
        feed = await calendar_import.get_feed(db_session, prop, feed_id)
        result = await calendar_import.sync_feed(db_session, prop, feed, settings)
        return CalendarSyncOut(
            added=result.added, removed=result.removed, unchanged=result.unchanged, error=result.error
        )


def _export_link(request: AuthRequest, prop: Property) -> CalendarExportOut:
    """An absolute URL, since it is pasted into another site; the origin is the one the host called us on."""
    return CalendarExportOut(url=str(request.base_url).rstrip("/") + calendar_export.feed_path(prop))


def _feed_out(feed: CalendarFeed) -> CalendarImportOut:
    return CalendarImportOut(
        id=feed.id,
        url=feed.url,
        last_synced_at=feed.last_synced_at,
        last_error=feed.last_error,
        next_sync_at=feed.next_sync_at,
    )
