"""The host dashboard page at `/dashboard`: plain HTML, one JS module and CSS from `realtime/dashboard/`.

No build step and nothing from another origin, so it works offline and under the strict Content-Security-Policy
of `service.response_headers`. The page signs in through the API and reads the live socket like any client
(docs/realtime.md); it needs no server-side code of its own.
"""

from __future__ import annotations

from pathlib import Path

from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

DASHBOARD_PATH = "/dashboard"
DASHBOARD_FILES = Path(__file__).with_name("dashboard")

# `no-cache`: browsers revalidate, so a new release's script never meets an old page.
dashboard_router = create_static_files_router(
    path=DASHBOARD_PATH,
    directories=[DASHBOARD_FILES],
    html_mode=True,
    name="dashboard",
    cache_control=CacheControlHeader(no_cache=True),
)
