"""Errors raised while reading an external calendar feed.

Each one means the whole body is unusable; the caller keeps the busy time it already
knows and records the error. Single bad events are skipped and counted instead.
"""

from __future__ import annotations

from core.errors import ParleyError


class FeedError(ParleyError):
    """Base class: the feed body as a whole cannot be used."""


class EmptyFeed(FeedError):
    """Raised when the body is empty or only whitespace."""


class NotACalendar(FeedError):
    """Raised when the body is not iCalendar at all (an HTML login page, JSON, an image)."""

    def __init__(self, sniffed: str) -> None:
        super().__init__(f"feed body is not an iCalendar object (looks like {sniffed})")
        self.sniffed = sniffed


class TruncatedFeed(FeedError):
    """Raised when the body starts a VCALENDAR but never ends it (cut-off download)."""


class TooManyEvents(FeedError):
    """Raised when the feed holds, or expands to, more events than the caller allows."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"feed has at least {count} events, more than the limit of {limit}")
        self.count = count
        self.limit = limit


class InvalidRequest(FeedError):
    """Raised when the window is empty or naive, or default_zone names no known zone."""
