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

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.driver import as_utc, dialect_time, driver_batch, driver_rows
from core.db.models import DavCalendar, Provider
from core.domain.intervals import subtract
from core.services.busy import busy_rows, related_units

BUSY = "BUSY"
TENTATIVE = "BUSY-TENTATIVE"
SUCCESS = "2.0;Success"
INVALID_USER = "3.7;Invalid calendar user"

# (start, end, FBTYPE), the times as iCalendar UTC stamps ("20300306T100000Z"): sorting
# the stamps sorts the spans by time.
Period = tuple[str, str, str]


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


def tentative(kind: str, label: str) -> bool:
    """Whether an engine row is BUSY-TENTATIVE: a live hold or a requested booking."""
    return kind == "hold" or (kind == "booking" and label == "requested")


def merged_periods(
    firm: list[tuple[str, str]], maybe: list[tuple[str, str]], low: str, high: str
) -> list[Period]:
    """Busy and tentative spans meeting [low, high) as merged periods clipped to it, by start.

    Times are UTC texts "YYYY-MM-DD HH:MM:SS[.ffffff]" (``utc_text``, SQLite's stored form),
    whose order is the time order, so they are merged without being parsed.
    """
    busy = _clipped(_merge(firm), low, high)
    spans = [(a, b, BUSY) for a, b in busy]
    if maybe:
        # subtract works on any ordered values; its TypeVar names the domain's.
        tentative_only = subtract(_clipped(_merge(maybe), low, high), busy)  # type: ignore[type-var]
        spans += [(a, b, TENTATIVE) for a, b in tentative_only]
        spans.sort()
    # "2030-03-06 10:00:00.000000" → "20300306T100000Z" (str.replace runs in C: the fastest
    # of the ways tried, for thousands of spans).
    return [
        (
            a[:19].replace("-", "").replace(":", "").replace(" ", "T") + "Z",
            b[:19].replace("-", "").replace(":", "").replace(" ", "T") + "Z",
            kind,
        )
        for a, b, kind in spans
    ]


def utc_text(dialect: str, moment: datetime) -> str:
    """``moment`` as the UTC text the free-busy statements return on ``dialect``."""
    if dialect == "sqlite":
        return str(dialect_time(dialect, moment))
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    text = utc.strftime("%Y-%m-%d %H:%M:%S")
    return text + f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else text


def _clipped(merged: list[tuple[str, str]], low: str, high: str) -> list[tuple[str, str]]:
    """Merged spans that each meet [low, high), cut to it: only the first can start before
    it, only the last end after it (they are disjoint and sorted)."""
    if merged and merged[0][0] < low:
        merged[0] = (low, merged[0][1])
    if merged and merged[-1][1] > high:
        merged[-1] = (merged[-1][0], high)
    return merged


