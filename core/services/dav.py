"""The database side of the CalDAV bridge: each provider's calendars, stored objects and change log.

`bookings` (and `holds` when the provider shows them) are generated from their tables and
read-only; `blocks` and calendars made with MKCALENDAR keep objects in dav_objects, every
write bumping the calendar's revision and logging the href in dav_changes (sync tokens).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import (
    Booking,
    DavBusy,
    DavCalendar,
    DavChange,
    DavObject,
    Hold,
    Provider,
    new_id,
)
from core.domain.busy import Busy, BusyKind
from core.domain.intervals import normalize
from core.logging import get_logger
from core.services.errors import CalendarExists, NotFoundError, ReadOnlyCalendar

_log = get_logger("parley.dav")

READ_ONLY_KINDS = frozenset({"bookings", "holds"})
FIXED_NAMES = frozenset({"bookings", "holds", "blocks", "inbox", "outbox"})  # INBOX, OUTBOX
BOOKING_STATUSES = ("confirmed", "requested")
# A floating or all-day span is stored widened by the largest UTC offset, so that the
# indexed prefilter never misses it whatever zone it is finally read in.
_FLOATING_SLACK = timedelta(hours=14)
# Busy spans of stored objects are kept from a day back to this far ahead; the dav.spans
# job moves the horizon along. At most this many occurrences are expanded per object, so
# a FREQ=SECONDLY rule costs a bounded amount of work and rows.
SPAN_PAST = timedelta(days=1)
SPAN_HORIZON = timedelta(days=730)
MAX_OCCURRENCES = 5_000
BLOCKING_KINDS = ("blocks", "custom")


@dataclass(frozen=True, slots=True)
class ObjectSpan:
    """The UTC envelope of an object's occurrences; exact=False for recurring or floating ones."""

    start: datetime | None
    end: datetime | None
    exact: bool


# --- providers and calendars ----------------------------------------------------------------


def provider_by_dav_username(session: Session, username: str) -> Provider | None:
    return session.scalars(select(Provider).where(Provider.dav_username == username)).first()


def lock_provider(session: Session, provider_id: str) -> None:
    """Serialize writers per provider: a row lock on PostgreSQL (SQLite already serializes)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Provider.id).where(Provider.id == provider_id).with_for_update())


def ensure_calendars(session: Session, provider: Provider, now: datetime) -> list[DavCalendar]:
    """The provider's calendars, creating bookings, blocks (and holds if shown) on first use."""
    calendars = list(
        session.scalars(select(DavCalendar).where(DavCalendar.provider_id == provider.id))
    )
    wanted = ["bookings", "blocks"] + (["holds"] if provider.show_holds_calendar else [])
    have = {c.name for c in calendars}
    for name in wanted:
        if name not in have:
            calendars.append(_add_calendar(session, provider, name, name, now))
    if not provider.show_holds_calendar:
        calendars = [c for c in calendars if c.kind != "holds"]
    return sorted(calendars, key=lambda c: c.name)


def _add_calendar(
    session: Session, provider: Provider, name: str, kind: str, now: datetime
) -> DavCalendar:
    titles = {"bookings": "Bookings", "blocks": "Blocked time", "holds": "Holds"}
    calendar = DavCalendar(
        id=new_id("cal"),
        tenant_id=provider.tenant_id,
        provider_id=provider.id,
        name=name,
        kind=kind,
        blocking=kind != "holds",
        props={"D:displayname": titles.get(kind, name)},
        revision=0,
        created_at=now,
    )
    session.add(calendar)
    session.flush()
    return calendar


def get_calendar(session: Session, provider_id: str, name: str) -> DavCalendar | None:
    return session.scalars(
        select(DavCalendar).where(DavCalendar.provider_id == provider_id, DavCalendar.name == name)
    ).first()


def create_calendar(
    session: Session, provider: Provider, name: str, props: dict[str, str], now: datetime
) -> DavCalendar:
    """A new read-write calendar (MKCALENDAR); blocking unless props say otherwise."""
    if name in FIXED_NAMES:
        if name in READ_ONLY_KINDS:
            raise ReadOnlyCalendar(name)
        raise CalendarExists(name)
    if get_calendar(session, provider.id, name) is not None:
        raise CalendarExists(name)
    calendar = _add_calendar(session, provider, name, "custom", now)
    calendar.props = {**calendar.props, **props}
    return calendar


