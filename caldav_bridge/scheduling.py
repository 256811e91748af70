"""CalDAV scheduling (RFC 6638) on a provider's principal: its schedule inbox and outbox,
the principal properties that point calendar apps at them, and free-busy.

- The provider's inbox (``/<dav_username>/inbox/``, a dav_calendars row of kind
  ``inbox``) is made on first use by ``core.services.dav.ensure_inbox``, which whatever
  delivers iTIP messages calls too.
- ``SchedulingMixin`` goes before Radicale's ``Application`` (caldav_bridge/app.py):
  PROPFIND answers gain the RFC 6638 properties, a VFREEBUSY REQUEST POSTed to the outbox
  is answered from the busy engine (core.services.freebusy) for the tenant's providers,
  the free-busy-query REPORT on bookings and holds from their tables (Radicale answers it
  on stored calendars), a PROPPATCH of schedule-calendar-transp sets a calendar's
  blocking, and one of the inbox's calendar-availability goes to caldav_bridge.vavailability.

Only the owner's own paths are answered here; anything else falls through to Radicale,
which refuses it as before.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http import client
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as DefusedET
from icalendar import Calendar
from radicale import httputils, pathutils, types, xmlutils
from radicale.item import filter as radicale_filter
from sqlalchemy import select

from caldav_bridge import vavailability
from caldav_bridge.davxml import CALENDAR_AVAILABILITY, C, D, P, dav_error, to_bytes
from core.db.models import DavCalendar, Provider
from core.runtime import Runtime
from core.services import dav, freebusy

INBOX, OUTBOX = dav.INBOX, dav.OUTBOX
DEFAULT_CALENDAR = "blocks"
MAX_RECIPIENTS = 100

_D, _C, _P = D, C, P
SCHEDULE_INBOX_URL = f"{_C}schedule-inbox-URL"
SCHEDULE_OUTBOX_URL = f"{_C}schedule-outbox-URL"
ADDRESS_SET = f"{_C}calendar-user-address-set"
USER_TYPE = f"{_C}calendar-user-type"
CALENDAR_TRANSP = f"{_C}schedule-calendar-transp"
DEFAULT_CALENDAR_URL = f"{_C}schedule-default-calendar-URL"
_FREE_BUSY_QUERY = f"{_C}free-busy-query"
_PROPERTIES = frozenset(
    {
        SCHEDULE_INBOX_URL,
        SCHEDULE_OUTBOX_URL,
        ADDRESS_SET,
        USER_TYPE,
        CALENDAR_TRANSP,
        DEFAULT_CALENDAR_URL,
        CALENDAR_AVAILABILITY,
    }
)


# What a PROPFIND answer holds when it has something to rewrite: one of the properties,
# or the inbox or outbox (whose resourcetype Radicale cannot tell).
_REWRITTEN = (b"schedule-", b"calendar-user-", b"calendar-availability", b"/inbox/", b"/outbox/")


# --- the inbox --------------------------------------------------------------------------------


# --- paths and answers ------------------------------------------------------------------------


def path_parts(path: str) -> list[str]:
    return [p for p in pathutils.strip_path(path).split("/") if p]


_xml = to_bytes


def _href(base_prefix: str, path: str) -> ET.Element:
    element = ET.Element(f"{_D}href")
    element.text = xmlutils.make_href(base_prefix, path)
    return element


def _read_body(environ: Any) -> bytes:
    """The request body (its size was bounded by app._guard); left readable again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    data: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    _set_body(environ, data)
    return data


def _set_body(environ: Any, data: bytes) -> None:
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(data), str(len(data))


def _parse_xml(data: bytes) -> ET.Element | None:
    if not data.strip():
        return None
    try:
        root: ET.Element = DefusedET.fromstring(data)
    except (ET.ParseError, ValueError):  # malformed, or hostile (defusedxml's are ValueErrors)
        return None
    return root


# --- the mixin ----------------------------------------------------------------------------------


