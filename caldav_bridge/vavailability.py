"""A provider's availability as VAVAILABILITY (RFC 7953): the schedule inbox's
``CALDAV:calendar-availability`` property, read and written.

Rendering: one unbounded VAVAILABILITY (PRIORITY 9) holds the weekly rules as weekly
AVAILABLE components in the provider's zone; each vacation and each ``unavailable``
exception is a bounded VAVAILABILITY with no AVAILABLE (PRIORITY 5: that time is
unavailable); each ``available`` exception a bounded one (PRIORITY 1) that is wholly
AVAILABLE. This is Parley's precedence (core.domain.windows): weekly, then closed, then
added windows.

Writing (PROPPATCH) reads the same shapes back, and what calendar apps write for
working hours (Apple Calendar: weekly AVAILABLE components, one per day or grouped by
BYDAY, in the device's zone, which becomes the provider's zone). The result goes through
the parsers and the service the availability API uses (core.domain.weekly_windows,
date_exception, vacation; availability.put_availability); settings such as lead time
stay as they are. PARLEY_DAV_AVAILABILITY_WRITABLE=false makes the property read-only:
a PROPPATCH of it is answered 403.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from http import client
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from icalendar import Calendar, Timezone
from radicale import types, xmlutils
from sqlalchemy.orm import Session

from caldav_bridge.davxml import CALENDAR_AVAILABILITY, dav_error
from caldav_bridge.errors import UnreadableAvailability
from core.db.models import Provider
from core.domain import AvailabilityPolicy, DateException, ExceptionKind, date_exception, vacation
from core.domain import weekly_windows as make_weekly
from core.errors import ParleyError
from core.runtime import Runtime
from core.services import availability, dav
from core.tzids import zone_for_tzid

WEEKLY_PRIORITY, CLOSED_PRIORITY, OPEN_PRIORITY = 9, 5, 1
# As the availability API's body allows (web.api.providers.AvailabilityIn).
MAX_WEEKLY, MAX_EXCEPTIONS, MAX_VACATIONS = 200 * 7, 2000, 500
_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ANCHOR = date(2024, 1, 1)  # a Monday: weekly components start in its week
_KIND = "X-PARLEY-KIND"
_D = "{DAV:}"


# --- rendering --------------------------------------------------------------------------------


def render(session: Session, provider: Provider) -> str:
    """The provider's calendar-availability text."""
    policy = availability.get_availability(session, provider.id)
    return render_policy(policy, provider.id, provider.updated_at)


def render_policy(policy: AvailabilityPolicy, ident: str, stamp: datetime) -> str:
    zone = policy.timezone
    stamped = "DTSTAMP:" + stamp.strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Parley//Availability//EN"]
    lines.append(_vtimezone(zone).rstrip("\r\n"))
    lines += ["BEGIN:VAVAILABILITY", f"UID:{ident}-weekly@parley", stamped]
    lines += [f"PRIORITY:{WEEKLY_PRIORITY}", "SUMMARY:Weekly hours"]
    groups: dict[tuple[int, int], list[int]] = {}
    for window in policy.weekly:
        groups.setdefault((window.start_minute, window.end_minute), []).append(window.weekday)
    for n, ((first, last), days) in enumerate(sorted(groups.items())):
        day = _ANCHOR + timedelta(days=min(days))
        lines += ["BEGIN:AVAILABLE", f"UID:{ident}-weekly-{n}@parley", stamped]
        lines += [_local("DTSTART", zone, day, first), _local("DTEND", zone, day, last)]
        lines.append("RRULE:FREQ=WEEKLY;BYDAY=" + ",".join(_BYDAY[d] for d in sorted(days)))
        lines += ["END:AVAILABLE"]
    lines.append("END:VAVAILABILITY")
    blocks: list[tuple[str, int, date, int, date, int]] = []
    for off in policy.vacations:
        blocks.append(("vacation", CLOSED_PRIORITY, off.first, 0, off.last + _DAY, 0))
    for exception in policy.exceptions:
        day, opens, closes = exception.day, exception.start_minute, exception.end_minute
        if opens is None or closes is None:
            blocks.append(("unavailable", CLOSED_PRIORITY, day, 0, day + _DAY, 0))
        elif exception.kind is ExceptionKind.UNAVAILABLE:
            blocks.append(("unavailable", CLOSED_PRIORITY, day, opens, day, closes))
        else:
            blocks.append(("available", OPEN_PRIORITY, day, opens, day, closes))
    for n, (kind, priority, first_day, low, last_day, high) in enumerate(blocks):
        span = [_local("DTSTART", zone, first_day, low), _local("DTEND", zone, last_day, high)]
        lines += ["BEGIN:VAVAILABILITY", f"UID:{ident}-{kind}-{n}@parley", stamped]
        lines += [f"PRIORITY:{priority}", f"SUMMARY:{kind.title()}", f"{_KIND}:{kind}", *span]
        if kind == "available":
            lines += ["BEGIN:AVAILABLE", f"UID:{ident}-{kind}-{n}-open@parley", stamped]
            lines += [*span, "END:AVAILABLE"]
        lines.append("END:VAVAILABILITY")
    lines += ["END:VCALENDAR", ""]
    return "\r\n".join(lines)


