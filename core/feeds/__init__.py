"""Reading external calendar feeds (ICS URLs, OTA exports) into busy time: pure, no I/O.

parse.read_feed turns a body into events in a window; platforms tells Airbnb, Booking.com,
VRBO, MotoPress and personal calendars apart; merge diffs, deduplicates and settles conflicts.
"""

from __future__ import annotations

from core.feeds.errors import (
    EmptyFeed,
    FeedError,
    InvalidRequest,
    NotACalendar,
    TooManyEvents,
    TruncatedFeed,
)
from core.feeds.events import CalendarProps, EventKey, FeedEvent, FeedResult
from core.feeds.parse import read_feed
from core.feeds.platforms import EventKind, Platform, PlatformInfo, priority_of

__all__ = [
    "CalendarProps",
    "EmptyFeed",
    "EventKey",
    "EventKind",
    "FeedError",
    "FeedEvent",
    "FeedResult",
    "InvalidRequest",
    "NotACalendar",
    "Platform",
    "PlatformInfo",
    "TooManyEvents",
    "TruncatedFeed",
    "priority_of",
    "read_feed",
]
