"""Errors raised while reading iTIP calendar bodies, and while building them.

Every error names what was wrong so the mail agent can file the message with a reason.
"""

from __future__ import annotations

from core.errors import ParleyError


class ItipError(ParleyError):
    """Base class: a calendar body could not be read as an iTIP message."""


class NotCalendar(ItipError):
    """Raised when the body holds no BEGIN:VCALENDAR … END:VCALENDAR object at all."""


class TooLarge(ItipError):
    """Raised when the body is larger than the reader accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"calendar body of {size} characters exceeds {limit}")
        self.size = size
        self.limit = limit


class BadStructure(ItipError):
    """Raised when BEGIN/END lines do not nest, or a component is never closed."""


class NoEvent(ItipError):
    """Raised when the calendar holds no VEVENT (e.g. only a VTODO or VFREEBUSY)."""


class MissingProperty(ItipError):
    """Raised when a property iTIP requires (UID, METHOD) is absent."""

    def __init__(self, name: str) -> None:
        super().__init__(f"missing {name}")
        self.name = name


class NoMethod(MissingProperty):
    """Raised when neither the calendar nor the Content-Type names a METHOD."""

    def __init__(self) -> None:
        super().__init__("METHOD")


class BadProperty(ItipError):
    """Raised when a property's value cannot be read (bad date, integer or duration)."""

    def __init__(self, name: str, value: str, why: str = "") -> None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        super().__init__(f"bad {name} value {shown!r}" + (f": {why}" if why else ""))
        self.name = name
        self.value = value


class InvalidCalendarInput(ParleyError, ValueError):
    """Raised when a snapshot or recipient cannot be written as a valid iTIP object."""
