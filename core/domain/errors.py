"""Errors raised by the pure scheduling domain.

Each class says when it is raised; the API edge turns every one of them into a 4xx
answer with ``code`` as the machine-readable error code.
"""

from __future__ import annotations

from core.errors import ParleyError


class DomainError(ParleyError, ValueError):
    """Base of every error the scheduling domain raises for bad input."""

    code = "invalid_input"


class InvalidTime(DomainError):
    """Raised when a wall-clock time such as "9:75" or "25:00" cannot be parsed."""

    code = "invalid_time"

    def __init__(self, value: str, reason: str = "expected HH:MM") -> None:
        super().__init__(f"invalid time {value!r}: {reason}")
        self.value = value


class InvalidWeekday(DomainError):
    """Raised when a weekday name or number is not one of mon..sun / 0..6."""

    code = "invalid_weekday"

    def __init__(self, value: object) -> None:
        super().__init__(f"invalid weekday {value!r}: expected mon..sun")
        self.value = value


class InvalidDate(DomainError):
    """Raised when a calendar date is not ISO 8601 (YYYY-MM-DD)."""

    code = "invalid_date"

    def __init__(self, value: str) -> None:
        super().__init__(f"invalid date {value!r}: expected YYYY-MM-DD")
        self.value = value


class UnknownZone(DomainError):
    """Raised when a time zone name is not an IANA zone known to zoneinfo."""

    code = "unknown_zone"

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown time zone {name!r}")
        self.name = name


class InvalidWindow(DomainError):
    """Raised when a local window does not end after it starts, or lies outside 00:00–24:00."""

    code = "invalid_window"

    def __init__(self, start_minute: int, end_minute: int) -> None:
        super().__init__(
            f"invalid window {start_minute // 60:02d}:{start_minute % 60:02d}–"
            f"{end_minute // 60:02d}:{end_minute % 60:02d}: end must be after start, within 24:00"
        )
        self.start_minute = start_minute
        self.end_minute = end_minute


class InvalidException(DomainError):
    """Raised when a date exception has an unknown kind or only one of start/end."""

    code = "invalid_exception"


class InvalidDateRange(DomainError):
    """Raised when a vacation's last day comes before its first day."""

    code = "invalid_date_range"


class InvalidPolicy(DomainError):
    """Raised when a numeric availability setting is out of range (e.g. a step of 0)."""

    code = "invalid_policy"


class NaiveDatetime(DomainError):
    """Raised when a datetime without tzinfo is given where an instant is required."""

    code = "naive_datetime"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} must be timezone-aware (RFC 3339 with an offset)")
        self.what = what


class InvalidInterval(DomainError):
    """Raised when an interval or query range does not end after it starts."""

    code = "invalid_interval"


class InvalidDuration(DomainError):
    """Raised when a requested duration is not a positive whole number of seconds."""

    code = "invalid_duration"


class BelowMinimumDuration(DomainError):
    """Raised when a requested duration is shorter than the policy's minimum duration."""

    code = "below_minimum_duration"

    def __init__(self, duration_minutes: float, minimum_minutes: int) -> None:
        super().__init__(
            f"duration {duration_minutes:g} min is below the minimum of {minimum_minutes} min"
        )
        self.duration_minutes = duration_minutes
        self.minimum_minutes = minimum_minutes
