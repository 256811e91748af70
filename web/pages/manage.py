"""/booking?m=…: a guest's own page for their booking (core.services.manage).

Shows the booking in the guest's zone, an .ics download and add-to-Google / Outlook
links, a pending proposal when there is one; "Cancel" (with a reason) and "Request a new
time" are POSTs, so a mail scanner opening the link changes nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from caldav_bridge.feeds import FeedEvent, event_object
from core.runtime import Runtime
from core.services import manage
from core.services.bookings import ACTIVE_STATUSES, actor_of
from core.services.errors import InvalidInput, LinkProblem
from core.services.notify import Mailer, attendee_zone, other_name
from web.errors import LINK_STATUS, link_rejected
from web.http import limit_public, runtime_of
from web.pages.negotiation import problem_zone
from web.templating import templates

_STAMP = "%Y%m%dT%H%M%SZ"


def _zone(managed: manage.Managed) -> str:
    """The zone the page shows times in: the mails' choice, else the provider's."""
    provider_zone = managed.provider.timezone
    found = attendee_zone(managed.booking, managed.invitation, lambda: provider_zone)
    return found or provider_zone


def _title(managed: manage.Managed) -> str:
    booking = managed.booking
    return f"{booking.title} with {other_name(booking, managed.invitation)}"


def _add_links(managed: manage.Managed) -> dict[str, str]:
    """Add-to-calendar links of Google Calendar and Outlook.com for the booking."""
    booking, title = managed.booking, _title(managed)
    start, end = booking.start_at, booking.end_at
    google = "https://calendar.google.com/calendar/render?" + urlencode(
        {"action": "TEMPLATE", "text": title,
         "dates": f"{start.strftime(_STAMP)}/{end.strftime(_STAMP)}"}
    )  # fmt: skip
    outlook = "https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode(
        {"path": "/calendar/action/compose", "rru": "addevent", "subject": title,
         "startdt": start.isoformat(), "enddt": end.isoformat()}
    )  # fmt: skip
    return {"google": google, "outlook": outlook}


def _context(managed: manage.Managed, token: str, **extra: Any) -> dict[str, Any]:
    return {
        "managed": managed,
        "booking": managed.booking,
        "token": token,
        "zone": _zone(managed),
        "title": _title(managed),
        "other": other_name(managed.booking, managed.invitation),
        "active": managed.booking.status in ACTIVE_STATUSES,
        "links": _add_links(managed),
        "errors": {},
        **extra,
    }


def _open(runtime: Runtime, token: str) -> manage.Managed:
    with runtime.sessions.begin() as session:
        return manage.open_manage(session, Mailer.from_runtime(runtime), token, runtime.clock())


async def _problem(request: Request, problem: LinkProblem) -> Response:
    link_rejected("manage", problem.reason)
    status = LINK_STATUS.get(problem.reason, 409)
    zone = None
    if problem.booking is not None:
        token = request.query_params.get("m", "")
        zone = await run_in_threadpool(problem_zone, runtime_of(request), problem.booking.id, token)
    context = {"problem": problem, "fresh_link": None, "zone": zone}
    return templates.TemplateResponse(request, "link_problem.html", context, status_code=status)


async def manage_page(request: Request) -> Response:
    runtime, token = runtime_of(request), request.query_params.get("m", "")
    try:
        await limit_public(request)
        managed = await run_in_threadpool(_open, runtime, token)
    except LinkProblem as problem:
        return await _problem(request, problem)
    done = request.query_params.get("done")
    context = _context(managed, token, done=done if done in ("cancelled",) else None)
    return templates.TemplateResponse(request, "manage.html", context)


async def manage_ics(request: Request) -> Response:
    runtime, token = runtime_of(request), request.query_params.get("m", "")
    try:
        await limit_public(request)
        managed = await run_in_threadpool(_open, runtime, token)
    except LinkProblem as problem:
        return await _problem(request, problem)
    booking = managed.booking
    status = "CONFIRMED" if booking.status == "confirmed" else "TENTATIVE"
    event = FeedEvent(
        uid=booking.uid, start=booking.start_at, end=booking.end_at, summary=_title(managed),
        status=status if booking.status in ACTIVE_STATUSES else "CANCELLED",
        sequence=booking.sequence, stamp=booking.updated_at, location=booking.location,
        description=booking.description,
    )  # fmt: skip
    headers = {"Content-Disposition": 'attachment; filename="booking.ics"'}
    return Response(event_object(event), media_type="text/calendar; charset=utf-8", headers=headers)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def cancel_submit(request: Request) -> Response:
    runtime = runtime_of(request)
    form = await _form(request)
    token, reason = form.get("m", ""), form.get("reason", "")
    actor = actor_of(runtime, "guest")

    def work() -> None:
        with runtime.sessions.begin() as session:
            manage.cancel_managed(
                session, Mailer.from_runtime(runtime), token, reason=reason, actor=actor,
                now=runtime.clock(),
            )  # fmt: skip

    try:
        await limit_public(request)
        await run_in_threadpool(work)
    except LinkProblem as problem:
        return await _problem(request, problem)
    except InvalidInput as error:
        managed = await run_in_threadpool(_open, runtime, token)
        context = _context(managed, token, errors={"reason": error.message}, reason=reason)
        return templates.TemplateResponse(request, "manage.html", context, status_code=400)
    return RedirectResponse(f"/booking?{urlencode({'m': token, 'done': 'cancelled'})}", 303)


async def new_time_submit(request: Request) -> Response:
    runtime = runtime_of(request)
    token = (await _form(request)).get("m", "")

    def work() -> str:
        with runtime.sessions.begin() as session:
            return manage.new_time_url(
                session, Mailer.from_runtime(runtime), token, runtime.clock()
            )

    try:
        await limit_public(request)
        url = await run_in_threadpool(work)
    except LinkProblem as problem:
        return await _problem(request, problem)
    except InvalidInput:
        return RedirectResponse(f"/booking?{urlencode({'m': token})}", 303)
    link = urlsplit(url)  # on this site, whatever host the guest reached it by
    return RedirectResponse(f"{link.path}?{link.query}", 303)


def routes() -> list[BaseRoute]:
    return [
        Route("/booking", manage_page, methods=["GET"]),
        Route("/booking/calendar.ics", manage_ics, methods=["GET"]),
        Route("/booking/cancel", cancel_submit, methods=["POST"]),
        Route("/booking/new-time", new_time_submit, methods=["POST"]),
    ]
