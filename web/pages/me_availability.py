"""The availability editor (/me/availability) and the bookable-time preview (/me/preview).

Saving goes through ``availability.put_availability``, the service behind the JSON API,
so the same audit row and ``cal.rule.updated`` / ``cal.exception.upserted`` events are
recorded. The preview asks the same feasibility engine the booking page uses and lists
what is busy, by reason, in the provider's zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import web.pages.me_editor as me_editor
from core.domain import Busy, BusyKind, Explanation
from core.domain.errors import DomainError
from core.domain.zones import is_nonexistent
from core.formatting import format_clock, format_day
from core.services import accounts, availability, sources
from core.services.busy import load_busy
from core.services.errors import ServiceError
from core.services.freshness import source_label
from core.services.providers import get_provider
from web.inputs import MAX_YEAR, MIN_YEAR, in_range
from web.pages.me_common import Ctx, back, provider_page, render
from web.words import N_

MAX_WEEKS = 8
NOTICES = {"saved": N_("Saved. The preview below shows the new bookable times.")}


@dataclass
class BusyRow:
    """One busy item on one local day, in words."""

    start: str
    end: str
    kind: str
    label: str
    link: str | None = None


@dataclass
class PreviewDay:
    label: str
    iso: str
    slots: list[str] = field(default_factory=list)
    busy: list[BusyRow] = field(default_factory=list)


@dataclass
class Preview:
    timezone: str
    duration: int
    weeks: int
    days: list[PreviewDay]
    slot_count: int


# --- editor ------------------------------------------------------------------------------------


async def _editor(ctx: Ctx) -> Response:
    me = ctx.me
    state, preview = await ctx.run(
        lambda s, now: (
            me_editor.state_of(availability.get_availability(s, me.provider_id)),
            build_preview(s, me.provider_id, now, weeks=1, duration=None),
        )
    )
    notice = NOTICES.get(ctx.request.query_params.get("done", ""))
    return _render_editor(ctx, state, preview, notice=notice)


def _render_editor(
    ctx: Ctx,
    state: me_editor.EditorState,
    preview: Preview | None,
    *,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    context = {
        "state": state,
        "rows": state.padded(),
        "days": me_editor.DAYS,
        "numbers": me_editor.NUMBERS,
        "preview": preview,
        "notice": notice,
    }
    return render(ctx.request, "me/availability.html", context, status=status, me=ctx.me)


async def _editor_submit(ctx: Ctx) -> Response:
    state = me_editor.state_from_form(ctx.form)
    if ctx.form.get("action") == "copy":
        return _copy(ctx, state)
    policy = me_editor.to_policy(state)
    if policy is None:
        return _render_editor(ctx, state, None, status=400)
    me = ctx.me
    actor = f"provider:{me.email}"
    try:
        await ctx.run(
            lambda s, now: availability.put_availability(
                s, me.provider_id, policy, now, actor=actor
            )
        )
    except (ServiceError, DomainError) as error:
        state.errors["form"] = getattr(error, "message", str(error))
        return _render_editor(ctx, state, None, status=400)
    return back("/me/availability", "saved")


def _copy(ctx: Ctx, state: me_editor.EditorState) -> Response:
    source_text = ctx.form.get("copy_from", "")
    targets = [int(t) for t in ctx.lists.get("copy_to", []) if t.isdigit()]
    if not source_text.isdigit() or not 0 <= int(source_text) < len(me_editor.DAYS):
        state.errors["copy"] = "Choose the day to copy from."
        return _render_editor(ctx, state, None, status=400)
    source = int(source_text)
    changed = me_editor.copy_day(state, source, targets)
    if not changed:
        state.errors["copy"] = "Tick at least one other day to copy to."
        return _render_editor(ctx, state, None, status=400)
    names = ", ".join(me_editor.DAYS[d] for d in changed)
    notice = f"Copied {me_editor.DAYS[source]}'s hours to {names}. Not saved yet: press Save."
    return _render_editor(ctx, state, None, notice=notice)


# --- preview -----------------------------------------------------------------------------------


def build_preview(
    session: Session, provider_id: str, now: datetime, *, weeks: int, duration: int | None
) -> Preview:
    """Bookable starts and busy time by reason for the next ``weeks``, per local day."""
    provider = get_provider(session, provider_id)
    policy = availability.load_policy(session, provider)
    minutes = duration or policy.min_duration_minutes
    end = now + timedelta(weeks=weeks)
    found = availability.find_slots(
        session, provider_id, now, end, timedelta(minutes=minutes), now, surface="page"
    )
    zone = ZoneInfo(provider.timezone)
    days = _empty_days(now, end, zone)
    for slot in found.slots:
        _day_of(days, slot.start, zone).slots.append(_hhmm(slot.start, zone))
    busy = load_busy(session, provider_id, now, end, now)
    names = _source_names(session, provider_id)
    for item in busy:
        _place_busy(session, days, item, zone, names)
    return Preview(provider.timezone, minutes, weeks, list(days.values()), len(found.slots))


def _empty_days(start: datetime, end: datetime, zone: ZoneInfo) -> dict[date, PreviewDay]:
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days: dict[date, PreviewDay] = {}
    while first <= last:
        days[first] = PreviewDay(format_day(first, year=False), first.isoformat())
        first += timedelta(days=1)
    return days


def _day_of(days: dict[date, PreviewDay], moment: datetime, zone: ZoneInfo) -> PreviewDay:
    local = moment.astimezone(zone).date()
    return days.setdefault(local, PreviewDay(format_day(local, year=False), local.isoformat()))


def _hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return format_clock(moment, zone.key)


def _source_names(session: Session, provider_id: str) -> dict[str, str]:
    return {
        s.id: source_label(s.name, s.platform, s.url)
        for s in sources.list_sources(session, provider_id)
    }


def _describe(session: Session, item: Busy, names: dict[str, str]) -> tuple[str, str | None]:
    """Words for a busy item and, for bookings, a link to it."""
    if item.kind is BusyKind.EXTERNAL:
        return names.get(item.ref, item.label or "external calendar"), None
    if item.kind is BusyKind.BOOKING:
        who = accounts.guest_of(session, item.ref)
        return f"{item.label} booking with {who}".strip(), f"/me/bookings/{item.ref}"
    if item.kind is BusyKind.HOLD:
        return "a guest is checking out (hold)", None
    return f"related unit: {item.label or item.ref}", None


def _place_busy(
    session: Session,
    days: dict[date, PreviewDay],
    item: Busy,
    zone: ZoneInfo,
    names: dict[str, str],
) -> None:
    """List the item on every local day it touches, clipped to that day."""
    label, link = _describe(session, item, names)
    day = item.start.astimezone(zone).date()
    last = (item.end - timedelta(microseconds=1)).astimezone(zone).date()
    while day <= last:
        midnight = datetime.combine(day, time(0), zone)
        start = max(item.start, midnight)
        end = min(item.end, datetime.combine(day + timedelta(days=1), time(0), zone))
        shown_end = "24:00" if end.astimezone(zone).date() > day else _hhmm(end, zone)
        if day in days:
            row = BusyRow(_hhmm(start, zone), shown_end, item.kind.value, label, link)
            days[day].busy.append(row)
        day += timedelta(days=1)


def _int_param(text: str | None, low: int, high: int) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    value = int(text.strip())
    return value if low <= value <= high else None


async def _preview(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    weeks = _int_param(params.get("weeks"), 1, MAX_WEEKS) or 2
    duration = _int_param(params.get("duration"), 1, 24 * 60)
    errors: dict[str, str] = {}
    if params.get("duration") and duration is None:
        errors["duration"] = "Duration: a whole number of minutes from 1 to 1440."
    me = ctx.me

    def work(session: Session, now: datetime) -> tuple[Preview, Explanation | None]:
        preview = build_preview(session, me.provider_id, now, weeks=weeks, duration=duration)
        why = _explain(session, me.provider_id, now, params.get("at"), preview, errors)
        return preview, why

    try:
        preview, why = await ctx.run(work)
    except (ServiceError, DomainError) as error:
        errors["form"] = getattr(error, "message", str(error))
        preview, why = None, None
    context: dict[str, Any] = {
        "preview": preview,
        "why": why,
        "at": params.get("at", ""),
        "errors": errors,
    }
    if why is not None and preview is not None:  # the asked time, written like every other
        asked = datetime.fromisoformat(params.get("at", "").strip()[:20])
        context["asked"] = (
            asked if asked.tzinfo else asked.replace(tzinfo=ZoneInfo(preview.timezone))
        )
    status = 400 if errors else 200
    return render(ctx.request, "me/preview.html", context, status=status, me=me)


def _explain(
    session: Session,
    provider_id: str,
    now: datetime,
    at_text: str | None,
    preview: Preview,
    errors: dict[str, str],
) -> Explanation | None:
    """Why a local date-time (YYYY-MM-DDTHH:MM in the provider's zone) is or is not free."""
    if not at_text:
        return None
    zone = ZoneInfo(preview.timezone)
    try:
        local = datetime.fromisoformat(at_text.strip()[:20])
    except ValueError:
        errors["at"] = "Give a date and time like 2027-03-02T10:00."
        return None
    if not in_range(local):
        errors["at"] = f"Give a date between the years {MIN_YEAR} and {MAX_YEAR}."
        return None
    local = local.replace(tzinfo=zone) if local.tzinfo is None else local
    if is_nonexistent(local):
        errors["at"] = "That local time does not exist (the clocks change then)."
        return None
    minutes = timedelta(minutes=preview.duration)
    return availability.explain_slot(session, provider_id, local.astimezone(UTC), minutes, now)


def routes() -> list[BaseRoute]:
    return [
        Route("/me/availability", provider_page(_editor), methods=["GET"]),
        Route("/me/availability", provider_page(_editor_submit), methods=["POST"]),
        Route("/me/preview", provider_page(_preview), methods=["GET"]),
    ]
