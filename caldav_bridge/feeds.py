"""iCalendar text for what Parley generates: one booking or hold as a CalDAV object, and the
per-provider ICS feed in its standard and booking-platform (Airbnb, Booking.com) forms.

The provider's copy names the guest only: no guest address ever appears (PRD privacy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.db.models import Booking, Hold
from core.itip.build import fold, text_line, utc_stamp

PRODID = "-//Parley//CalDAV bridge//EN"
CRLF = "\r\n"
FEED_FORMATS = ("standard", "airbnb", "booking.com", "vrbo", "generic")
# How often a subscriber should poll (RFC 7986 REFRESH-INTERVAL, and Outlook's property).
REFRESH = "PT15M"


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One busy span in a feed: a booking, a hold or another platform's reservation."""

    uid: str
    start: datetime
    end: datetime
    summary: str
    status: str  # CONFIRMED or TENTATIVE
    sequence: int = 0
    stamp: datetime | None = None
    unit: str | None = None  # the unit's name, in a feed of several units
    zone: str | None = None  # the unit's zone there, when it is not the feed's
    location: str | None = None  # the meeting type's place or video link
    description: str | None = None


def booking_summary(booking: Booking) -> str:
    guest = (booking.guest_name or "").strip()
    return f"{booking.title} with {guest}" if guest else booking.title


def booking_event(booking: Booking) -> FeedEvent:
    status = "CONFIRMED" if booking.status == "confirmed" else "TENTATIVE"
    return FeedEvent(
        uid=booking.uid,
        start=booking.start_at,
        end=booking.end_at,
        summary=booking_summary(booking),
        status=status,
        sequence=booking.sequence,
        stamp=booking.updated_at,
        location=booking.location,
        description=booking.description,
    )


def hold_event(hold: Hold) -> FeedEvent:
    guest = (hold.guest_name or "").strip()
    return FeedEvent(
        uid=f"{hold.id}@parley-hold",
        start=hold.start_at,
        end=hold.end_at,
        summary=f"On hold for {guest}" if guest else "On hold",
        status="TENTATIVE",
        stamp=hold.created_at,
    )


def _vevent(event: FeedEvent) -> list[str]:
    stamp = event.stamp or event.start
    return [
        "BEGIN:VEVENT",
        text_line("UID", event.uid),
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{utc_stamp(stamp)}",
        f"LAST-MODIFIED:{utc_stamp(stamp)}",
        f"DTSTART:{utc_stamp(event.start)}",
        f"DTEND:{utc_stamp(event.end)}",
        text_line("SUMMARY", event.summary),
        *([text_line("LOCATION", event.location)] if event.location else []),
        *([text_line("DESCRIPTION", event.description)] if event.description else []),
        f"STATUS:{event.status}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
    ]


def _calendar(lines: Iterable[str], name: str | None = None, zone: str | None = None) -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    if name:
        head += ["METHOD:PUBLISH", text_line("X-WR-CALNAME", name)]
        if zone:
            head.append(text_line("X-WR-TIMEZONE", zone))
        head += [f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}", f"X-PUBLISHED-TTL:{REFRESH}"]
    return "".join(fold(line) + CRLF for line in [*head, *lines, "END:VCALENDAR"])


def event_object(event: FeedEvent) -> str:
    """A single-event VCALENDAR, as a CalDAV object."""
    return _calendar(_vevent(event))


def render_feed(events: Sequence[FeedEvent], name: str, zone: str | None = None) -> str:
    """The standard feed: every event with its own UID, SEQUENCE and STATUS."""
    lines: list[str] = []
    for event in sorted(events, key=lambda e: (e.start, e.uid)):
        lines.extend(_vevent(event))
    return _calendar(lines, name, zone)


def render_platform_feed(
    events: Sequence[FeedEvent], name: str, platform: str, zone: ZoneInfo
) -> str:
    """The form booking platforms and channel managers import: whole days in the unit's
    zone (check-in to check-out), SUMMARY "Reserved" for bookings and "Not available" for
    everything else (Airbnb and VRBO take nothing else), STATUS for Booking.com and the
    generic form. In a feed of several units each event names its unit in LOCATION (and,
    in the generic form, in SUMMARY too)."""
    lines: list[str] = []
    for event in sorted(events, key=lambda e: (e.start, e.uid)):
        first, last = _days(event, ZoneInfo(event.zone) if event.zone else zone)
        # A stable DTSTAMP keeps the body, and so the ETag, unchanged between polls.
        stamp = utc_stamp(event.stamp or event.start)
        summary = "Reserved" if event.status == "CONFIRMED" else "Not available"
        if event.unit and platform == "generic":
            summary = f"{event.unit}: {summary}"
        lines += [
            "BEGIN:VEVENT",
            text_line("UID", event.uid),
            f"DTSTAMP:{stamp}",
            f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
            f"DTEND;VALUE=DATE:{last:%Y%m%d}",
            text_line("SUMMARY", summary),
        ]
        if event.unit:
            lines.append(text_line("LOCATION", event.unit))
        if platform in ("booking.com", "generic"):
            lines.append(f"STATUS:{event.status if event.status == 'CONFIRMED' else 'TENTATIVE'}")
        lines += ["TRANSP:OPAQUE", "END:VEVENT"]
    return _calendar(lines, name, zone.key)


def _days(event: FeedEvent, zone: ZoneInfo) -> tuple[date, date]:
    # A stay ends on its check-out day, which stays free for the next arrival; a span
    # within one day still blocks that day.
    first = event.start.astimezone(zone).date()
    last = event.end.astimezone(zone).date()
    return first, max(last, first + timedelta(days=1))


def http_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