def delete_calendar(session: Session, calendar: DavCalendar) -> None:
    """Remove a calendar the provider created; its events stop being busy time at once."""
    if calendar.kind != "custom":
        raise ReadOnlyCalendar(calendar.name)
    session.delete(calendar)


def set_props(session: Session, calendar: DavCalendar, props: dict[str, str]) -> None:
    """Merge WebDAV properties (an empty value removes one); counts as a change for ctag."""
    merged = {**calendar.props, **props}
    calendar.props = {k: v for k, v in merged.items() if v != ""}
    calendar.revision += 1


def set_blocking(session: Session, provider_id: str, name: str, blocking: bool) -> DavCalendar:
    """Mark a calendar as blocking busy time or not (bookings and holds always block)."""
    calendar = get_calendar(session, provider_id, name)
    if calendar is None:
        raise NotFoundError("calendar", name)
    if calendar.kind in READ_ONLY_KINDS:
        raise ReadOnlyCalendar(name)
    calendar.blocking = blocking
    calendar.revision += 1
    return calendar


def show_holds_calendar(session: Session, provider_id: str, enabled: bool, now: datetime) -> bool:
    """Show (or hide) the provider's read-only holds calendar; returns the new setting."""
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFoundError("provider", provider_id)
    provider.show_holds_calendar = enabled
    provider.updated_at = now
    ensure_calendars(session, provider, now)
    return enabled


def list_calendars(session: Session, provider_id: str) -> list[DavCalendar]:
    query = select(DavCalendar).where(DavCalendar.provider_id == provider_id)
    return list(session.scalars(query.order_by(DavCalendar.name)))


