"""What reading a feed yields: events in UTC with their platform facts, and the feed summary.

content_hash covers what a stored copy must follow (times, texts, status, transparency,
sequence, kind, code) and leaves out DTSTAMP, which many OTAs rewrite on every download.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from core.feeds.platforms import Platform, PlatformInfo

EventKey = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One busy-or-not interval from a feed (a single event or one occurrence of a series)."""

    uid: str
    recurrence_id: str | None  # UTC "YYYYMMDDTHHMMSSZ" or "YYYYMMDD"; None for single events
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC, exclusive
    all_day: bool
    summary: str
    description: str  # an excerpt, see DESCRIPTION_EXCERPT_CHARS
    location: str
    status: str  # upper-case STATUS or ""
    transparent: bool
    sequence: int
    last_modified: datetime | None
    dtstamp: datetime | None
    platform: PlatformInfo
    content_hash: str = field(default="", compare=False)

    @property
    def key(self) -> EventKey:
        return (self.uid, self.recurrence_id)

    @property
    def cancelled(self) -> bool:
        return self.status == "CANCELLED"

    @property
    def busy(self) -> bool:
        """False for transparent or cancelled events, which the caller drops from busy time."""
        return not self.transparent and not self.cancelled


@dataclass(frozen=True, slots=True)
class CalendarProps:
    """Calendar-level facts of a feed."""

    prodid: str | None
    x_wr_timezone: str | None
    x_wr_calname: str | None
    platform: Platform
    floating_zone: str  # the zone floating and all-day times were read in


@dataclass(frozen=True, slots=True)
class FeedResult:
    """Events touching the window, plus counts of what was left out and why."""

    events: list[FeedEvent]
    skipped: int  # bad events dropped (partial sync); reasons in skip_reasons
    skip_reasons: dict[str, int]
    warnings: dict[str, int]  # read, but with a fallback (unknown TZID, missing UID, …)
    calendar_props: CalendarProps
    vevents: int  # VEVENT components in the body
    outside_window: int  # components that could not touch the window


def content_hash(event: FeedEvent) -> str:
    """A stable digest of what makes two copies of an event the same."""
    parts = (
        event.start.isoformat(),
        event.end.isoformat(),
        "1" if event.all_day else "0",
        event.summary,
        event.description,
        event.location,
        event.status,
        "1" if event.transparent else "0",
        str(event.sequence),
        event.platform.kind.value,
        event.platform.reservation_code or "",
    )
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
