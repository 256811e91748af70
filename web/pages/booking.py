"""The public booking page /book/{slug}: pick a slot, hold it, give name and email, confirm.
A tenant other than the default one has its pages under /t/{tenant}/book/{slug}.

Plain forms and redirects (POST → 303 → GET), so it works without JavaScript; a small
script only pre-fills the guest's time zone from the browser. Times are shown in the
``tz`` query parameter's zone, defaulting to the provider's. A redirect names a message
by code (``m=taken``): the page prints only its own texts, never text from the address.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.db.models import Provider
from core.domain import AvailabilityPolicy, Slot
from core.services import availability, holds, manage, providers
from core.services.bookings import actor_of, get_booking, view_booking
from core.services.errors import NotFoundError, ServiceError
from core.services.freshness import instant_book_allowed
from core.services.notify import Mailer
from web.errors import ANSWERED, Reply, reply_for
from web.http import in_transaction, limit_public, parse_instant, runtime_of
from web.pages import zone_picker
from web.templating import templates

T = TypeVar("T")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # the page's own links; no week dates

# The only texts the page's alert box shows, by the code a redirect puts in ``m``.
MESSAGES = {
    "taken": "Sorry, that time was just taken. Please pick another.",
    "expired": "Your hold has expired or the time was taken. Please pick a time again.",
    "unavailable": "That time cannot be booked. Please pick another.",
    "slow_down": "Too many attempts in a short time. Please wait a minute and try again.",
}


@dataclass(frozen=True, slots=True)
class Day:
    """One local date of the page with its slots, as shown to the guest."""

    label: str
    slots: list[tuple[str, Slot]]


def _zone(name: str | None, fallback: str) -> str:
    return name if name and zone_picker.accepts(name) else fallback


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:20_000].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _days(slots: list[Slot], zone: str) -> list[Day]:
    tz, days = ZoneInfo(zone), dict[date, Day]()
    for slot in slots:
        local = slot.start.astimezone(tz)
        day = days.setdefault(local.date(), Day(local.strftime("%A %d %B %Y"), []))
        day.slots.append((local.strftime("%H:%M"), slot))
    return list(days.values())


async def _html(request: Request, work: Callable[[Session, datetime], T]) -> T | Response:
    """``in_transaction``, but an unknown page or hold answers with an HTML error page."""
    try:
        return await in_transaction(request, work)
    except ANSWERED as error:
        return error_page(request, reply_for(error))


def book_path(request: Request) -> str:
    """This booking page's own path: /book/{slug}, or /t/{tenant}/book/{slug}."""
    slug = quote(request.path_params["slug"], safe="")
    tenant = request.path_params.get("tenant")
    return f"/book/{slug}" if tenant is None else f"/t/{quote(tenant, safe='')}/book/{slug}"


def _provider(session: Session, request: Request) -> Provider:
    """The provider the page's path names (in its tenant, or the default one)."""
    params = request.path_params
    return providers.public_provider(session, params["slug"], params.get("tenant"))


def error_page(request: Request, error: Reply) -> Response:
    """A plain HTML page for a booking-page error (never the API's JSON)."""
    missing = error.status == 404
    context = {
        "heading": "Page not found" if missing else "This booking link cannot be used",
        "message": (
            "There is no booking page or reservation at this address. Please check the link."
            if missing
            else error.message
        ),
        "book_path": None if missing or "slug" not in request.path_params else book_path(request),
    }
    return templates.TemplateResponse(request, "book_error.html", context, status_code=error.status)


async def book_page(request: Request) -> Response:
    context = await _html(request, lambda s, now: _page_context(s, request, now))
    if isinstance(context, Response):
        return context
    return templates.TemplateResponse(request, "book.html", context)


def _page_context(session: Session, request: Request, now: datetime) -> dict[str, Any]:
    provider = _provider(session, request)
    zone = _zone(request.query_params.get("tz"), provider.timezone)
    policy = availability.load_policy(session, provider)
    weeks = runtime_of(request).settings.booking_page_weeks
    today, last = _bookable_dates(policy, now, zone)
    first = _from_date(request.query_params.get("from"), today, last)
    start = datetime.combine(first, time(0), ZoneInfo(zone))
    duration = timedelta(minutes=policy.min_duration_minutes)
    found = availability.find_slots(
        session, provider.id, start, start + timedelta(weeks=weeks), duration, now, surface="page"
    )
    later, earlier = first + timedelta(weeks=weeks), first - timedelta(weeks=weeks)
    return {
        "provider": provider,
        "book_path": book_path(request),
        "zone": zone,
        "zone_given": bool(request.query_params.get("tz")),
        "days": _days(found.slots, zone),
        "duration": policy.min_duration_minutes,
        "later": later.isoformat() if later <= last else None,
        "earlier": max(earlier, today).isoformat() if first > today else None,
        "first": first.isoformat() if first > today else None,  # kept when the zone changes
        "window_days": policy.booking_window_days,
        "requests": not _instant(session, request, provider.id, policy, now),
        "zone_groups": zone_picker.zone_groups(now, zone),
        "message": MESSAGES.get(request.query_params.get("m", "")),
    }


def _bookable_dates(policy: AvailabilityPolicy, now: datetime, zone: str) -> tuple[date, date]:
    """Today and the last date of the booking window, both in the zone shown."""
    tz = ZoneInfo(zone)
    last = now + timedelta(days=policy.booking_window_days)
    return now.astimezone(tz).date(), last.astimezone(tz).date()


def _from_date(text: str | None, today: date, last: date) -> date:
    """The first date asked for; today when it is malformed or outside the booking window."""
    if not _ISO_DATE.fullmatch(text or ""):
        return today
    try:
        asked = date.fromisoformat(text or "")
    except ValueError:
        return today
    return asked if today <= asked <= last else today