def _merge(spans: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Overlapping or touching spans joined, sorted (one sort, then a linear pass)."""
    if not spans:
        return []
    spans.sort()
    out: list[tuple[Any, Any]] = []
    first, last = spans[0]
    for start, end in spans:
        if start <= last:
            if end > last:
                last = end
        else:
            out.append((first, last))
            first, last = start, end
    out.append((first, last))
    return out


# The busy engine's statement (busy._BUSY) for one provider without related units, cut to
# what free-busy needs and split in two: firm and tentative spans. No labels (so no join
# to the sources' names) and no ORDER BY (SQLite's sort of the union cost more than all
# the rest; each branch comes in index order, and Python's sort merges such runs in one
# pass). Times come as UTC text ({times}): SQLite stores them so, and PostgreSQL's text
# costs less to send and compare than datetimes do to build.
# tests/integration/services/test_freebusy_engine.py checks that they agree.
_FIRM = """
    SELECT {e_times} FROM external_events e
     WHERE e.provider_id = :provider AND e.start_at < :high AND e.end_at > :low
       AND e.merged_into_id IS NULL
    UNION ALL
    SELECT {b_times} FROM dav_busy b JOIN dav_calendars c ON c.id = b.calendar_id
     WHERE b.provider_id = :provider AND b.start_at < :high AND b.end_at > :low AND c.blocking
    UNION ALL
    SELECT {times} FROM bookings
     WHERE provider_id = :provider AND start_at < :high AND end_at > :low
       AND status = 'confirmed'
"""
_TENTATIVE = """
    SELECT {times} FROM bookings
     WHERE provider_id = :provider AND start_at < :high AND end_at > :low
       AND status = 'requested'
    UNION ALL
    SELECT {times} FROM holds
     WHERE provider_id = :provider AND start_at < :high AND end_at > :low
       AND status = 'active' AND expires_at > :now
"""
# PostgreSQL's ISO output (DateStyle ISO, the default) of a timestamp without zone.
_ISO_TEXT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?")


def _bounds(dialect: str, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    return {
        "low": dialect_time(dialect, start),
        "high": dialect_time(dialect, end),
        "now": dialect_time(dialect, now),
    }


@lru_cache(maxsize=8)
def _statement(template: str, dialect: str) -> str:
    """``template`` with its times as UTC text on PostgreSQL, as stored on SQLite (and as
    they are for dialect "plain")."""

    def times(prefix: str) -> str:
        if dialect != "postgresql":
            return f"{prefix}start_at, {prefix}end_at"
        return (
            f"({prefix}start_at AT TIME ZONE 'UTC')::text, "
            f"({prefix}end_at AT TIME ZONE 'UTC')::text"
        )

    return template.format(e_times=times("e."), b_times=times("b."), times=times(""))


def provider_periods(
    session: Session, provider_ids: Sequence[str], start: datetime, end: datetime, now: datetime
) -> list[Period]:
    """Everything that makes the providers busy in [start, end), as the slots API sees it:
    busy.busy_rows for a unit with related units, its cut-down statements otherwise."""
    dialect = session.get_bind().dialect.name
    low, high = utc_text(dialect, start), utc_text(dialect, end)
    bounds = _bounds(dialect, start, end, now)
    firm: list[tuple[str, str]] = []
    maybe: list[tuple[str, str]] = []
    for provider_id in provider_ids:
        related = related_units(session, provider_id)
        if not related.ids:
            params = {"provider": provider_id, **bounds}
            statements = [(_statement(_FIRM, dialect), params)]
            statements.append((_statement(_TENTATIVE, dialect), params))
            own_firm, own_maybe = driver_batch(session, statements)
            sample = (own_firm or own_maybe or [("2000-01-01 00:00:00",)])[0][0]
            if _ISO_TEXT.fullmatch(sample):
                firm += own_firm
                maybe += own_maybe
                continue
        # Related units (or a server that writes times otherwise): the engine's own rows.
        for s, e, k, _, lb in busy_rows(session, provider_id, start, end, now, related=related):
            span = (utc_text(dialect, s), utc_text(dialect, e))
            (maybe if tentative(k, lb) else firm).append(span)
    return merged_periods(firm, maybe, low, high)


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
        periods = provider_periods(session, [p.id for p in found], start, end, now)
        answers.append(Answer(address, SUCCESS, tuple(periods)))
    return answers


# --- one calendar (free-busy-query REPORT) ----------------------------------------------------

TABLE_CALENDARS = frozenset({"bookings", "holds"})
_CALENDAR_SQL = {
    "bookings": """
        SELECT {times}, status = 'requested' FROM bookings
         WHERE provider_id = :provider AND start_at < :high AND end_at > :low
           AND status IN ('requested', 'confirmed')""",
    "holds": """
        SELECT {times}, 1 = 1 FROM holds
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
    params = {"provider": calendar.provider_id, **_bounds(dialect, start, end, now)}
    template = _CALENDAR_SQL[calendar.kind]
    rows = driver_rows(session, _statement(template, dialect), params)
    if rows and not _ISO_TEXT.fullmatch(rows[0][0]):  # a server that writes times otherwise
        rows = driver_rows(session, _statement(template, "plain"), params)
        rows = [(utc_text(dialect, as_utc(s)), utc_text(dialect, as_utc(e)), t) for s, e, t in rows]
    firm = [(s, e) for s, e, is_tentative in rows if not is_tentative]
    maybe = [(s, e) for s, e, is_tentative in rows if is_tentative]
    return merged_periods(firm, maybe, utc_text(dialect, start), utc_text(dialect, end))


# --- iCalendar --------------------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    """An aware (or naive UTC) datetime as an iCalendar UTC stamp, seconds cut."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return utc.strftime("%Y%m%dT%H%M%SZ")


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
        lines.append(f"{prefix}{first}/{last}")
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
