"""Read one iTIP calendar body (RFC 5545 / RFC 5546) into plain, immutable values.

A small content-line reader (unfold, split name;params:value honouring quotes, unescape
TEXT) stands in for a full iCalendar object model: inbound mail is read often and only a
handful of properties matter. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from core.itip.errors import (
    BadProperty,
    BadStructure,
    MissingProperty,
    NoEvent,
    NoMethod,
    NotCalendar,
    TooLarge,
)
from core.tzids import zone_for_tzid

MAX_CHARS = 4_000_000
MAX_X_PROPS = 64
MAX_TZID = 200

When = datetime | date

_LINE_RE = re.compile(r'([A-Za-z0-9_-]+)((?:;[^;:="]*(?:=(?:"[^"]*"|[^";:])*)?)*):(.*)', re.DOTALL)
_PARAM_RE = re.compile(r';([^;:="]*)(?:=((?:"[^"]*"|[^";:])*))?')
_TEXT_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_CARET_RE = re.compile(r"\^([n'^])")
# Control characters (other than tab) are no part of iCalendar TEXT (RFC 5545 3.3.11).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DATE_RE = re.compile(
    r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?", re.IGNORECASE | re.ASCII
)
_DURATION_RE = re.compile(
    r"([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?",
    re.IGNORECASE | re.ASCII,
)
_CARETS = {"n": "\n", "'": '"', "^": "^"}


@dataclass(frozen=True, slots=True)
class ContentLine:
    """One unfolded content line: NAME;PARAM=value:VALUE (name and param keys upper-cased)."""

    name: str
    params: dict[str, str]
    value: str

    def param(self, key: str) -> str | None:
        return self.params.get(key)


@dataclass(frozen=True, slots=True)
class Attendee:
    """An ATTENDEE line: address is lower-cased and has no mailto: prefix."""

    address: str
    cn: str | None = None
    partstat: str = "NEEDS-ACTION"
    role: str = "REQ-PARTICIPANT"
    rsvp: bool = False
    response_comment: str | None = None
    delegated_to: tuple[str, ...] = ()
    delegated_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ItipEvent:
    """One VEVENT. Datetimes are aware UTC unless floating (naive); all-day values are dates."""

    uid: str
    sequence: int = 0
    recurrence_id: When | None = None
    dtstamp: datetime | None = None
    organizer: str | None = None
    organizer_name: str | None = None
    attendees: tuple[Attendee, ...] = ()
    comment: str | None = None
    summary: str | None = None
    description: str | None = None
    location: str | None = None
    dtstart: When | None = None
    dtend: When | None = None
    floating: bool = False
    unresolved_tzids: tuple[str, ...] = ()
    status: str | None = None
    x_props: tuple[tuple[str, str], ...] = ()

    def attendee(self, address: str) -> Attendee | None:
        """The attendee with this address (case-insensitive, mailto: optional), if any."""
        wanted = _strip_mailto(address)
        return next((a for a in self.attendees if a.address == wanted), None)

    def x_prop(self, name: str) -> str | None:
        wanted = name.upper()
        return next((v for k, v in self.x_props if k == wanted), None)


@dataclass(frozen=True, slots=True)
class ItipMessage:
    """An iTIP message: its METHOD, the master VEVENT and any RECURRENCE-ID overrides."""

    method: str
    event: ItipEvent
    overrides: tuple[ItipEvent, ...] = ()
    prodid: str | None = None
    method_from_content_type: bool = False

    @property
    def uid(self) -> str:
        return self.event.uid

    @property
    def sequence(self) -> int:
        return self.event.sequence

    @property
    def recurrence_id(self) -> When | None:
        return self.event.recurrence_id

    @property
    def dtstamp(self) -> datetime | None:
        return self.event.dtstamp

    @property
    def organizer(self) -> str | None:
        return self.event.organizer

    @property
    def attendees(self) -> tuple[Attendee, ...]:
        return self.event.attendees

    @property
    def comment(self) -> str | None:
        return self.event.comment

    @property
    def summary(self) -> str | None:
        return self.event.summary

    @property
    def dtstart(self) -> When | None:
        return self.event.dtstart

    @property
    def dtend(self) -> When | None:
        return self.event.dtend

    @property
    def status(self) -> str | None:
        return self.event.status


@dataclass
class _Zone:
    location: str | None = None
    offsets: set[str] | None = None


@dataclass
class _Scan:
    calendar: list[ContentLine]
    events: list[list[ContentLine]]
    zones: dict[str, _Zone]
    components: list[str]


def read_itip(body: bytes | str, method_hint: str | None = None) -> ItipMessage:
    """Read the first VCALENDAR in body; method_hint is the Content-Type's method parameter.

    Raises a subclass of core.itip.errors.ItipError when the body is not a usable iTIP message.
    """
    text = _to_text(body)
    if len(text) > MAX_CHARS:
        raise TooLarge(len(text), MAX_CHARS)
    scan = _scan(unfold(text))
    method = _first_value(scan.calendar, "METHOD")
    from_hint = False
    if not method and method_hint and method_hint.strip():
        method, from_hint = method_hint, True
    if not method:
        raise NoMethod()
    if not scan.events:
        found = ", ".join(scan.components) or "nothing"
        raise NoEvent(f"no VEVENT in calendar (found {found})")
    zones = _resolve_zones(scan.zones)
    events = [_event(lines, zones) for lines in scan.events]
    master = next((e for e in events if e.recurrence_id is None), events[0])
    overrides = tuple(e for e in events if e is not master and e.uid == master.uid)
    return ItipMessage(
        method=method.strip().upper(),
        event=master,
        overrides=overrides,
        prodid=_first_value(scan.calendar, "PRODID"),
        method_from_content_type=from_hint,
    )


def _to_text(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Mislabelled Windows text is far more common than anything else that is not UTF-8.
        return body.decode("cp1252", errors="replace")


def unfold(text: str) -> list[str]:
    """Split text into logical lines, joining folded continuation lines (RFC 5545 §3.1)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n ", "").replace("\n\t", "").split("\n")


