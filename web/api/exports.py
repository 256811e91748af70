"""Calendar exports with an API key (seed 003 §6.3): one unit, several merged, or all.

``GET /export/{provider_id}/calendar.ics``, ``GET /export/multi?ids=a,b,c`` and
``GET /export/all`` answer text/calendar in the form ``format`` names (``generic`` unless
asked otherwise: whole days, "Reserved" / "Not available", STATUS), with an ETag and 304
for pollers, like the private feeds. A merged calendar names each event's unit. Each
export leaves out what was imported from the platform it is for, so nothing echoes back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from caldav_bridge import feeds as render
from core.db.models import Provider
from core.metrics import FEED_DOWNLOADS
from core.services import feeds
from core.services.access import Caller, Grant, visible_provider
from core.services.errors import InvalidInput
from web.http import authorize, runtime_of
from web.openapi import ApiDoc, api_route
from web.pages.feeds import calendar_response, feed_body, feed_events

MAX_UNITS = 200


def _format(request: Request, default: str = "generic") -> str:
    return feeds.known_format(request.query_params.get("format", default))


def _merged(session: Session, units: list[Provider], fmt: str, name: str, now: datetime) -> str:
    if fmt == "standard":
        raise InvalidInput("a merged export takes a platform format", code="invalid_format")
    events = []
    for unit in units:
        events += feed_events(feeds.feed_content(session, unit, fmt, now), tagged=True)
    zone = ZoneInfo(units[0].timezone if units else "UTC")
    return render.render_platform_feed(events, name, fmt, zone)


async def _answer(
    request: Request, fmt: str, build: Callable[[Session, datetime], str]
) -> Response:
    runtime = runtime_of(request)

    def load() -> str:
        with runtime.sessions.begin() as session:
            return build(session, runtime.clock())

    body = await run_in_threadpool(load)
    FEED_DOWNLOADS.labels(format=fmt).inc()
    return calendar_response(request, body)


async def export_one(request: Request) -> Response:
    caller = await authorize(request, Grant.READ)
    provider_id = request.path_params["provider_id"]
    fmt = _format(request)

    def build(session: Session, now: datetime) -> str:
        provider = visible_provider(session, caller, provider_id)
        return feed_body(feeds.feed_content(session, provider, fmt, now))

    return await _answer(request, fmt, build)


async def export_multi(request: Request) -> Response:
    caller = await authorize(request, Grant.READ)
    fmt = _format(request)
    ids = list(dict.fromkeys(i.strip() for i in request.query_params.get("ids", "").split(",")))
    ids = [i for i in ids if i]
    if not ids or len(ids) > MAX_UNITS:
        raise InvalidInput(
            f"ids must name 1–{MAX_UNITS} units, comma-separated", code="invalid_ids"
        )

    def build(session: Session, now: datetime) -> str:
        units = [visible_provider(session, caller, i) for i in ids]
        return _merged(session, units, fmt, "Units (Parley)", now)

    return await _answer(request, fmt, build)


async def export_all(request: Request) -> Response:
    caller = await authorize(request, Grant.WRITE)
    fmt = _format(request)

    def build(session: Session, now: datetime) -> str:
        return _merged(session, _units_of(session, caller), fmt, "All units (Parley)", now)

    return await _answer(request, fmt, build)


def _units_of(session: Session, caller: Caller) -> list[Provider]:
    query = select(Provider).where(Provider.tenant_id == caller.tenant_id, Provider.kind == "unit")
    if caller.providers is not None:
        query = query.where(Provider.id.in_(caller.providers))
    return list(session.scalars(query.order_by(Provider.name, Provider.id).limit(MAX_UNITS * 5)))


def routes() -> list[BaseRoute]:
    doc = "text/calendar; query format=generic|airbnb|booking.com|vrbo (standard for one)"
    return [
        api_route(
            "/export/multi", export_multi, "GET",
            ApiDoc(f"Several units in one calendar ({doc})", query=("ids", "format")),
        ),
        api_route(
            "/export/all", export_all, "GET",
            ApiDoc(f"Every unit of the tenant in one calendar ({doc})", query=("format",),
                   errors=(400, 403)),
        ),
        api_route(
            "/export/{provider_id}/calendar.ics", export_one, "GET",
            ApiDoc(f"One unit's calendar ({doc})", query=("format",)),
        ),
    ]  # fmt: skip
