"""GET /feeds/{token}.ics: a provider's private ICS feed, with ETag and 304 for pollers."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from caldav_bridge import feeds as render
from core.events import record
from core.metrics import FEED_DOWNLOADS
from core.services import feeds
from core.services.errors import NotFoundError
from web.errors import link_rejected
from web.http import runtime_of

CACHE_CONTROL = "private, max-age=60"


def feed_events(content: feeds.FeedContent, *, tagged: bool = False) -> list[render.FeedEvent]:
    """The feed's events; tagged: each names its unit and zone (a feed of several units)."""
    events = [render.booking_event(b) for b in content.bookings]
    events += [render.hold_event(h) for h in content.holds]
    events += [
        render.FeedEvent(
            uid=o.uid,
            start=o.start,
            end=o.end,
            summary="Reserved" if o.reservation else "Not available",
            status="CONFIRMED" if o.reservation else "TENTATIVE",
        )
        for o in content.others
    ]
    if tagged:
        unit, zone = content.provider.name, content.provider.timezone
        events = [replace(event, unit=unit, zone=zone) for event in events]
    return events


def feed_body(content: feeds.FeedContent) -> str:
    """The iCalendar text of one provider's feed."""
    name = f"{content.provider.name} (Parley)"
    zone = content.provider.timezone
    if content.format == "standard":
        return render.render_feed(feed_events(content), name, zone)
    return render.render_platform_feed(feed_events(content), name, content.format, ZoneInfo(zone))


def calendar_response(request: Request, body: str) -> Response:
    """body as text/calendar with its ETag, or 304 when the poller has it already."""
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:40] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


async def feed(request: Request) -> Response:
    runtime = runtime_of(request)
    token = request.path_params["token"]

    def load() -> tuple[feeds.FeedContent, str]:
        with runtime.sessions.begin() as session:
            content = feeds.feed_for_token(session, token, runtime.clock())
            return content, feed_body(content)

    try:
        content, body = await run_in_threadpool(load)
    except NotFoundError:
        link_rejected("feed", "invalid")
        return PlainTextResponse("no such feed\n", status_code=404)
    response = calendar_response(request, body)
    FEED_DOWNLOADS.labels(format=content.format).inc()
    record(
        "cal.ics.feed.requested",
        provider_id=content.provider.id,
        format=content.format,
        include_holds=content.include_holds,
        status=response.status_code,
        events=len(content.bookings) + len(content.holds) + len(content.others),
    )
    return response


def routes() -> list[BaseRoute]:
    return [Route("/feeds/{token}.ics", feed, methods=["GET", "HEAD"])]
