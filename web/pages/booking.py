"""The public booking page /book/{slug}: pick a date, a time, hold it, give name and email,
confirm. A tenant other than the default one has its pages under /t/{tenant}/book/{slug}.

Plain forms, links and redirects (POST → 303 → GET), so it works without JavaScript; a
small script filters the zone picker and, once, takes the guest's zone and clock from the
browser. The page's address says what it shows: ``day`` (``from`` is its older name),
``view=week|month`` for the date strip, ``tz`` and ``h=12|24``; a value it cannot use
answers an HTML error page with a 4xx. A redirect names a message by code (``m=taken``):
the page prints only its own texts, never text from the address.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.db.models import MeetingType, Provider
from core.domain import AvailabilityPolicy, Slot
from core.formatting import (
    DEFAULT_LOCALE,
    format_clock,
    format_long_day,
    format_month,
    format_weekday,
    zone_label,
)
from core.services import availability, holds, manage, meeting_types, page_look, providers
from core.services.bookings import actor_of, get_booking, view_booking
from core.services.errors import NotFoundError, ServiceError
from core.services.freshness import instant_book_allowed
from core.services.notify import Mailer
from web.errors import ANSWERED, Reply, reply_for
from web.http import in_transaction, limit_public, parse_instant, runtime_of
from web.i18n import locale_of
from web.pages import zone_picker
from web.templating import templates
from web.tenant_hosts import SITE_KEY
from web.words import N_

T = TypeVar("T")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # the page's own links; no week dates

# The only texts the page's alert box shows, by the code a redirect puts in ``m``
# (in English; the page translates them).
MESSAGES = {
    "taken": N_("Sorry, that time was just taken. Please pick another."),
    "expired": N_("Your hold has expired or the time was taken. Please pick a time again."),
    "unavailable": N_("That time cannot be booked. Please pick another."),
    "slow_down": N_("Too many attempts in a short time. Please wait a minute and try again."),
}
EMAIL_MISSING = N_("Please enter your email address.")


VIEWS = ("week", "month")
MAX_FIRST_SEARCH = timedelta(days=62)  # how far ahead a page without ?day= looks for times


class _BadQuery(Exception):  # control flow: _html always turns it into the error page
    """Raised when a query parameter of a booking page cannot be used; ``problem`` names
    the text the error page shows (the page never repeats what the address said)."""

    def __init__(self, problem: str, status: int = 400, **facts: Any) -> None:
        super().__init__(problem)
        self.problem, self.status, self.facts = problem, status, facts


@dataclass(frozen=True, slots=True)
class Query:
    """A booking page's query, checked: every field has its value, given or default."""

    zone: str
    zone_given: bool
    day: date | None
    view: str
    hours: int  # 12 or 24
    hours_given: bool
    message: str | None


@dataclass(frozen=True, slots=True)
class StripDay:
    """One date of the strip: its number, whether it can be chosen, how many free times."""

    day: date
    label: str
    count: int
    bookable: bool
    chosen: bool
    in_month: bool


@dataclass(frozen=True, slots=True)
class Time:
    """One free time of the chosen day: the button's text and its accessible name."""

    label: str
    name: str
    slot: Slot


def _one(request: Request, name: str) -> str | None:
    """The parameter's value; an empty one counts as not given."""
    return request.query_params.get(name) or None


def _zone(name: str | None, fallback: str) -> str:
    return name if name and zone_picker.accepts(name) else fallback


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:20_000].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def read_query(request: Request, provider_zone: str) -> Query:
    """The page's parameters (tz, day or from, view, h, m); _BadQuery for one it cannot use.

    ``auto=1`` marks a zone the page's script read from the browser: one this server does
    not know shows the provider's zone instead of an error.
    """
    asked = _one(request, "tz")
    if asked is not None and not zone_picker.accepts(asked) and _one(request, "auto") is None:
        raise _BadQuery("zone")
    view = _one(request, "view") or "week"
    if view not in VIEWS:
        raise _BadQuery("view")
    hours = _one(request, "h")
    if hours not in (None, "12", "24"):
        raise _BadQuery("hours")
    text = _one(request, "day") or _one(request, "from")
    day = None
    if text is not None:
        try:
            day = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
        except ValueError:
            day = None
        if day is None:
            raise _BadQuery("day")
    return Query(
        zone=_zone(asked, provider_zone),
        zone_given=asked is not None,
        day=day,
        view=view,
        hours=int(hours or 24),
        hours_given=hours is not None,
        message=MESSAGES.get(request.query_params.get("m", "")),
    )


def clock_label(moment: datetime, hours: int, locale: str = DEFAULT_LOCALE) -> str:
    """A local time as 09:30 (24-hour clock) or 9:30 AM (12-hour clock, the language's way)."""
    return format_clock(moment, str(moment.tzinfo), locale, hours=hours)