def parse_line(line: str) -> ContentLine | None:
    """Split one unfolded line into name, params and raw value; None when it is not one."""
    match = _LINE_RE.match(line)
    if match is None:
        return None
    name, raw_params, value = match.groups()
    params: dict[str, str] = {}
    if raw_params:
        for key, raw in _PARAM_RE.findall(raw_params):
            params[key.strip().upper()] = _param_value(raw)
    return ContentLine(name.upper(), params, value)


def _param_value(raw: str) -> str:
    if '"' in raw:
        raw = raw.replace('"', "")
    if "^" in raw:
        # RFC 6868 caret escapes inside parameter values.
        raw = _CARET_RE.sub(lambda m: _CARETS[m.group(1)], raw)
    return raw


def unescape_text(value: str) -> str:
    """Undo TEXT escaping: \\n, \\N, \\, \\; and \\\\ (unknown escapes keep their character)."""
    if "\\" not in value:
        return value
    return _TEXT_ESCAPE_RE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _scan(lines: list[str]) -> _Scan:
    scan = _Scan(calendar=[], events=[], zones={}, components=[])
    stack: list[str] = []
    event: list[ContentLine] = []
    zone = _Zone()
    for raw in lines:
        head = raw[:6].upper()
        if head.startswith("BEGIN:"):
            name = raw[6:].strip().upper()
            if not stack and name != "VCALENDAR":
                continue
            stack.append(name)
            if len(stack) == 2:
                scan.components.append(name)
                event, zone = [], _Zone()
            continue
        if head.startswith("END:"):
            if not stack:
                continue
            name = raw[4:].strip().upper()
            if name != stack[-1]:
                raise BadStructure(f"END:{name} closes BEGIN:{stack[-1]}")
            stack.pop()
            if len(stack) == 1:
                _close_component(scan, name, event, zone)
            if not stack:
                return scan
            continue
        if stack:
            _take_line(scan, stack, raw, event, zone)
    if stack:
        raise BadStructure(f"BEGIN:{stack[-1]} is never closed")
    raise NotCalendar("no BEGIN:VCALENDAR")


