"""Errors of the CalDAV bridge: bounded request work, and refused calendar imports.

A spent budget is answered 403 CALDAV:max-instances by ``caldav_bridge.app``; a service's
refusal becomes Radicale's error in ``caldav_bridge.storage.refused``; a refused import is
a FetchFailed, which the sync records on the source.
"""

from __future__ import annotations

from core.errors import ParleyError
from core.services.errors import FetchFailed


class BudgetExceeded(ParleyError, ValueError):
    """Raised when a request (or one event in it) needs more recurrence work than it may do."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class UrlRefused(FetchFailed):
    """Raised when a URL resolves to an address Parley may not fetch from (SSRF guard)."""


class DeadlinePassed(FetchFailed):
    """Raised when a fetch has used up its total time."""
