"""The JSON API under /api/v1: each module contributes its routes to ROUTE_MODULES."""

from __future__ import annotations

from starlette.routing import BaseRoute

from web.api import bookings, conflicts, exports, holds, lists, providers, stats, tenants, units
from web.api import dav as dav_api
from web.api import meeting_types as meeting_type_api
from web.api import sources as source_api
from web.pages import negotiation as negotiation_pages


def api_routes() -> list[BaseRoute]:
    """Every /api/v1 route, in the order they are matched."""
    routes: list[BaseRoute] = []
    routes += [*providers.routes(), *holds.routes(), *bookings.routes()]
    routes += source_api.routes()
    routes += lists.routes()
    routes += conflicts.routes()
    routes += dav_api.routes()
    routes += negotiation_pages.api()
    routes += stats.routes()
    routes += tenants.routes()
    routes += units.routes()
    routes += meeting_type_api.routes()
    routes += exports.routes()
    return routes