def _instant(
    session: Session, request: Request, provider_id: str, policy: AvailabilityPolicy, now: datetime
) -> bool:
    """True when a guest's booking is confirmed at once, as confirm_hold will decide."""
    if not policy.instant_book:
        return False
    stale = timedelta(minutes=runtime_of(request).settings.source_stale_minutes)
    return instant_book_allowed(session, provider_id, now, stale_after=stale)[0]


async def hold_slot(request: Request) -> Response:
    form = await _form(request)
    zone = form.get("tz", "")
    try:
        await limit_public(request)
        start, end = (
            parse_instant(form.get("start"), "start"),
            parse_instant(form.get("end"), "end"),
        )
        ttl = runtime_of(request).settings.hold_ttl_seconds

        def work(session: Session, now: datetime) -> str:
            provider = _provider(session, request)
            ask = holds.HoldRequest(
                provider.id,
                start,
                end,
                guest_timezone=_zone(zone, provider.timezone),
                source="page",
            )
            return holds.create_hold(session, ask, now, ttl_seconds=ttl).hold.id

        hold_id = await in_transaction(request, work)
    except ANSWERED as answered:
        status = reply_for(answered).status
        code = {409: "taken", 429: "slow_down"}.get(status, "unavailable")
        return RedirectResponse(f"{book_path(request)}?tz={quote(zone)}&m={code}", status_code=303)
    return RedirectResponse(
        f"{book_path(request)}/hold/{hold_id}?tz={quote(zone)}", status_code=303
    )


async def hold_form(request: Request) -> Response:
    return await _render_hold(request, {}, {}, 200)


async def _render_hold(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    hold_id = request.path_params["hold_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        provider = _provider(session, request)
        hold = holds.get_hold(session, hold_id)
        if hold.provider_id != provider.id:
            raise NotFoundError("hold", hold_id)
        zone = _zone(request.query_params.get("tz") or values.get("tz"), provider.timezone)
        policy = availability.load_policy(session, provider)
        requests = not _instant(session, request, provider.id, policy, now)
        context = _hold_context(provider, hold, zone, now)
        return {**context, "requests": requests, "book_path": book_path(request)}

    context = await _html(request, work)
    if isinstance(context, Response):
        return context
    context.update(values=values, errors=errors)
    return templates.TemplateResponse(request, "book_hold.html", context, status_code=status)


def _hold_context(provider: Provider, hold: Any, zone: str, now: datetime) -> dict[str, Any]:
    tz = ZoneInfo(zone)
    return {
        "provider": provider,
        "hold": hold,
        "zone": zone,
        "status": holds.hold_status(hold, now),
        "when": hold.start_at.astimezone(tz).strftime("%A %d %B %Y, %H:%M"),
        "until": hold.end_at.astimezone(tz).strftime("%H:%M"),
        "minutes_left": max(0, int((hold.expires_at - now).total_seconds() // 60)),
    }


async def confirm(request: Request) -> Response:
    hold_id = request.path_params["hold_id"]
    form = await _form(request)
    values = {k: form.get(k, "") for k in ("name", "email", "tz")}
    if not values["email"].strip():
        return await _render_hold(
            request, values, {"email": "Please enter your email address."}, 400
        )
    runtime = runtime_of(request)
    actor = actor_of(runtime, "guest")

    def work(session: Session, now: datetime) -> str:
        booking = holds.confirm_hold(
            session, hold_id, actor, now, guest_email=values["email"], guest_name=values["name"]
        )
        # The guest's own page for the booking, linked from the confirmation.
        return manage.guest_manage_token(session, Mailer.from_runtime(runtime), booking, now)

    try:
        await limit_public(request)
        token = await in_transaction(request, work)
    except ANSWERED as answered:
        error = reply_for(answered)
        if error.code in ("invalid_email", "invalid_name", "guest_email_required"):
            return await _render_hold(request, values, {"email": error.message}, 400)
        code = "slow_down" if error.status == 429 else "expired"
        return RedirectResponse(
            f"{book_path(request)}?tz={quote(values['tz'])}&m={code}", status_code=303
        )
    return RedirectResponse(
        f"{book_path(request)}/done/{hold_id}?tz={quote(values['tz'])}&m={quote(token)}",
        status_code=303,
    )


async def done(request: Request) -> Response:
    hold_id = request.path_params["hold_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        provider = _provider(session, request)
        hold = holds.get_hold(session, hold_id)
        if hold.provider_id != provider.id:
            raise NotFoundError("hold", hold_id)
        if hold.booking_id is None:
            raise ServiceError("this time was not booked")
        booking = view_booking(session, get_booking(session, hold.booking_id))
        zone = _zone(request.query_params.get("tz"), provider.timezone)
        context = _hold_context(provider, hold, zone, now)
        return {**context, "view": booking, "book_path": book_path(request)}

    context = await _html(request, work)
    if isinstance(context, Response):
        return context
    token = request.query_params.get("m")
    context["manage_path"] = f"/booking?m={quote(token)}" if token else None
    return templates.TemplateResponse(request, "book_done.html", context)


def routes() -> list[BaseRoute]:
    """The pages of the default tenant under /book/, of any other under /t/{tenant}/book/."""
    pages = [
        ("", book_page, "GET"),
        ("/hold", hold_slot, "POST"),
        ("/hold/{hold_id}", hold_form, "GET"),
        ("/hold/{hold_id}", confirm, "POST"),
        ("/done/{hold_id}", done, "GET"),
    ]
    return [
        Route(f"{prefix}/book/{{slug}}{path}", endpoint, methods=[method])
        for prefix in ("", "/t/{tenant}")
        for path, endpoint, method in pages
    ]