def day_label(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """A day in full, in the page's language: "Tuesday, 2 March 2027"."""
    return format_long_day(day, locale)


def _times(slots: list[Slot], zone: str, hours: int, locale: str) -> list[Time]:
    """The chosen day's times; a label the fall-back hour repeats names its zone."""
    tz = ZoneInfo(zone)
    local = [slot.start.astimezone(tz) for slot in slots]
    labels = [clock_label(moment, hours, locale) for moment in local]
    times = []
    for moment, label, slot in zip(local, labels, slots, strict=True):
        if labels.count(label) > 1:
            label = f"{label} {zone_label(moment, locale)}"
        times.append(Time(label, f"{day_label(moment.date(), locale)}, {label}", slot))
    return times


def _strip_span(chosen: date, view: str) -> tuple[date, date]:
    """The first and the day after the last date the strip shows (whole weeks, Monday first)."""
    if view == "week":
        first = chosen - timedelta(days=chosen.weekday())
        return first, first + timedelta(days=7)
    month = chosen.replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    first = month - timedelta(days=month.weekday())
    last = following + timedelta(days=(7 - following.weekday()) % 7)
    return first, last


def _neighbours(
    chosen: date, view: str, today: date, last: date
) -> tuple[date | None, date | None]:
    """The date the strip's "previous" and "next" links choose, or None past the window."""
    if view == "week":
        monday = chosen - timedelta(days=chosen.weekday())
        before, after = monday - timedelta(days=7), monday + timedelta(days=7)
        start = monday
    else:
        start = chosen.replace(day=1)
        before = (start - timedelta(days=1)).replace(day=1)
        after = (start + timedelta(days=32)).replace(day=1)
    return (max(before, today) if start > today else None), (after if after <= last else None)


def _zoned(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(zone))


async def _html(request: Request, work: Callable[[Session, datetime], T]) -> T | Response:
    """``in_transaction``, but an unknown page or hold answers with an HTML error page."""
    try:
        return await in_transaction(request, work)
    except ANSWERED as error:
        return error_page(request, reply_for(error))
    except _BadQuery as bad:
        return query_error_page(request, bad)


def book_path(request: Request) -> str:
    """This booking page's own path: /book/{slug}, or /t/{tenant}/book/{slug}."""
    slug = quote(request.path_params["slug"], safe="")
    tenant = request.path_params.get("tenant")
    if tenant is None or request.scope.get(SITE_KEY) == tenant:  # on the tenant's own host
        return f"/book/{slug}"
    return f"/t/{quote(tenant, safe='')}/book/{slug}"


def _provider(session: Session, request: Request) -> Provider:
    """The provider the page's path names (in its tenant, or the default one)."""
    params = request.path_params
    return providers.public_provider(session, params["slug"], params.get("tenant"))


def error_page(request: Request, error: Reply) -> Response:
    """A plain HTML page for a booking-page error (never the API's JSON)."""
    missing = error.status == 404
    context = {
        "problem": "missing" if missing else "refused",
        "message": None if missing else error.message,
        "book_path": None if missing or "slug" not in request.path_params else book_path(request),
    }
    return templates.TemplateResponse(request, "book_error.html", context, status_code=error.status)


def query_error_page(request: Request, bad: _BadQuery) -> Response:
    """The error page for a page address whose parameter cannot be used (a 4xx, in HTML)."""
    context = {
        "problem": bad.problem,
        "message": None,
        "book_path": book_path(request),
        **bad.facts,
    }
    return templates.TemplateResponse(request, "book_error.html", context, status_code=bad.status)


async def book_page(request: Request) -> Response:
    context = await _html(request, lambda s, now: _page_context(s, request, now))
    if isinstance(context, Response):
        return context
    return templates.TemplateResponse(request, "book.html", context)


async def type_page(request: Request) -> Response:
    """/book/{slug}/{type}: one meeting type's page, its lengths and its times."""
    key = request.path_params["type"]
    context = await _html(request, lambda s, now: _page_context(s, request, now, key))
    if isinstance(context, Response):
        return context
    return templates.TemplateResponse(request, "book.html", context)


def look_of(provider: Provider) -> dict[str, Any]:
    """The provider's accent colour (with the text colour that reads on it) and photo."""
    accent = provider.accent_colour
    return {
        "accent": accent,
        "accent_fg": page_look.text_on(accent) if accent else None,
        "photo_url": provider.photo_url,
    }


def _lengths(request: Request, kind: MeetingType) -> tuple[list[int], int]:
    """The type's lengths and the one ``?duration=`` chose (its first by default)."""
    offered = meeting_types.durations_of(kind)
    text = _one(request, "duration")
    if text is None:
        return offered, offered[0]
    if not text.isascii() or not text.isdigit() or int(text) not in offered:
        raise _BadQuery("duration")
    return offered, int(text)


def _cards(
    session: Session, request: Request, provider: Provider, query: Query, kinds: list[MeetingType]
) -> dict[str, Any]:
    """The provider's page when it offers meeting types: one card per type."""
    keep = {"tz": query.zone} if query.zone_given else {}
    if query.hours_given:
        keep["h"] = str(query.hours)
    suffix = f"?{urlencode(keep)}" if keep else ""
    cards = [
        {
            "kind": kind,
            "lengths": meeting_types.durations_of(kind),
            "href": f"{book_path(request)}/{quote(kind.slug, safe='')}{suffix}",
        }
        for kind in kinds
    ]
    return {"provider": provider, "cards": cards, **look_of(provider)}


def _page_context(
    session: Session, request: Request, now: datetime, type_key: str | None = None
) -> dict[str, Any]:
    provider = _provider(session, request)
    kind = meeting_types.bookable_type(session, provider.id, type_key) if type_key else None
    query = read_query(request, provider.timezone)
    locale = locale_of(request)
    if kind is None:
        offered = meeting_types.list_types(session, provider.id, active_only=True)
        if offered:
            return _cards(session, request, provider, query, offered)
    zone = query.zone
    policy = availability.load_policy(session, provider)
    today, last = _bookable_dates(policy, now, zone)
    lengths, minutes = (
        _lengths(request, kind)
        if kind
        else ([policy.min_duration_minutes], policy.min_duration_minutes)
    )
    duration = timedelta(minutes=minutes)
    page_path = book_path(request) + (f"/{quote(kind.slug, safe='')}" if kind else "")

    def find(first: date, after: date) -> list[Slot]:
        start, end = _zoned(first, zone), _zoned(after, zone)
        found = availability.find_slots(
            session, provider.id, start, end, duration, now, surface="page",
            meeting_type=kind.id if kind else None,
        )  # fmt: skip
        return found.slots

    chosen = query.day
    if chosen is None:
        ahead = find(today, min(last + timedelta(days=1), today + MAX_FIRST_SEARCH))
        chosen = ahead[0].start.astimezone(ZoneInfo(zone)).date() if ahead else today
    elif not today <= chosen <= last:
        raise _BadQuery(
            "day_range",
            first_day=day_label(today, locale),
            last_day=day_label(last, locale),
            book_path=page_path,
        )
    first, after = _strip_span(chosen, query.view)
    slots = find(first, after)
    per_day: dict[date, list[Slot]] = {}
    for slot in slots:
        per_day.setdefault(slot.start.astimezone(ZoneInfo(zone)).date(), []).append(slot)
    strip = [
        StripDay(
            day, day_label(day, locale),  # its visible number in its name
            len(per_day.get(day, [])), today <= day <= last,
            day == chosen, query.view == "week" or day.month == chosen.month,
        )
        for day in (first + timedelta(days=n) for n in range((after - first).days))
    ]  # fmt: skip
    earlier, later = _neighbours(chosen, query.view, today, last)

    def href(**changes: Any) -> str:
        """This page's address with the query's values, some changed."""
        values = {"tz": zone, "h": str(query.hours), "view": query.view, "day": chosen.isoformat()}
        if len(lengths) > 1:
            values["duration"] = str(minutes)
        values.update({k: str(v) for k, v in changes.items()})
        if values["view"] == "week":
            del values["view"]
        return f"{page_path}?{urlencode(values)}"

    return {
        **look_of(provider),
        "provider": provider,
        "kind": kind,
        "lengths": lengths,
        "book_path": book_path(request),
        "page_path": page_path,
        "href": href,
        "zone": zone,
        "zone_given": query.zone_given,
        "hours": query.hours,
        "hours_given": query.hours_given,
        "view": query.view,
        "chosen": chosen,
        "chosen_label": day_label(chosen, locale),
        "month_label": format_month(chosen, locale),
        "weekdays": [format_weekday(first + timedelta(days=n), locale) for n in range(7)],
        "strip": [strip[n : n + 7] for n in range(0, len(strip), 7)],
        "times": _times(per_day.get(chosen, []), zone, query.hours, locale),
        "clock_examples": _clock_examples(locale),
        "duration": minutes,
        "earlier": earlier,
        "later": later,
        "window_days": policy.booking_window_days,
        "last_day": day_label(last, locale),
        "requests": not _instant(session, request, provider.id, policy, now),
        "zone_groups": zone_picker.zone_groups(now, zone, locale),
        "message": query.message,
    }


def _clock_examples(locale: str) -> dict[int, str]:
    """1 pm on each clock, as the clock choice shows it: {24: "13:00", 12: "1:00 PM"}."""
    one_pm = datetime(2000, 1, 1, 13, tzinfo=ZoneInfo("UTC"))
    return {n: clock_label(one_pm, n, locale) for n in (24, 12)}


def _bookable_dates(policy: AvailabilityPolicy, now: datetime, zone: str) -> tuple[date, date]:
    """Today and the last date of the booking window, both in the zone shown."""
    tz = ZoneInfo(zone)
    last = now + timedelta(days=policy.booking_window_days)
    return now.astimezone(tz).date(), last.astimezone(tz).date()


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
    zone, kind = form.get("tz", ""), form.get("type", "")
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
                meeting_type=kind or None,
            )
            return holds.create_hold(session, ask, now, ttl_seconds=ttl).hold.id

        hold_id = await in_transaction(request, work)
    except ANSWERED as answered:
        status = reply_for(answered).status
        code = {409: "taken", 429: "slow_down"}.get(status, "unavailable")
        back = _keep(form, "h", "day", "view")
        page = book_path(request) + (f"/{quote(kind, safe='')}" if kind else "")
        return RedirectResponse(f"{page}?tz={quote(zone)}{back}&m={code}", status_code=303)
    return RedirectResponse(
        f"{book_path(request)}/hold/{hold_id}?tz={quote(zone)}{_keep(form, 'h')}", status_code=303
    )