_DAY = timedelta(days=1)


def _local(name: str, zone: str, day: date, minute: int) -> str:
    moment = datetime.combine(day, time(0)) + timedelta(minutes=minute)
    return f"{name};TZID={zone}:{moment:%Y%m%dT%H%M%S}"


@lru_cache(maxsize=64)
def _vtimezone(zone: str) -> str:
    text: str = Timezone.from_tzid(zone).to_ical().decode()
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# --- reading ----------------------------------------------------------------------------------


@dataclass
class _Parsed:
    zone: ZoneInfo
    weekly: list[tuple[int, int, int]] = field(default_factory=list)  # weekday, start, end
    exceptions: list[DateException] = field(default_factory=list)
    vacations: list[tuple[date, date]] = field(default_factory=list)


def read_policy(text: str, current: AvailabilityPolicy) -> AvailabilityPolicy:
    """The policy a calendar-availability value describes, with ``current``'s settings."""
    try:
        calendar = Calendar.from_ical(text)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise UnreadableAvailability(f"not an iCalendar object: {error}") from error
    blocks = [c for c in calendar.walk("VAVAILABILITY")]
    if not blocks:
        raise UnreadableAvailability("the value holds no VAVAILABILITY component")
    parsed = _Parsed(_zone_of(blocks, current.zone))
    for block in blocks:
        _read_block(block, parsed)
    if len(parsed.weekly) > MAX_WEEKLY or len(parsed.exceptions) > MAX_EXCEPTIONS:
        raise UnreadableAvailability("too many weekly windows or date exceptions")
    if len(parsed.vacations) > MAX_VACATIONS:
        raise UnreadableAvailability(f"at most {MAX_VACATIONS} vacations")
    weekly = tuple(
        w
        for weekday, first, last in sorted(set(parsed.weekly))
        for w in make_weekly([_DAYS[weekday]], _clock(first), _clock(last))
    )
    return AvailabilityPolicy(
        str(parsed.zone.key),
        weekly=weekly,
        exceptions=tuple(parsed.exceptions),
        vacations=tuple(vacation(a.isoformat(), b.isoformat()) for a, b in parsed.vacations),
        lead_time_hours=current.lead_time_hours,
        booking_window_days=current.booking_window_days,
        min_duration_minutes=current.min_duration_minutes,
        slot_step_minutes=current.slot_step_minutes,
        buffer_before_minutes=current.buffer_before_minutes,
        buffer_after_minutes=current.buffer_after_minutes,
        instant_book=current.instant_book,
    )


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _zone_of(blocks: Iterable[Any], fallback: ZoneInfo) -> ZoneInfo:
    """The zone the value's times are written in: the first TZID that names one."""
    for block in blocks:
        for component in [block, *block.subcomponents]:
            prop = component.get("DTSTART")
            tzid = prop.params.get("TZID") if prop is not None else None
            zone = zone_for_tzid(str(tzid)) if tzid else None
            if zone is not None:
                return zone
    return fallback


def _moment(component: Any, name: str, zone: ZoneInfo) -> datetime | None:
    """A DTSTART/DTEND as a naive local time in ``zone`` (dates are midnight)."""
    if component.get(name) is None:
        return None
    try:
        value = component.decoded(name)
    except (ValueError, KeyError, TypeError) as error:
        raise UnreadableAvailability(f"unreadable {name}") from error
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0))
    if value.tzinfo is not None:
        value = value.astimezone(zone).replace(tzinfo=None)
    return value