def _take_line(
    scan: _Scan, stack: list[str], raw: str, event: list[ContentLine], zone: _Zone
) -> None:
    depth = len(stack)
    if depth == 1:
        line = parse_line(raw)
        if line is not None:
            scan.calendar.append(line)
    elif depth == 2 and stack[1] == "VEVENT":
        line = parse_line(raw)
        if line is not None:
            event.append(line)
    elif stack[1] == "VTIMEZONE":
        upper = raw[:14].upper()
        if depth == 2 and (upper.startswith("TZID") or upper.startswith("X-LIC-LOCATION")):
            line = parse_line(raw)
            if line is not None and line.name == "TZID":
                scan.zones.setdefault(line.value.strip(), zone)
            elif line is not None:
                zone.location = line.value.strip()
        elif depth == 3 and upper.startswith("TZOFFSETTO"):
            line = parse_line(raw)
            if line is not None:
                zone.offsets = (zone.offsets or set()) | {line.value.strip()}


def _close_component(scan: _Scan, name: str, event: list[ContentLine], zone: _Zone) -> None:
    if name == "VEVENT":
        scan.events.append(event)


def _resolve_zones(zones: dict[str, _Zone]) -> dict[str, tzinfo]:
    """Map each VTIMEZONE TZID that core.tzids does not know to a zone, when we can."""
    resolved: dict[str, tzinfo] = {}
    for tzid, zone in zones.items():
        if _known_zone(tzid) is not None:
            continue
        found: tzinfo | None = _known_zone(zone.location) if zone.location else None
        if found is None and zone.offsets and len(zone.offsets) == 1:
            # A custom zone with a single offset is exactly a fixed offset.
            found = _fixed_offset(next(iter(zone.offsets)))
        if found is not None:
            resolved[tzid] = found
    return resolved


def _known_zone(tzid: str) -> tzinfo | None:
    """core.tzids' answer, guarded: a zone name is attacker-controlled text from the mail."""
    if len(tzid) > MAX_TZID:
        return None
    try:
        return zone_for_tzid(tzid)
    except OSError:
        # zoneinfo turns some odd names into file-system errors (e.g. ENAMETOOLONG).
        return None


def _fixed_offset(value: str) -> tzinfo | None:
    match = re.fullmatch(r"([+-])(\d{2})(\d{2})(\d{2})?", value, re.ASCII)
    if match is None:
        return None
    sign = -1 if match.group(1) == "-" else 1
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    if minutes >= 24 * 60:
        return None
    return timezone(sign * timedelta(minutes=minutes, seconds=int(match.group(4) or 0)))


def _first_value(lines: list[ContentLine], name: str) -> str | None:
    for line in lines:
        if line.name == name:
            return unescape_text(line.value).strip() or None
    return None


@dataclass
class _Reading:
    floating: bool = False
    unresolved: tuple[str, ...] = ()


def _event(lines: list[ContentLine], zones: dict[str, tzinfo]) -> ItipEvent:
    first: dict[str, ContentLine] = {}
    attendees: list[Attendee] = []
    comments: list[str] = []
    x_props: list[tuple[str, str]] = []
    for line in lines:
        if line.name == "ATTENDEE":
            attendees.append(_attendee(line))
        elif line.name == "COMMENT":
            comments.append(unescape_text(line.value))
        elif line.name.startswith("X-") and len(x_props) < MAX_X_PROPS:
            x_props.append((line.name, unescape_text(line.value)))
        else:
            first.setdefault(line.name, line)
    uid = first.get("UID")
    if uid is None or not uid.value.strip():
        raise MissingProperty("UID")
    if _CONTROL.search(uid.value):
        raise BadProperty("UID", uid.value, "control characters")
    reading = _Reading()
    dtstart = _when(first.get("DTSTART"), zones, reading)
    organizer = first.get("ORGANIZER")
    return ItipEvent(
        uid=uid.value.strip(),
        sequence=_sequence(first.get("SEQUENCE")),
        recurrence_id=_when(first.get("RECURRENCE-ID"), zones, reading),
        dtstamp=_stamp(first.get("DTSTAMP"), zones),
        organizer=_address(organizer) if organizer else None,
        organizer_name=_cn(organizer) if organizer else None,
        attendees=tuple(attendees),
        comment="\n".join(comments) if comments else None,
        summary=_text(first.get("SUMMARY")),
        description=_text(first.get("DESCRIPTION")),
        location=_text(first.get("LOCATION")),
        dtstart=dtstart,
        dtend=_end(dtstart, first, zones, reading),
        floating=reading.floating,
        unresolved_tzids=reading.unresolved,
        status=_upper(first.get("STATUS")),
        x_props=tuple(x_props),
    )


