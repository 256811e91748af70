"""GET /feeds/{token}.ics: a provider's private ICS feed, with ETag and 304 for pollers."""

from __future__ import annotations

import hashlib
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


def _events(content: feeds.FeedContent) -> list[render.FeedEvent]:
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
    return events


def _body(content: feeds.FeedContent) -> str:
    name = f"{content.provider.name} (Parley)"
    if content.format == "standard":
        return render.render_feed(_events(content), name)
    zone = ZoneInfo(content.provider.timezone)
    return render.render_platform_feed(_events(content), name, content.format, zone)


async def feed(request: Request) -> Response:
    runtime = runtime_of(request)
    token = request.path_params["token"]

    def load() -> tuple[feeds.FeedContent, str]:
        with runtime.sessions.begin() as session:
            content = feeds.feed_for_token(session, token, runtime.clock())
            return content, _body(content)

    try:
        content, body = await run_in_threadpool(load)
    except NotFoundError:
        link_rejected("feed", "invalid")
        return PlainTextResponse("no such feed\n", status_code=404)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:40] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    not_modified = etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    FEED_DOWNLOADS.labels(format=content.format).inc()
    record(
        "cal.ics.feed.requested",
        provider_id=content.provider.id,
        format=content.format,
        include_holds=content.include_holds,
        status=304 if not_modified else 200,
        events=len(content.bookings) + len(content.holds) + len(content.others),
    )
    if not_modified:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


def routes() -> list[BaseRoute]:
    return [Route("/feeds/{token}.ics", feed, methods=["GET", "HEAD"])]
