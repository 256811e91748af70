"""Build the iTIP objects Parley's organizer sends: one VCALENDAR per attendee.

Every object names exactly one ATTENDEE, the recipient, so the host's copy and the
guest's copy of a booking never reveal each other. Output is RFC 5545 text: CRLF line
endings, lines folded at 75 octets, TEXT values escaped. Pure: time comes in as dtstamp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from core.itip.errors import InvalidCalendarInput

PRODID: Final = "-//Parley//Parley//EN"
CRLF: Final = "\r\n"
_FOLD_OCTETS: Final = 75

EventStatus = Literal["CONFIRMED", "TENTATIVE", "CANCELLED"]
PartStat = Literal["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE"]

_STATUSES: Final = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})
_PARTSTATS: Final = frozenset({"NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE"})
# Deliberately narrower than RFC 5322: what a mailto: URI and an SMTP envelope both carry
# without quoting. Anything else is refused rather than escaped into an invitation.
_ADDRESS_RE: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class EventSnapshot:
    """The booking as the organizer currently publishes it."""

    uid: str
    sequence: int
    start_utc: datetime
    end_utc: datetime
    summary: str
    description: str
    location: str
    organizer_address: str
    organizer_name: str
    status: EventStatus = "CONFIRMED"


@dataclass(frozen=True, slots=True)
class Recipient:
    """The one attendee a message is addressed to."""

    address: str
    name: str
    partstat: PartStat = "NEEDS-ACTION"


def build_request(
    event: EventSnapshot,
    recipient: Recipient,
    *,
    dtstamp: datetime,
    reschedule_url: str | None,
    reschedule_label: str = "Request a new time",
) -> str:
    """METHOD:REQUEST (initial invitation or update) for one attendee; reschedule_label
    names the link in the DESCRIPTION (in the attendee's language)."""
    if event.status == "CANCELLED":
        raise InvalidCalendarInput("a REQUEST cannot carry STATUS:CANCELLED; use build_cancel")
    lines = _event_lines(event, recipient, dtstamp, rsvp=True, status=event.status)
    text = describe(event.description, reschedule_url, reschedule_label)
    lines.append(text_line("DESCRIPTION", text))
    return _calendar("REQUEST", [*lines, "TRANSP:OPAQUE"])


def build_cancel(
    event: EventSnapshot,
    recipient: Recipient,
    *,
    dtstamp: datetime,
    reschedule_url: str | None = None,
) -> str:
    """METHOD:CANCEL of the whole event for one attendee (STATUS:CANCELLED)."""
    lines = _event_lines(event, recipient, dtstamp, rsvp=False, status="CANCELLED")
    lines.append(text_line("DESCRIPTION", describe(event.description, reschedule_url)))
    return _calendar("CANCEL", [*lines, "TRANSP:TRANSPARENT"])


def build_declinecounter(
    event: EventSnapshot, recipient: Recipient, *, dtstamp: datetime, comment: str = ""
) -> str:
    """METHOD:DECLINECOUNTER (RFC 5546 3.2.8) to the attendee whose COUNTER was refused.

    The method allows only ORGANIZER, ATTENDEE, UID, SEQUENCE (echoing the current one),
    DTSTAMP and COMMENT; times and texts of the event must not be repeated.
    """
    _check_event(event)
    lines = [
        "BEGIN:VEVENT",
        f"UID:{_text_escape(event.uid)}",
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{utc_stamp(dtstamp)}",
        organizer_line(event),
        attendee_line(recipient, rsvp=False),
    ]
    if comment:
        lines.append(text_line("COMMENT", comment))
    return _calendar("DECLINECOUNTER", lines)


def describe(
    description: str, reschedule_url: str | None, label: str = "Request a new time"
) -> str:
    """The DESCRIPTION text: the event's own text, then the "Request a new time" link."""
    parts = [description.strip()] if description.strip() else []
    if reschedule_url:
        if _CONTROL_RE.search(reschedule_url) or " " in reschedule_url:
            raise InvalidCalendarInput("reschedule URL contains whitespace or control characters")
        parts.append(f"{label}: {reschedule_url}")
    return "\n\n".join(parts)


def utc_stamp(moment: datetime) -> str:
    """An aware datetime as an iCalendar UTC DATE-TIME (seconds precision, Z suffix)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidCalendarInput(f"naive datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def text_line(name: str, value: str) -> str:
    """A content line whose value is RFC 5545 TEXT."""
    return f"{name}:{_text_escape(value)}"


def organizer_line(event: EventSnapshot) -> str:
    _check_address(event.organizer_address, "organizer")
    return f"ORGANIZER{_cn(event.organizer_name)}:mailto:{event.organizer_address}"


def attendee_line(recipient: Recipient, *, rsvp: bool) -> str:
    _check_address(recipient.address, "recipient")
    if recipient.partstat not in _PARTSTATS:
        raise InvalidCalendarInput(f"unknown PARTSTAT {recipient.partstat!r}")
    params = (
        f";CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={recipient.partstat}"
        f";RSVP={'TRUE' if rsvp else 'FALSE'}{_cn(recipient.name)}"
    )
    return f"ATTENDEE{params}:mailto:{recipient.address}"


def fold(line: str) -> str:
    """Fold one content line into chunks of at most 75 octets, never splitting a character."""
    if line.isascii():  # one octet per character: plain slices (most lines fit as they are)
        if len(line) <= _FOLD_OCTETS:
            return line
        rest = _FOLD_OCTETS - 1
        pieces = [line[:_FOLD_OCTETS]]
        pieces += [line[i : i + rest] for i in range(_FOLD_OCTETS, len(line), rest)]
        return (CRLF + " ").join(pieces)
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    limit = _FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append("".join(chunk))
            chunk, size = [], 0
            limit = _FOLD_OCTETS - 1  # continuation lines start with one space
        chunk.append(char)
        size += width
    out.append("".join(chunk))
    return (CRLF + " ").join(out)


def _event_lines(
    event: EventSnapshot, recipient: Recipient, dtstamp: datetime, *, rsvp: bool, status: str
) -> list[str]:
    _check_event(event)
    lines = [
        "BEGIN:VEVENT",
        f"UID:{_text_escape(event.uid)}",
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{utc_stamp(dtstamp)}",
        f"DTSTART:{utc_stamp(event.start_utc)}",
        f"DTEND:{utc_stamp(event.end_utc)}",
        text_line("SUMMARY", event.summary),
        organizer_line(event),
        attendee_line(recipient, rsvp=rsvp),
        f"STATUS:{status}",
        # Lets Outlook offer "Propose new time"; its COUNTER comes back to the organizer.
        "X-MICROSOFT-DISALLOW-COUNTER:FALSE",
    ]
    if event.location:
        lines.append(text_line("LOCATION", event.location))
    return lines


def _calendar(method: str, event_lines: Iterable[str]) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        *event_lines,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + CRLF for line in lines)


def _check_event(event: EventSnapshot) -> None:
    if not event.uid or _CONTROL_RE.search(event.uid):
        raise InvalidCalendarInput("UID must be non-empty and free of control characters")
    if isinstance(event.sequence, bool) or event.sequence < 0:
        raise InvalidCalendarInput(f"SEQUENCE must be a non-negative integer, not {event.sequence}")
    if event.status not in _STATUSES:
        raise InvalidCalendarInput(f"unknown STATUS {event.status!r}")
    if utc_stamp(event.end_utc) <= utc_stamp(event.start_utc):
        raise InvalidCalendarInput("the event must end after it starts")


def _check_address(address: str, who: str) -> None:
    if not _ADDRESS_RE.match(address) or ".." in address:
        raise InvalidCalendarInput(f"{who} address {address!r} is not a plain mail address")


def _cn(name: str) -> str:
    """A quoted CN parameter. A quoted value cannot hold DQUOTE or controls (RFC 5545 3.1):
    quotes and carets use RFC 6868 caret escapes, which icalendar and ical.js both read;
    controls become spaces; backslashes become "/" because parsers disagree on them."""
    cleaned = _CONTROL_RE.sub(" ", name).replace("\\", "/").strip()
    escaped = cleaned.replace("^", "^^").replace('"', "^'")
    return f';CN="{escaped}"' if escaped else ""


def _text_escape(value: str) -> str:
    # Backslash first, so the escapes added afterwards are not doubled.
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return _CONTROL_RE.sub("", value)