def _text(line: ContentLine | None) -> str | None:
    return unescape_text(line.value) if line is not None else None


def _upper(line: ContentLine | None) -> str | None:
    return line.value.strip().upper() or None if line is not None else None


def _sequence(line: ContentLine | None) -> int:
    if line is None:
        return 0
    value = line.value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise BadProperty("SEQUENCE", line.value, "not a non-negative integer")
    return int(value)


def _strip_mailto(value: str) -> str:
    value = value.strip()
    if value[:7].lower() == "mailto:":
        value = value[7:]
    return value.strip().lower()


def _address(line: ContentLine) -> str:
    address = _strip_mailto(line.value)
    email = line.params.get("EMAIL")
    if "@" not in address and email:
        # e.g. ATTENDEE;EMAIL=a@b.example:urn:uuid:…
        address = _strip_mailto(email)
    if _CONTROL.search(address):
        raise BadProperty(line.name, line.value, "control characters in the address")
    return address


def _cn(line: ContentLine) -> str | None:
    cn = line.params.get("CN")
    return cn.strip() or None if cn is not None else None


def _attendee(line: ContentLine) -> Attendee:
    params = line.params
    comment = params.get("X-RESPONSE-COMMENT")
    return Attendee(
        address=_address(line),
        cn=_cn(line),
        partstat=(params.get("PARTSTAT") or "NEEDS-ACTION").strip().upper(),
        role=(params.get("ROLE") or "REQ-PARTICIPANT").strip().upper(),
        rsvp=(params.get("RSVP") or "").strip().upper() == "TRUE",
        response_comment=unescape_text(comment) if comment else None,
        delegated_to=_addresses(params.get("DELEGATED-TO")),
        delegated_from=_addresses(params.get("DELEGATED-FROM")),
    )


def _addresses(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(_strip_mailto(v) for v in value.split(",") if v.strip())


def _when(line: ContentLine | None, zones: dict[str, tzinfo], reading: _Reading) -> When | None:
    """A DATE or DATE-TIME value: aware UTC, naive when floating or its zone is unknown."""
    if line is None:
        return None
    match = _DATE_RE.fullmatch(line.value.strip())
    if match is None:
        raise BadProperty(line.name, line.value, "not a DATE or DATE-TIME")
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        if hour is None:
            return date(int(year), int(month), int(day))
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59)
        )
    except ValueError as exc:
        raise BadProperty(line.name, line.value, str(exc)) from None
    if utc:
        return local.replace(tzinfo=UTC)
    return _localise(line, local, zones, reading)


def _localise(
    line: ContentLine, local: datetime, zones: dict[str, tzinfo], reading: _Reading
) -> datetime:
    tzid = (line.params.get("TZID") or "").strip()
    if not tzid:
        reading.floating = True
        return local
    zone = _known_zone(tzid) or zones.get(tzid)
    if zone is None:
        if tzid not in reading.unresolved:
            reading.unresolved = (*reading.unresolved, tzid)
        return local
    try:
        return local.replace(tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise BadProperty(line.name, line.value, str(exc)) from None


def _stamp(line: ContentLine | None, zones: dict[str, tzinfo]) -> datetime | None:
    """DTSTAMP as aware UTC; a floating or all-day stamp is read as UTC, as senders mean."""
    value = _when(line, zones, _Reading())
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _end(
    start: When | None, first: dict[str, ContentLine], zones: dict[str, tzinfo], reading: _Reading
) -> When | None:
    end = _when(first.get("DTEND"), zones, reading)
    if end is not None or start is None:
        return end
    duration = first.get("DURATION")
    if duration is not None:
        try:
            return start + parse_duration(duration.value)
        except OverflowError:
            raise BadProperty("DURATION", duration.value, "out of range") from None
    # RFC 5545 §3.6.1: no DTEND and no DURATION means one day, or zero length.
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def parse_duration(value: str) -> timedelta:
    """An RFC 5545 DURATION such as PT1H30M, P1D or -P2W."""
    match = _DURATION_RE.fullmatch(value.strip())
    if match is None or not any(match.groups()[1:]):
        raise BadProperty("DURATION", value, "not a duration")
    sign, weeks, days, hours, minutes, seconds = match.groups()
    if len(value) > 40:
        raise BadProperty("DURATION", value, "out of range")
    delta = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -delta if sign == "-" else delta
