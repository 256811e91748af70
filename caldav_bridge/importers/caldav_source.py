"""Fetching the events of a remote CalDAV calendar in the sync window with the caldav client.

The server answers a time-range REPORT; the objects are joined into one VCALENDAR body
(sorted by URL, so the same calendar gives the same bytes and the sync's unchanged-hash
shortcut applies), which the sync reads exactly like an ICS feed.
"""

from __future__ import annotations

from typing import Any

from caldav.davclient import DAVClient

from caldav_bridge.importers.http_ics import UrlRefused, refusal_reason
from core.services.sync import Fetched, FetchFailed, FetchRequest

# Calendar-level properties; folded continuation lines are dropped with them.
_CALENDAR_PROPS = ("VERSION:", "PRODID:", "CALSCALE:", "METHOD:", "VERSION;", "PRODID;")


class CalDavFetcher:
    """One DAV client per fetch (the client keeps per-server state we do not want to share)."""

    def __init__(self, *, timeout: float, max_bytes: int, allow_private: bool) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_private = allow_private

    def __call__(self, request: FetchRequest) -> Fetched:
        reason = refusal_reason(request.url, allow_private=self.allow_private)
        if reason is not None:
            raise UrlRefused(reason)
        try:
            texts = self._query(request)
        except Exception as exc:  # the client raises many types (DAVError, niquests, lxml)
            raise FetchFailed(f"CalDAV query failed: {type(exc).__name__}: {exc}") from None
        body = join_calendars([text for _, text in texts])
        if len(body) > self.max_bytes:
            raise FetchFailed(f"calendar is larger than the limit of {self.max_bytes} bytes")
        return Fetched(200, body)

    def _query(self, request: FetchRequest) -> list[tuple[str, str]]:
        client: Any = DAVClient(
            url=request.url,
            username=request.username,
            password=request.password,
            timeout=max(1, int(self.timeout)),
            enable_rfc6764=False,
            require_tls=False,
        )
        try:
            calendar = client.calendar(url=request.url)
            found = calendar.search(
                start=request.window_start, end=request.window_end, event=True, expand=False
            )
            return sorted((str(o.url), _data_of(o)) for o in found)
        finally:
            client.close()


def _data_of(resource: Any) -> str:
    data = resource.data
    return data.decode() if isinstance(data, bytes) else str(data or "")


def join_calendars(objects: list[str]) -> bytes:
    """One VCALENDAR holding the components (events, time zones) of every object."""
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Parley//CalDAV import//EN"]
    for text in objects:
        lines = text.replace("\r\n", "\n").split("\n")
        dropping = False
        for line in lines:
            if line[:1] in (" ", "\t"):
                if not dropping:
                    out.append(line)
                continue
            upper = line.upper()
            dropping = not line or upper.startswith(_CALENDAR_PROPS)
            dropping = dropping or upper in ("BEGIN:VCALENDAR", "END:VCALENDAR")
            if not dropping:
                out.append(line)
    out.append("END:VCALENDAR")
    return ("\r\n".join(out) + "\r\n").encode()
