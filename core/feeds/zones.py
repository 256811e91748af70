"""The zones one feed refers to: IANA and Windows names first, the feed's own VTIMEZONE next.

A custom VTIMEZONE is only built (with icalendar) when a TZID names no known zone and an
event that survives the window filter uses it, so long feeds pay nothing for them.
"""

from __future__ import annotations

from datetime import tzinfo

import icalendar

import core.feeds.lines as lines
from core.tzids import zone_for_tzid


class ZoneBook:
    """TZID → tzinfo for one feed, with the feed's VTIMEZONE bodies kept as text."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._bodies: dict[str, tuple[int, int]] = {}
        for start, end in lines.spans(text, "VTIMEZONE"):
            line = lines.first_line(text, start, end, "TZID")
            if line is not None:
                self._bodies[line.partition(":")[2].strip()] = (start, end)
        self._custom: dict[str, tzinfo | None] = {}
        self.unresolved: set[str] = set()

    def zone(self, tzid: str) -> tzinfo | None:
        """The zone a TZID stands for, or None (the caller then reads the time as floating)."""
        known = zone_for_tzid(tzid)
        if known is not None:
            return known
        if tzid not in self._custom:
            self._custom[tzid] = self._build(tzid)
        found = self._custom[tzid]
        if found is None:
            self.unresolved.add(tzid)
        return found

    def vtimezone_text(self, tzid: str) -> str | None:
        """The whole BEGIN:VTIMEZONE … END:VTIMEZONE text for a TZID the feed defines."""
        span = self._bodies.get(tzid)
        if span is None:
            return None
        return f"BEGIN:VTIMEZONE\n{self._text[span[0] : span[1]]}\nEND:VTIMEZONE\n"

    def _build(self, tzid: str) -> tzinfo | None:
        body = self.vtimezone_text(tzid)
        if body is None:
            return None
        try:
            component = icalendar.Timezone.from_ical(body.replace("\n", "\r\n"))
            if not isinstance(component, icalendar.Timezone):
                return None
            built: tzinfo = component.to_tz()
        except Exception:  # a malformed VTIMEZONE must not sink the feed
            return None
        return built