def _span(component: Any, zone: ZoneInfo, what: str) -> tuple[datetime, datetime] | None:
    start = _moment(component, "DTSTART", zone)
    if start is None:
        return None
    end = _moment(component, "DTEND", zone)
    if end is None and component.get("DURATION") is not None:
        end = start + component.decoded("DURATION")
    if end is None:
        raise UnreadableAvailability(f"{what} needs DTEND or DURATION")
    if end <= start:
        raise UnreadableAvailability(f"{what} ends before it starts")
    return start, end


def _read_block(block: Any, parsed: _Parsed) -> None:
    # A VAVAILABILITY with a start and no end (RFC 7953: it lasts for ever) is read as the
    # unbounded weekly hours: Parley's weekly rules have no first date.
    bounded = block.get("DTEND") is not None or block.get("DURATION") is not None
    span = _span(block, parsed.zone, "VAVAILABILITY") if bounded else None
    open_parts = [c for c in block.subcomponents if c.name == "AVAILABLE"]
    if span is None:
        for available in open_parts:
            _read_weekly(available, parsed)
        return
    opened: list[tuple[datetime, datetime]] = []
    for available in open_parts:
        if available.get("RRULE") is not None:
            raise UnreadableAvailability(
                "weekly hours for a limited period cannot be stored; "
                "give them without DTSTART/DTEND on their VAVAILABILITY"
            )
        inner = _span(available, parsed.zone, "AVAILABLE")
        if inner is None:
            raise UnreadableAvailability("AVAILABLE needs DTSTART")
        first, last = max(inner[0], span[0]), min(inner[1], span[1])
        if first < last:
            opened.append((first, last))
    closed = _minus([span], sorted(opened))
    kind = str(block.get(_KIND, "")).lower()
    for first, last in closed:
        whole = first.time() == time(0) and last.time() == time(0)
        if whole and (kind == "vacation" or (last - first).days > 1):
            parsed.vacations.append((first.date(), (last - _DAY).date()))
            continue
        for day, a, b in _by_day(first, last):
            if a == 0 and b == 1440:
                parsed.exceptions.append(date_exception(day.isoformat(), "unavailable"))
            else:
                parsed.exceptions.append(
                    date_exception(day.isoformat(), "unavailable", _clock(a), _clock(b))
                )
    for first, last in opened:
        for day, a, b in _by_day(first, last):
            parsed.exceptions.append(
                date_exception(day.isoformat(), "available", _clock(a), _clock(b))
            )


def _read_weekly(available: Any, parsed: _Parsed) -> None:
    span = _span(available, parsed.zone, "AVAILABLE")
    if span is None:
        raise UnreadableAvailability("AVAILABLE needs DTSTART")
    rule = available.get("RRULE")
    if rule is None:  # a one-off window in the weekly block: an added window on its date
        for day, a, b in _by_day(*span):
            parsed.exceptions.append(
                date_exception(day.isoformat(), "available", _clock(a), _clock(b))
            )
        return
    freq = [str(f).upper() for f in rule.get("FREQ", [])]
    interval = [int(i) for i in rule.get("INTERVAL", [1])]
    if freq != ["WEEKLY"] and not (freq == ["DAILY"] and interval == [1]):
        raise UnreadableAvailability(
            "only weekly (or daily) recurring AVAILABLE components can be stored"
        )
    if interval != [1] or rule.get("UNTIL") or rule.get("COUNT"):
        raise UnreadableAvailability("weekly hours must repeat every week without an end")
    if freq == ["DAILY"]:
        weekdays = list(range(7))
    else:
        names = [str(d).upper()[-2:] for d in rule.get("BYDAY", [])]
        if any(n not in _BYDAY for n in names):
            raise UnreadableAvailability(f"unknown BYDAY in {names}")
        weekdays = [_BYDAY.index(n) for n in names] or [span[0].weekday()]
    start, end = span
    if end - start > _DAY:
        raise UnreadableAvailability("a weekly AVAILABLE window lasts at most one day")
    for weekday in weekdays:
        shift = timedelta(days=weekday - start.weekday())
        for day, a, b in _by_day(start + shift, end + shift):
            parsed.weekly.append((day.weekday(), a, b))


