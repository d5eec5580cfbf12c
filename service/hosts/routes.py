"""`GET /hosts/me/metrics`: the signed-in host's metrics over a window, total and per property."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.security.jwt import Token
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.guards import host_only
from service.auth.tokens import CurrentUser
from service.hosts.metrics import host_metrics
from service.hosts.schemas import HostMetricsOut
from service.stays import check_date_window

AuthRequest = Request[CurrentUser, Token, State]
From = Annotated[dt.date, QueryParameter(name="from", description="First local date, inclusive")]
To = Annotated[dt.date, QueryParameter(name="to", description="Last local date, exclusive")]
PropertyIds = Annotated[
    list[uuid.UUID] | None, QueryParameter(name="property_id", description="Only these properties (repeatable)")
]


class HostMetricsController(Controller):
    path = "/hosts/me"
    tags = ["host metrics"]

    @get("/metrics", guards=[host_only], summary="Occupancy and earnings over [from, to), total and per property")
    async def metrics(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        start: From,
        end: To,
        property_ids: PropertyIds = None,
    ) -> HostMetricsOut:
        check_date_window(start, end)
        return await host_metrics(db_session, request.user.id, start, end, property_ids or [])