def _keep(form: dict[str, str], *names: str) -> str:
    """``&name=value`` for each of the page's own parameters the form carried back."""
    return "".join(f"&{name}={quote(form[name])}" for name in names if form.get(name))


def _hours(text: str | None) -> int:
    """The clock a hold or done page shows: 12-hour when asked for, else 24-hour."""
    return 12 if text == "12" else 24


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
        hours = _hours(request.query_params.get("h") or values.get("h"))
        context = _hold_context(session, provider, hold, zone, now, hours, locale_of(request))
        return {**context, "requests": requests, "book_path": book_path(request)}

    context = await _html(request, work)
    if isinstance(context, Response):
        return context
    context.update(values=values, errors=errors)
    return templates.TemplateResponse(request, "book_hold.html", context, status_code=status)


def _hold_context(
    session: Session,
    provider: Provider,
    hold: Any,
    zone: str,
    now: datetime,
    hours: int,
    locale: str,
) -> dict[str, Any]:
    tz = ZoneInfo(zone)
    start = hold.start_at.astimezone(tz)
    kind = session.get(MeetingType, hold.meeting_type_id) if hold.meeting_type_id else None
    return {
        **look_of(provider),
        "kind": kind,
        "provider": provider,
        "hold": hold,
        "zone": zone,
        "hours": hours,
        "status": holds.hold_status(hold, now),
        "when": f"{day_label(start.date(), locale)}, {clock_label(start, hours, locale)}",
        "until": clock_label(hold.end_at.astimezone(tz), hours, locale),
        "minutes_left": max(0, int((hold.expires_at - now).total_seconds() // 60)),
    }


async def confirm(request: Request) -> Response:
    hold_id = request.path_params["hold_id"]
    form = await _form(request)
    values = {k: form.get(k, "") for k in ("name", "email", "tz", "h", "type")}
    if not values["email"].strip():
        return await _render_hold(request, values, {"email": EMAIL_MISSING}, 400)
    runtime = runtime_of(request)
    actor = actor_of(runtime, "guest")
    locale = locale_of(request)  # the guest's mails speak the page's language

    def work(session: Session, now: datetime) -> str:
        booking = holds.confirm_hold(
            session, hold_id, actor, now, guest_email=values["email"],
            guest_name=values["name"], guest_locale=locale,
        )  # fmt: skip
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
        back, kind = _keep(values, "h"), values["type"]
        page = book_path(request) + (f"/{quote(kind, safe='')}" if kind else "")
        return RedirectResponse(f"{page}?tz={quote(values['tz'])}{back}&m={code}", status_code=303)
    return RedirectResponse(
        f"{book_path(request)}/done/{hold_id}?tz={quote(values['tz'])}{_keep(values, 'h')}"
        f"&m={quote(token)}",
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
        hours = _hours(request.query_params.get("h"))
        context = _hold_context(session, provider, hold, zone, now, hours, locale_of(request))
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
        ("/{type}", type_page, "GET"),  # one segment, GET: never one of the paths above
    ]
    return [
        Route(f"{prefix}/book/{{slug}}{path}", endpoint, methods=[method])
        for prefix in ("", "/t/{tenant}")
        for path, endpoint, method in pages
    ]