def calendar_tag(calendar: DavCalendar, extra: str = "") -> str:
    """A fingerprint of a calendar's state (getctag / collection ETag)."""
    body = json.dumps([calendar.id, calendar.revision, calendar.props, extra], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


# --- stored objects -------------------------------------------------------------------------


def get_objects(session: Session, calendar_id: str, hrefs: Iterable[str]) -> list[DavObject]:
    wanted = list(dict.fromkeys(hrefs))
    found: list[DavObject] = []
    for start in range(0, len(wanted), 500):  # stay under bound-parameter limits
        chunk = wanted[start : start + 500]
        query = select(DavObject).where(
            DavObject.calendar_id == calendar_id, DavObject.href.in_(chunk)
        )
        found.extend(session.scalars(query))
    return found


def all_objects(session: Session, calendar_id: str) -> list[DavObject]:
    query = select(DavObject).where(DavObject.calendar_id == calendar_id)
    return list(session.scalars(query.order_by(DavObject.href)))


def objects_in_range(
    session: Session, calendar_ids: Sequence[str], start: datetime, end: datetime
) -> list[DavObject]:
    """Objects whose stored span meets [start, end): answered from the span index."""
    if not calendar_ids:
        return []
    query = select(DavObject).where(
        DavObject.calendar_id.in_(calendar_ids),
        or_(DavObject.start_at.is_(None), DavObject.start_at < end),
        or_(DavObject.end_at.is_(None), DavObject.end_at > start),
    )
    return list(session.scalars(query))


def has_uid(session: Session, calendar_id: str, uid: str) -> bool:
    query = select(DavObject.id).where(DavObject.calendar_id == calendar_id, DavObject.uid == uid)
    return session.execute(query.limit(1)).first() is not None


def put_object(
    session: Session,
    calendar: DavCalendar,
    href: str,
    ics: str,
    *,
    uid: str,
    span: ObjectSpan,
    now: datetime,
) -> tuple[DavObject, bool]:
    """Create or replace the object at href; returns it and whether one was replaced."""
    if calendar.kind in READ_ONLY_KINDS:
        raise ReadOnlyCalendar(calendar.name)
    revision = _bump(session, calendar, href, deleted=False)
    start, end = _stored_span(span)
    existing = get_objects(session, calendar.id, [href])
    obj = existing[0] if existing else DavObject(calendar_id=calendar.id, href=href)
    obj.tenant_id = calendar.tenant_id
    obj.uid, obj.ics, obj.etag = uid, ics, hashlib.sha256(ics.encode()).hexdigest()
    obj.start_at, obj.end_at, obj.recurring = start, end, not span.exact
    obj.revision, obj.updated_at = revision, now
    if not existing:
        session.add(obj)
    session.flush()
    refresh_busy(session, calendar, obj, now)
    return obj, bool(existing)


def delete_object(session: Session, calendar: DavCalendar, href: str) -> bool:
    """Delete the object at href; False when there was none."""
    if calendar.kind in READ_ONLY_KINDS:
        raise ReadOnlyCalendar(calendar.name)
    result = session.execute(
        delete(DavObject).where(DavObject.calendar_id == calendar.id, DavObject.href == href)
    )
    if not getattr(result, "rowcount", 0):
        return False
    _bump(session, calendar, href, deleted=True)
    return True


def move_object(
    session: Session, source: DavCalendar, href: str, target: DavCalendar, to_href: str
) -> None:
    """Move an object between writable calendars (or rename it), logging both changes."""
    for calendar in (source, target):
        if calendar.kind in READ_ONLY_KINDS:
            raise ReadOnlyCalendar(calendar.name)
    found = get_objects(session, source.id, [href])
    if not found:
        raise NotFoundError("object", href)
    session.execute(
        delete(DavObject).where(DavObject.calendar_id == target.id, DavObject.href == to_href)
    )
    _bump(session, source, href, deleted=True)
    revision = _bump(session, target, to_href, deleted=False)
    session.execute(
        update(DavObject)
        .where(DavObject.id == found[0].id)
        .values(calendar_id=target.id, href=to_href, revision=revision)
    )
    session.execute(
        update(DavBusy).where(DavBusy.object_id == found[0].id).values(calendar_id=target.id)
    )


def _bump(session: Session, calendar: DavCalendar, href: str, *, deleted: bool) -> int:
    calendar.revision += 1
    session.add(
        DavChange(
            tenant_id=calendar.tenant_id,
            calendar_id=calendar.id,
            revision=calendar.revision,
            href=href,
            deleted=deleted,
        )
    )
    return calendar.revision


def _stored_span(span: ObjectSpan) -> tuple[datetime | None, datetime | None]:
    if span.exact:
        return span.start, span.end
    start = span.start - _FLOATING_SLACK if span.start is not None else None
    end = span.end + _FLOATING_SLACK if span.end is not None else None
    return start, end


def changes_since(session: Session, calendar_id: str, revision: int) -> list[str]:
    """Hrefs changed (written or deleted) after revision, each once."""
    query = select(DavChange.href).where(
        DavChange.calendar_id == calendar_id, DavChange.revision > revision
    )
    return list(dict.fromkeys(session.scalars(query.order_by(DavChange.revision))))


# --- generated calendars --------------------------------------------------------------------


def bookings_query(provider_id: str) -> Any:
    return select(Booking).where(
        Booking.provider_id == provider_id, Booking.status.in_(BOOKING_STATUSES)
    )


def bookings_in_range(
    session: Session, provider_id: str, start: datetime | None = None, end: datetime | None = None
) -> list[Booking]:
    query = bookings_query(provider_id)
    if start is not None and end is not None:
        query = query.where(Booking.start_at < end, Booking.end_at > start)
    return list(session.scalars(query.order_by(Booking.start_at)))


def bookings_by_ids(session: Session, provider_id: str, ids: Iterable[str]) -> list[Booking]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    return list(session.scalars(bookings_query(provider_id).where(Booking.id.in_(wanted))))


def bookings_state(session: Session, provider_id: str) -> tuple[int, datetime | None]:
    """(count, newest updated_at) of the provider's bookings of every status, for ctag."""
    query = select(func.count(Booking.id), func.max(Booking.updated_at)).where(
        Booking.provider_id == provider_id
    )
    count, newest = session.execute(query).one()
    if isinstance(newest, str):  # SQLite aggregates bypass the column type
        newest = datetime.fromisoformat(newest)
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    return int(count), newest


def booking_ids_changed_since(session: Session, provider_id: str, since: datetime) -> list[str]:
    """Ids of the provider's bookings (any status) updated at or after since."""
    query = select(Booking.id).where(
        Booking.provider_id == provider_id, Booking.updated_at >= since
    )
    return list(session.scalars(query))


def active_holds(
    session: Session, provider_id: str, now: datetime, ids: Iterable[str] | None = None
) -> list[Hold]:
    query = select(Hold).where(
        Hold.provider_id == provider_id, Hold.status == "active", Hold.expires_at > now
    )
    if ids is not None:
        query = query.where(Hold.id.in_(list(ids)))
    return list(session.scalars(query.order_by(Hold.start_at)))


# --- busy time ------------------------------------------------------------------------------


def dav_busy(session: Session, provider_id: str, start: datetime, end: datetime) -> list[Busy]:
    """Busy time from the provider's blocking calendars (blocks and blocking calendars it
    created) meeting [start, end): the stored spans of their opaque, not-cancelled events."""
    query = (
        select(DavBusy.start_at, DavBusy.end_at, DavBusy.calendar_id, DavCalendar.name)
        .join(DavCalendar, DavCalendar.id == DavBusy.calendar_id)
        .where(
            DavBusy.provider_id == provider_id,
            DavBusy.start_at < end,
            DavBusy.end_at > start,
            DavCalendar.blocking.is_(True),
        )
        .order_by(DavBusy.start_at, DavBusy.end_at)
    )
    return [
        Busy(s, e, BusyKind.EXTERNAL, ref, label) for s, e, ref, label in session.execute(query)
    ]


def refresh_busy(
    session: Session,
    calendar: DavCalendar,
    obj: DavObject,
    now: datetime,
    zone: ZoneInfo | None = None,
) -> None:
    """Store the busy spans of one object from a day ago to SPAN_HORIZON ahead (floating
    times in ``zone``, the provider's zone when not given)."""
    session.execute(delete(DavBusy).where(DavBusy.object_id == obj.id))
    if calendar.kind not in BLOCKING_KINDS:
        return
    zone = zone or _provider_zone(session, calendar.provider_id)
    spans = object_busy(obj.ics, now - SPAN_PAST, SPAN_HORIZON, zone)
    session.add_all(
        DavBusy(
            tenant_id=calendar.tenant_id,
            provider_id=calendar.provider_id,
            calendar_id=calendar.id,
            object_id=obj.id,
            start_at=span_start,
            end_at=span_end,
        )
        for span_start, span_end in spans
    )


def refresh_recurring_busy(session: Session, now: datetime, *, limit: int = 500) -> int:
    """Re-expand objects whose spans may have moved with the horizon (recurring ones) or
    were never expanded (stored before spans existed); returns how many were refreshed."""
    has_spans = select(DavBusy.object_id).where(DavBusy.object_id == DavObject.id).exists()
    query = (
        select(DavObject, DavCalendar)
        .join(DavCalendar, DavCalendar.id == DavObject.calendar_id)
        .where(DavCalendar.kind.in_(BLOCKING_KINDS))
        .where(or_(DavObject.recurring.is_(True), ~has_spans))
        .where(or_(DavObject.end_at.is_(None), DavObject.end_at > now - SPAN_PAST))
        .order_by(DavObject.id)
    )
    zones: dict[str, ZoneInfo] = {}
    done = 0
    last = 0
    while True:
        rows = session.execute(query.where(DavObject.id > last).limit(limit)).all()
        for obj, calendar in rows:
            owner = calendar.provider_id
            if owner not in zones:
                zones[owner] = _provider_zone(session, owner)
            refresh_busy(session, calendar, obj, now, zones[owner])
            last = obj.id
        session.flush()
        done += len(rows)
        if len(rows) < limit:
            return done


def object_busy(
    ics: str, start: datetime, horizon: timedelta, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The merged spans of an object's opaque, not-cancelled occurrences from ``start`` to
    ``horizon`` after it (after its first DTSTART, for a series that starts later).

    Occurrences are expanded window by window from the first DTSTART, each window sized
    by the rule's frequency and by what the last one held, stopping once MAX_OCCURRENCES
    were seen: no rule (FREQ=SECONDLY) makes this unbounded work. Floating and all-day
    times are read in ``zone``.
    """
    try:
        calendar = Calendar.from_ical(ics)
        query = recurring_ical_events.of(calendar)
        first, width = _expansion_start(calendar, zone)
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    spans: list[tuple[datetime, datetime]] = []
    seen = 0
    # Widen the range for floating and all-day events; the exact check follows.
    end = max(start, first) + horizon
    low, high = max(start - _DAY, first), end + _DAY
    while low < high:
        upper = min(low + width, high)
        try:
            events = query.between(low, upper)
        except (ValueError, KeyError, TypeError, AttributeError):
            return []
        seen += len(events)
        for event in events:
            if event.name != "VEVENT" or not _blocks_time(event):
                continue
            span = _event_span(event, zone)
            if span is not None and span[0] < end and span[1] > start:
                spans.append(span)
        if seen >= MAX_OCCURRENCES:
            _log.warning("dav.spans.truncated", until=upper.isoformat(), occurrences=seen)
            break
        low = upper
        if len(events) < 256:
            width *= 2
        elif len(events) > 1024:
            width = max(width / 2, timedelta(seconds=1))
    return normalize(spans)


def _provider_zone(session: Session, provider_id: str) -> ZoneInfo:
    name = session.scalar(select(Provider.timezone).where(Provider.id == provider_id))
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


_FIRST_WIDTH = {
    "SECONDLY": timedelta(minutes=1),
    "MINUTELY": timedelta(hours=1),
    "HOURLY": timedelta(days=1),
}


def _expansion_start(calendar: Calendar, zone: ZoneInfo) -> tuple[datetime, timedelta]:
    """The earliest DTSTART of the object's events, and a first window that holds only a
    few occurrences of its most frequent rule."""
    starts: list[datetime] = []
    width = timedelta(days=7)
    for event in calendar.walk("VEVENT"):
        value: Any = event.decoded("DTSTART", None)
        if isinstance(value, date):  # a datetime is a date too
            starts.append(_as_utc(value, zone))
        for freq in (event.get("RRULE") or {}).get("FREQ", []):
            width = min(width, _FIRST_WIDTH.get(str(freq).upper(), width))
    return (min(starts) if starts else datetime.min.replace(tzinfo=UTC)), width


_DAY = timedelta(days=1)


def _blocks_time(event: Any) -> bool:
    transparent = str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT"
    cancelled = str(event.get("STATUS", "")).upper() == "CANCELLED"
    return not transparent and not cancelled


def _event_span(event: Any, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    if "DTSTART" not in event:
        return None
    first = _as_utc(event["DTSTART"].dt, zone)
    if "DTEND" in event:
        last = _as_utc(event["DTEND"].dt, zone)
    elif "DURATION" in event:
        last = first + event["DURATION"].dt
    elif not isinstance(event["DTSTART"].dt, datetime):
        last = first + _DAY  # an all-day event without an end lasts one day
    else:
        return None  # an instant blocks nothing
    return (first, last) if last > first else None


def _as_utc(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def rewrite_object(
    session: Session,
    calendar: DavCalendar,
    obj: DavObject,
    ics: str,
    now: datetime,
    *,
    span: ObjectSpan | None = None,
) -> None:
    """Replace a stored object's text in place, as the server's own change (an answer
    written back, a proposal applied): a new ETag and revision; span when times moved."""
    obj.ics, obj.etag = ics, hashlib.sha256(ics.encode()).hexdigest()
    if span is not None:
        obj.start_at, obj.end_at = _stored_span(span)
        obj.recurring = not span.exact
    obj.revision = _bump(session, calendar, obj.href, deleted=False)
    obj.updated_at = now
    session.flush()
    if span is not None:
        refresh_busy(session, calendar, obj, now)


# --- the schedule inbox (RFC 6638 2.2) ----------------------------------------------------

INBOX, OUTBOX = "inbox", "outbox"


def ensure_inbox(session: Session, provider: Provider, now: datetime) -> DavCalendar:
    """The provider's schedule inbox, made on first use (idempotent, also when two
    requests make it at once: the loser of the insert reads the winner's row)."""
    found = get_calendar(session, provider.id, INBOX)
    if found is not None:
        return found
    row = DavCalendar(
        id=new_id("cal"),
        tenant_id=provider.tenant_id,
        provider_id=provider.id,
        name=INBOX,
        kind="inbox",
        blocking=False,
        props={"D:displayname": "Inbox"},
        revision=0,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = get_calendar(session, provider.id, INBOX)
        if found is None:
            raise
        return found
    return row