class SchedulingMixin:
    """RFC 6638 on top of Radicale's Application (which must come after it in the MRO)."""

    _storage: Any

    @property
    def _runtime(self) -> Runtime:
        runtime: Runtime = self._storage.runtime
        return runtime

    def _owned(self, path: str, user: str) -> list[str] | None:
        parts = path_parts(path)
        return parts if user and parts and parts[0] == user else None

    # --- PROPFIND ---------------------------------------------------------------------------

    def do_PROPFIND(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> types.WSGIResponse:
        answer: types.WSGIResponse = super().do_PROPFIND(  # type: ignore[misc]
            environ, base_prefix, path, user, user_groups, request_info
        )
        body = answer[2]
        if not user or answer[0] != client.MULTI_STATUS or not isinstance(body, bytes):
            return answer
        if not any(mark in body for mark in _REWRITTEN):
            return answer  # a listing of events, say: nothing of ours to fill in
        return (answer[0], answer[1], self._with_scheduling_props(body, base_prefix, user),
                *answer[3:])  # fmt: skip

    def _with_scheduling_props(self, body: bytes, base_prefix: str, user: str) -> bytes:
        root = _parse_xml(body)
        if root is None:
            return body
        runtime = self._runtime
        with runtime.sessions() as session, session.begin():
            provider = dav.provider_by_dav_username(session, user)
            if provider is None:
                return body
            calendars = {c.name: c for c in dav.list_calendars(session, provider.id)}
            facts = _Facts(base_prefix, provider, calendars)
            for response in root.iter(f"{_D}response"):
                href = response.findtext(f"{_D}href") or ""
                parts = path_parts(unquote(href).removeprefix(base_prefix))
                if not parts or parts[0] != user or len(parts) > 2:
                    continue
                where = parts[1] if len(parts) == 2 else ""
                _rewrite(response, where, facts, lambda: vavailability.render(session, provider))
        return _xml(root)

    # --- POST to the outbox ----------------------------------------------------------------

    def do_POST(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> types.WSGIResponse:
        parts = path_parts(path)
        if len(parts) == 2 and parts[1] == OUTBOX:
            if not user or parts[0] != user:
                return httputils.NOT_ALLOWED
            return self._free_busy_request(user, _read_body(environ))
        answer: types.WSGIResponse = super().do_POST(  # type: ignore[misc]
            environ, base_prefix, path, user, user_groups, request_info
        )
        return answer

    def _free_busy_request(self, user: str, data: bytes) -> types.WSGIResponse:
        runtime = self._runtime
        request = read_free_busy_request(data, runtime.settings.dav_max_expand_days)
        if isinstance(request, tuple):
            return request
        now = runtime.clock()
        with runtime.sessions() as session, session.begin():
            provider = dav.provider_by_dav_username(session, user)
            if provider is None:
                return httputils.NOT_ALLOWED
            if freebusy.address_of(request.organizer) != freebusy.address_of(provider.email):
                return dav_error(
                    client.FORBIDDEN,
                    "C:organizer-allowed",
                    f"the ORGANIZER must be your own address, mailto:{provider.email}",
                )
            answers = freebusy.answer(
                session, provider.tenant_id, request.attendees, request.start, request.end, now
            )
        root = ET.Element(f"{_C}schedule-response")
        for found in answers:
            item = ET.SubElement(root, f"{_C}response")
            recipient = ET.SubElement(item, f"{_C}recipient")
            ET.SubElement(recipient, f"{_D}href").text = found.address
            ET.SubElement(item, f"{_C}request-status").text = found.status
            if found.found:
                ET.SubElement(item, f"{_C}calendar-data").text = freebusy.vfreebusy(
                    found.periods,
                    request.start,
                    request.end,
                    now,
                    method="REPLY",
                    uid=request.uid,
                    organizer=request.organizer,
                    attendee=found.address,
                )
        return client.OK, {"Content-Type": "application/xml; charset=utf-8"}, _xml(root), None

    # --- REPORT free-busy-query --------------------------------------------------------------

    def do_REPORT(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> types.WSGIResponse:
        parts = self._owned(path, user)
        if parts is not None and len(parts) == 2 and parts[1] not in (INBOX, OUTBOX):
            root = _parse_xml(_read_body(environ))
            if root is not None and root.tag == _FREE_BUSY_QUERY:
                answered = self._free_busy_query(user, parts[1], root)
                if answered is not None:
                    return answered
        answer: types.WSGIResponse = super().do_REPORT(  # type: ignore[misc]
            environ, base_prefix, path, user, user_groups, request_info
        )
        return answer

    def _free_busy_query(self, user: str, name: str, root: ET.Element) -> types.WSGIResponse | None:
        """RFC 4791 §7.10 for the bookings and holds calendars, from their tables as the
        busy engine reads them; None: Radicale answers (stored calendars, whose objects it
        reads and expands under the request's budget, showing a too-costly series busy)."""
        element = root.find(f"{_C}time-range")
        if element is None or not element.get("start"):
            return dav_error(
                client.BAD_REQUEST, "C:valid-filter", "free-busy-query needs a time-range start"
            )
        runtime = self._runtime
        try:
            start, end = radicale_filter.parse_time_range(element)
        except ValueError:
            return dav_error(client.BAD_REQUEST, "C:valid-filter", "time-range is malformed")
        if not element.get("end"):
            end = start + timedelta(days=runtime.settings.dav_max_expand_days)
        if end <= start:
            return dav_error(client.BAD_REQUEST, "C:valid-filter", "time-range ends before start")
        now = runtime.clock()
        with runtime.sessions() as session, session.begin():
            provider = dav.provider_by_dav_username(session, user)
            if provider is None:
                return None
            calendar = session.scalars(
                select(DavCalendar).where(
                    DavCalendar.provider_id == provider.id, DavCalendar.name == name
                )
            ).first()
            if calendar is None or calendar.kind not in freebusy.TABLE_CALENDARS:
                return None  # stored objects: Radicale reads them, under its budgets
            if calendar.kind == "holds" and not provider.show_holds_calendar:
                return None
            periods = freebusy.calendar_periods(session, calendar, start, end, now)
        text = freebusy.vfreebusy(periods, start, end, now)
        return client.OK, {"Content-Type": "text/calendar; charset=utf-8"}, text.encode(), None

    # --- PROPPATCH of the inbox's calendar-availability -----------------------------------------

    def do_PROPPATCH(
        self,
        environ: types.WSGIEnviron,
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> types.WSGIResponse:
        parts = self._owned(path, user)
        if parts is not None and len(parts) == 2 and parts[1] == INBOX:
            root = _parse_xml(_read_body(environ))
            if root is not None and root.find(f".//{CALENDAR_AVAILABILITY}") is not None:
                return vavailability.proppatch(self._runtime, base_prefix, path, user, root)
        transp = False
        if parts is not None and len(parts) == 2 and parts[1] not in (INBOX, OUTBOX):
            root = _parse_xml(_read_body(environ))
            if root is not None and _transp_as_blocking(root):
                transp = True
                _set_body(environ, _xml(root))
        answer: types.WSGIResponse = super().do_PROPPATCH(  # type: ignore[misc]
            environ, base_prefix, path, user, user_groups, request_info
        )
        if transp and isinstance(answer[2], bytes):
            done = _parse_xml(answer[2])
            if done is not None:
                for element in done.iter(BLOCKING):
                    element.tag = CALENDAR_TRANSP
                return (answer[0], answer[1], _xml(done), *answer[3:])
        return answer


BLOCKING = f"{_P}blocking"


def _transp_as_blocking(root: ET.Element) -> bool:
    """Rewrite schedule-calendar-transp in a PROPPATCH body as Parley's blocking property
    (opaque: the calendar's events are busy time; transparent: they are not), which the
    storage applies; True when there was one."""
    found = False
    for action in root:
        holder = action.find(f"{_D}prop")
        if holder is None:
            continue
        for prop in list(holder):
            if prop.tag != CALENDAR_TRANSP:
                continue
            found = True
            opaque = action.tag == f"{_D}remove" or prop.find(f"{_C}transparent") is None
            prop.tag, prop.text = BLOCKING, "true" if opaque else "false"
            for child in list(prop):
                prop.remove(child)
    return found


# --- PROPFIND rewriting ---------------------------------------------------------------------------


class _Facts:
    """What the PROPFIND rewrite needs to know about the owner, read once per request."""

    def __init__(
        self, base_prefix: str, provider: Provider, calendars: dict[str, DavCalendar]
    ) -> None:
        self.base_prefix, self.provider, self.calendars = base_prefix, provider, calendars
        self.user = provider.dav_username

    def href(self, *names: str) -> ET.Element:
        return _href(self.base_prefix, "/" + "/".join((self.user, *names)) + "/")


def _propstats(response: ET.Element) -> Iterator[tuple[ET.Element, ET.Element, str]]:
    for propstat in response.findall(f"{_D}propstat"):
        prop = propstat.find(f"{_D}prop")
        if prop is not None:
            yield propstat, prop, propstat.findtext(f"{_D}status") or ""


def _rewrite(response: ET.Element, where: str, facts: _Facts, availability: Any) -> None:
    """Fill the scheduling properties Radicale left 404 in ``response`` and correct those it
    answered otherwise (the address set, the inbox's and outbox's resourcetype)."""
    ok: ET.Element | None = None
    missing: list[tuple[ET.Element, ET.Element]] = []
    for _, prop, status in _propstats(response):
        if " 200 " in status:
            ok = prop
        for element in list(prop):
            if element.tag == ADDRESS_SET and where == "" and " 200 " in status:
                _fill(element, where, facts, availability)
            elif element.tag == f"{_D}resourcetype" and where in (INBOX, OUTBOX):
                for child in list(element):
                    if child.tag != f"{_D}collection":
                        element.remove(child)
                ET.SubElement(element, f"{_C}schedule-{where}")
            elif element.tag in _PROPERTIES and " 404 " in status:
                missing.append((prop, element))
    for prop, element in missing:
        if not _fill(element, where, facts, availability):
            continue
        prop.remove(element)
        if ok is None:
            propstat = ET.SubElement(response, f"{_D}propstat")
            ok = ET.SubElement(propstat, f"{_D}prop")
            ET.SubElement(propstat, f"{_D}status").text = "HTTP/1.1 200 OK"
        ok.append(element)
    for propstat, prop, _ in list(_propstats(response)):
        if len(prop) == 0:
            response.remove(propstat)


def _fill(element: ET.Element, where: str, facts: _Facts, availability: Any) -> bool:
    """Set ``element`` to its value on the principal ("") or collection ``where``."""
    for child in list(element):
        element.remove(child)
    element.text = None
    tag, provider = element.tag, facts.provider
    if where == "":
        if tag == SCHEDULE_INBOX_URL:
            element.append(facts.href(INBOX))
        elif tag == SCHEDULE_OUTBOX_URL:
            element.append(facts.href(OUTBOX))
        elif tag == ADDRESS_SET:
            mailto = ET.SubElement(element, f"{_D}href")
            mailto.text = f"mailto:{provider.email}"
            element.append(facts.href())
        elif tag == USER_TYPE:
            element.text = "ROOM" if provider.kind == "unit" else "INDIVIDUAL"
        else:
            return False
        return True
    if where == INBOX:
        if tag == DEFAULT_CALENDAR_URL:
            element.append(facts.href(DEFAULT_CALENDAR))
        elif tag == CALENDAR_AVAILABILITY:
            element.text = availability()
        else:
            return False
        return True
    calendar = facts.calendars.get(where)
    if tag == CALENDAR_TRANSP and calendar is not None and calendar.kind != "inbox":
        opaque = calendar.blocking or calendar.kind in dav.READ_ONLY_KINDS
        ET.SubElement(element, f"{_C}{'opaque' if opaque else 'transparent'}")
        return True
    return False


# --- reading a VFREEBUSY request ----------------------------------------------------------------


class FreeBusyRequest:
    def __init__(
        self, uid: str, organizer: str, attendees: list[str], start: datetime, end: datetime
    ) -> None:
        self.uid, self.organizer, self.attendees = uid, organizer, attendees
        self.start, self.end = start, end


def read_free_busy_request(data: bytes, max_days: int) -> FreeBusyRequest | types.WSGIResponse:
    """The request in a POST body, or the answer that refuses it (RFC 6638 §6.1.1)."""
    try:
        calendar = Calendar.from_ical(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError):
        return dav_error(client.BAD_REQUEST, "C:valid-calendar-data", "not an iCalendar object")
    components = [c for c in calendar.subcomponents if c.name != "VTIMEZONE"]
    method = str(calendar.get("METHOD", "")).upper()
    if method != "REQUEST" or len(components) != 1 or components[0].name != "VFREEBUSY":
        return dav_error(
            client.FORBIDDEN,
            "C:valid-scheduling-message",
            "this outbox answers one VFREEBUSY with METHOD:REQUEST (events are scheduled "
            "by saving them in a calendar)",
        )
    component = components[0]
    try:
        start = _utc(component.decoded("DTSTART"))
        end = _utc(component.decoded("DTEND"))
    except (KeyError, ValueError, TypeError, AttributeError):
        return dav_error(
            client.BAD_REQUEST, "C:valid-calendar-data", "VFREEBUSY needs DTSTART and DTEND"
        )
    if end <= start:
        return dav_error(client.BAD_REQUEST, "C:valid-calendar-data", "DTEND is before DTSTART")
    if end - start > timedelta(days=max_days):
        return dav_error(
            client.FORBIDDEN, "C:max-date-time", f"free-busy windows are limited to {max_days} days"
        )
    organizer = str(component.get("ORGANIZER", "")).strip()
    if not organizer:
        return dav_error(client.FORBIDDEN, "C:organizer-allowed", "the request has no ORGANIZER")
    found = component.get("ATTENDEE", [])
    attendees = [str(a).strip() for a in (found if isinstance(found, list) else [found])]
    attendees = [a for a in dict.fromkeys(attendees) if a]
    if not attendees:
        return dav_error(client.FORBIDDEN, "C:recipient-specified", "the request has no ATTENDEE")
    if len(attendees) > MAX_RECIPIENTS:
        return dav_error(
            client.FORBIDDEN,
            "C:recipient-permissions",
            f"at most {MAX_RECIPIENTS} attendees per free-busy request",
        )
    return FreeBusyRequest(str(component.get("UID", "")), organizer, attendees, start, end)


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError("a date-time is needed")
    moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
