"""Errors of the CalDAV bridge: bounded request work, refused calendar imports, and
calendar-availability values Parley cannot store.

A spent budget is answered 403 CALDAV:max-instances by ``caldav_bridge.app``; a service's
refusal becomes Radicale's error in ``caldav_bridge.storage.refused``; a refused import is
a FetchFailed, which the sync records on the source.
"""

from __future__ import annotations

from core.errors import ParleyError
from core.services.errors import FetchFailed, InvalidInput


class BudgetExceeded(ParleyError, ValueError):
    """Raised when a request (or one event in it) needs more recurrence work than it may do."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class UrlRefused(FetchFailed):
    """Raised when a URL resolves to an address Parley may not fetch from (SSRF guard)."""


class DeadlinePassed(FetchFailed):
    """Raised when a fetch has used up its total time."""


class UnreadableAvailability(InvalidInput):
    """Raised when a calendar-availability value (VAVAILABILITY) cannot be stored as Parley
    availability; a PROPPATCH answers it 409 with the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_availability")