def _by_day(start: datetime, end: datetime) -> list[tuple[date, int, int]]:
    """[start, end) cut at local midnights: (date, start minute, end minute), 1440 = 24:00."""
    out = []
    day = start.date()
    while datetime.combine(day, time(0)) < end:
        low = max(start, datetime.combine(day, time(0)))
        high = min(end, datetime.combine(day + _DAY, time(0)))
        a = (low - datetime.combine(day, time(0))) // timedelta(minutes=1)
        b = (high - datetime.combine(day, time(0))) // timedelta(minutes=1)
        if a < b:
            out.append((day, a, b))
        day += _DAY
        if len(out) > MAX_EXCEPTIONS:
            raise UnreadableAvailability("a VAVAILABILITY spans too many days")
    return out


def _minus(
    spans: list[tuple[datetime, datetime]], cuts: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out = []
    for start, end in spans:
        cursor = start
        for a, b in cuts:
            if b <= cursor or a >= end:
                continue
            if a > cursor:
                out.append((cursor, a))
            cursor = max(cursor, b)
        if cursor < end:
            out.append((cursor, end))
    return out


# --- PROPPATCH ----------------------------------------------------------------------------------


def proppatch(
    runtime: Runtime, base_prefix: str, path: str, user: str, root: ET.Element
) -> types.WSGIResponse:
    """Answer a PROPPATCH of the inbox that names calendar-availability (all or nothing:
    the other properties of the request get 424 when it fails)."""
    if not runtime.settings.dav_availability_writable:
        return dav_error(
            client.FORBIDDEN,
            "D:cannot-modify-protected-property",
            "availability is read-only over CalDAV here (PARLEY_DAV_AVAILABILITY_WRITABLE); "
            "change it on Parley's availability page or API",
        )
    changes: list[tuple[bool, ET.Element]] = []
    for action in root:
        if action.tag not in (f"{_D}set", f"{_D}remove"):
            continue
        for prop in action.findall(f"{_D}prop/*"):
            changes.append((action.tag == f"{_D}set", prop))
    wanted = [(is_set, p) for is_set, p in changes if p.tag == CALENDAR_AVAILABILITY]
    others = [(is_set, p) for is_set, p in changes if p.tag != CALENDAR_AVAILABILITY]
    failure = ""
    is_set, value = wanted[-1][0], wanted[-1][1].text or ""
    now = runtime.clock()
    with runtime.sessions() as session, session.begin():
        provider = dav.provider_by_dav_username(session, user)
        if provider is None:
            return dav_error(client.FORBIDDEN, "D:need-privileges", "no such principal")
        if not is_set:
            failure = (
                "calendar-availability cannot be removed; to close every hour, write a "
                "VAVAILABILITY without AVAILABLE components"
            )
        else:
            try:
                with session.begin_nested():
                    current = availability.get_availability(session, provider.id)
                    policy = read_policy(value, current)
                    availability.put_availability(
                        session, provider.id, policy, now, actor=f"caldav:{user}"
                    )
            except ParleyError as error:
                failure = getattr(error, "message", None) or str(error)
        if not failure and others:
            inbox = dav.get_calendar(session, provider.id, "inbox")
            if inbox is not None:
                props = {
                    xmlutils.make_human_tag(p.tag): (p.text or "") if s else "" for s, p in others
                }
                dav.set_props(session, inbox, props)
    return _multistatus(base_prefix, path, wanted[-1][1].tag, [p.tag for _, p in others], failure)


def _multistatus(
    base_prefix: str, path: str, tag: str, others: list[str], failure: str
) -> types.WSGIResponse:
    root = ET.Element(f"{_D}multistatus")
    response = ET.SubElement(root, f"{_D}response")
    ET.SubElement(response, f"{_D}href").text = xmlutils.make_href(base_prefix, path)

    def propstat(tags: list[str], status: str, message: str = "") -> None:
        element = ET.SubElement(response, f"{_D}propstat")
        prop = ET.SubElement(element, f"{_D}prop")
        for name in dict.fromkeys(tags):
            ET.SubElement(prop, name)
        ET.SubElement(element, f"{_D}status").text = f"HTTP/1.1 {status}"
        if message:
            error = ET.SubElement(element, f"{_D}error")
            ET.SubElement(error, "{urn:ietf:params:xml:ns:caldav}valid-calendar-data")
            ET.SubElement(element, f"{_D}responsedescription").text = message

    if failure:
        propstat([tag], "409 Conflict", failure)
        if others:
            propstat(others, "424 Failed Dependency")
    else:
        propstat([tag, *others], "200 OK")
    out = io.BytesIO()
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    headers = {"Content-Type": "application/xml; charset=utf-8"}
    return client.MULTI_STATUS, headers, out.getvalue(), None
