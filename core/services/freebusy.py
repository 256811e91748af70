"""Free-busy from the busy engine: what a calendar app may see of a provider's time.

A free-busy answer (a VFREEBUSY REQUEST POSTed to a schedule outbox, RFC 6638 §6.1, or
the free-busy-query REPORT on one calendar, RFC 4791 §7.10) is read from the rows the
slots API reads (``busy.busy_rows``: bookings, holds, imported calendars, blocking DAV
calendars, related units) and reduced to merged spans with an FBTYPE and nothing else:
no summaries, no attendees, no source names. Requested bookings and holds are
BUSY-TENTATIVE, everything else BUSY; where both meet, BUSY wins.

Lookups of other calendar users stay inside the asker's tenant: an address that names
no provider of that tenant is answered 3.7 (invalid calendar user), whether or not
another tenant has it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.driver import as_utc, dialect_time, driver_rows
from core.db.models import DavCalendar, Provider
from core.domain.intervals import normalize, subtract
from core.domain.slots import BusyRow
from core.services.busy import busy_rows

BUSY = "BUSY"
TENTATIVE = "BUSY-TENTATIVE"
SUCCESS = "2.0;Success"
INVALID_USER = "3.7;Invalid calendar user"

Period = tuple[datetime, datetime, str]


@dataclass(frozen=True, slots=True)
class Answer:
    """One recipient's part of a free-busy reply: its status and, on success, its spans."""

    address: str
    status: str
    periods: tuple[Period, ...] = ()

    @property
    def found(self) -> bool:
        return self.status == SUCCESS


def address_of(value: str) -> str:
    """The bare, lower-cased address of a calendar user address (``mailto:`` or not)."""
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.strip().lower()


def periods_from_rows(rows: Iterable[BusyRow], start: datetime, end: datetime) -> list[Period]:
    """Engine rows as merged (start, end, FBTYPE) spans clipped to [start, end), by start."""
    firm: list[tuple[datetime, datetime]] = []
    tentative: list[tuple[datetime, datetime]] = []
    for first, last, kind, _ref, label in rows:
        first, last = max(first, start), min(last, end)
        if last <= first:
            continue
        if kind == "hold" or (kind == "booking" and label == "requested"):
            tentative.append((first, last))
        else:
            firm.append((first, last))
    merged = normalize(firm)
    if not tentative:
        return [(a, b, BUSY) for a, b in merged]
    spans = [(a, b, BUSY) for a, b in merged]
    spans += [(a, b, TENTATIVE) for a, b in subtract(normalize(tentative), merged)]
    spans.sort()
    return spans


def provider_periods(
    session: Session, provider_id: str, start: datetime, end: datetime, now: datetime
) -> list[Period]:
    """Everything that makes ``provider_id`` busy in [start, end), as the slots API sees it."""
    return periods_from_rows(busy_rows(session, provider_id, start, end, now), start, end)


def providers_for(session: Session, tenant_id: str, address: str) -> list[Provider]:
    """The providers of ``tenant_id`` whose address is ``address`` (any case)."""
    email = address_of(address)
    if not email:
        return []
    query = select(Provider).where(
        Provider.tenant_id == tenant_id, func.lower(Provider.email) == email
    )
    return list(session.scalars(query.order_by(Provider.id)))


def answer(
    session: Session,
    tenant_id: str,
    addresses: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[Answer]:
    """Free-busy of each address for a lookup made inside ``tenant_id``, in the order asked.

    An address shared by several providers of the tenant answers their busy time together.
    """
    answers = []
    for address in addresses:
        found = providers_for(session, tenant_id, address)
        if not found:
            answers.append(Answer(address, INVALID_USER))
            continue
        rows: list[BusyRow] = []
        for provider in found:
            rows += busy_rows(session, provider.id, start, end, now)
        answers.append(Answer(address, SUCCESS, tuple(periods_from_rows(rows, start, end))))
    return answers


# --- one calendar (free-busy-query REPORT) ----------------------------------------------------

TABLE_CALENDARS = frozenset({"bookings", "holds"})
_CALENDAR_SQL = {
    "bookings": """
        SELECT start_at, end_at, 'booking', id, status FROM bookings
         WHERE provider_id = :provider AND start_at < :high AND end_at > :low
           AND status IN ('requested', 'confirmed')""",
    "holds": """
        SELECT start_at, end_at, 'hold', id, '' FROM holds
         WHERE provider_id = :provider AND start_at < :high AND end_at > :low
           AND status = 'active' AND expires_at > :now""",
}


def calendar_periods(
    session: Session, calendar: DavCalendar, start: datetime, end: datetime, now: datetime
) -> list[Period]:
    """The busy spans of a generated calendar (bookings, holds: ``TABLE_CALENDARS``) in
    [start, end), read from its table with the busy engine's conditions."""
    if calendar.kind not in TABLE_CALENDARS:
        raise ValueError(f"{calendar.kind} calendars keep stored objects")
    dialect = session.get_bind().dialect.name
    params = {
        "provider": calendar.provider_id,
        "low": dialect_time(dialect, start),
        "high": dialect_time(dialect, end),
        "now": dialect_time(dialect, now),
    }
    rows = driver_rows(session, _CALENDAR_SQL[calendar.kind], params)
    if rows and isinstance(rows[0][0], str):
        rows = [(as_utc(s), as_utc(e), k, r, lb) for s, e, k, r, lb in rows]
    return periods_from_rows([(s, e, k, r, lb or "") for s, e, k, r, lb in rows], start, end)


# --- iCalendar --------------------------------------------------------------------------------

_STAMP = "%Y%m%dT%H%M%SZ"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def vfreebusy(
    periods: Iterable[Period],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    method: str | None = None,
    uid: str | None = None,
    organizer: str | None = None,
    attendee: str | None = None,
) -> str:
    """A VCALENDAR holding one VFREEBUSY of ``periods`` (one FREEBUSY line per span, as
    RFC 5545 §3.8.2.6 allows), CRLF-terminated; the reply parts only when given."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Parley//Free-busy//EN"]
    if method:
        lines.append(f"METHOD:{method}")
    lines += ["BEGIN:VFREEBUSY", f"DTSTAMP:{stamp(now)}"]
    if uid:
        lines.append(_line("UID", uid))
    lines += [f"DTSTART:{stamp(start)}", f"DTEND:{stamp(end)}"]
    if organizer:
        lines.append(_line("ORGANIZER", organizer))
    if attendee:
        lines.append(_line("ATTENDEE", attendee))
    for first, last, fbtype in periods:
        prefix = "FREEBUSY:" if fbtype == BUSY else f"FREEBUSY;FBTYPE={fbtype}:"
        lines.append(f"{prefix}{first.strftime(_STAMP)}/{last.strftime(_STAMP)}")
    lines += ["END:VFREEBUSY", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def _line(name: str, value: str) -> str:
    """``NAME:value`` folded at 75 octets (RFC 5545 §3.1); control characters are dropped,
    so a hostile UID or address cannot add lines."""
    text = name + ":" + "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    data = text.encode()
    if len(data) <= 75:
        return text
    parts: list[str] = []
    line = b""
    for ch in text:
        encoded = ch.encode()
        if len(line) + len(encoded) > (75 if not parts else 74):
            parts.append(line.decode())
            line = b""
        line += encoded
    parts.append(line.decode())
    return "\r\n ".join(parts)
