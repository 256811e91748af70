"""Server-rendered pages (landing, booking, reschedule, approve/decline, /me, /admin) and feeds."""

from __future__ import annotations

from starlette.routing import BaseRoute

from web.pages import admin as console_pages
from web.pages import booking as booking_pages
from web.pages import dav_schedule as dav_schedule_pages
from web.pages import feeds as feed_pages
from web.pages import landing as landing_pages
from web.pages import manage as manage_pages
from web.pages import me as provider_pages
from web.pages import negotiation as negotiation_pages


def page_routes() -> list[BaseRoute]:
    """Every HTML page and feed route; each feature module appends its own."""
    routes: list[BaseRoute] = []
    routes += landing_pages.routes()
    routes += feed_pages.routes()
    routes += booking_pages.routes()
    routes += negotiation_pages.routes()
    routes += dav_schedule_pages.routes()
    routes += manage_pages.routes()
    routes += provider_pages.routes()
    routes += console_pages.routes()
    return routes
