"""A provider's availability policy: weekly rules, date exceptions, vacations, settings.

Values are frozen and hashable so the slot engine can index a policy once and reuse it.
The ``parse_*`` helpers turn the API's plain strings ("mon", "09:00", "24:00",
"2027-03-10") into these values or raise a specific ``DomainError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.domain.errors import (
    InvalidDate,
    InvalidDateRange,
    InvalidException,
    InvalidPolicy,
    InvalidTime,
    InvalidWeekday,
    InvalidWindow,
    UnknownZone,
)

MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


class ExceptionKind(StrEnum):
    """Whether a date exception removes time or adds a window."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


def _check_window(start_minute: int, end_minute: int) -> None:
    if not 0 <= start_minute < end_minute <= MINUTES_PER_DAY:
        raise InvalidWindow(start_minute, end_minute)


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """Local wall-clock window [start, end) on a weekday (0=Mon..6=Sun); end 1440 is 24:00."""

    weekday: int
    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise InvalidWeekday(self.weekday)
        _check_window(self.start_minute, self.end_minute)


@dataclass(frozen=True, slots=True)
class DateException:
    """A per-date override: ``unavailable`` (whole day when no times) or ``available`` window."""

    day: date
    kind: ExceptionKind
    start_minute: int | None = None
    end_minute: int | None = None

    def __post_init__(self) -> None:
        if (self.start_minute is None) != (self.end_minute is None):
            raise InvalidException("an exception needs both start and end, or neither")
        if self.start_minute is not None and self.end_minute is not None:
            _check_window(self.start_minute, self.end_minute)
        elif self.kind is ExceptionKind.AVAILABLE:
            raise InvalidException("an 'available' exception needs a start and an end")

    @property
    def whole_day(self) -> bool:
        """True for an ``unavailable`` exception without times."""
        return self.start_minute is None


@dataclass(frozen=True, slots=True)
class Vacation:
    """Unavailable from ``first`` to ``last``, both local dates inclusive."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise InvalidDateRange(f"vacation ends {self.last} before it starts {self.first}")


@dataclass(frozen=True, slots=True)
class AvailabilityPolicy:
    """Everything that decides a provider's bookable time, except what is busy."""

    timezone: str
    weekly: tuple[WeeklyWindow, ...] = ()
    exceptions: tuple[DateException, ...] = ()
    vacations: tuple[Vacation, ...] = ()
    lead_time_hours: int = 24
    booking_window_days: int = 60
    min_duration_minutes: int = 30
    slot_step_minutes: int = 30
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    instant_book: bool = True
    zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", parse_zone(self.timezone))
        for name in ("weekly", "exceptions", "vacations"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.slot_step_minutes <= 0 or self.min_duration_minutes <= 0:
            raise InvalidPolicy("slot_step_minutes and min_duration_minutes must be positive")
        for name in ("lead_time_hours", "booking_window_days"):
            if getattr(self, name) < 0:
                raise InvalidPolicy(f"{name} must not be negative")
        if self.buffer_before_minutes < 0 or self.buffer_after_minutes < 0:
            raise InvalidPolicy("buffers must not be negative")


def parse_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or ``UnknownZone``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise UnknownZone(str(name)) from error


def parse_clock(text: str, *, allow_24: bool = False) -> int:
    """Minutes since local midnight for "HH:MM"; "24:00" only when ``allow_24`` (window ends)."""
    match = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidTime(str(text))
    hours, minutes = int(match[1]), int(match[2])
    if hours == 24 and minutes == 0:
        if not allow_24:
            raise InvalidTime(text, "24:00 is only allowed as the end of a window")
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise InvalidTime(text, "hours 00–23, minutes 00–59")
    return hours * 60 + minutes


def parse_weekday(text: str) -> int:
    """0=Mon..6=Sun for "mon".."sun" or "monday".."sunday" (any case)."""
    key = text.strip().lower() if isinstance(text, str) else ""
    for number, name in enumerate(_FULL_DAYS):
        if key in (name, name[:3]):
            return number
    raise InvalidWeekday(text)


def parse_date(text: str) -> date:
    """A calendar date from "YYYY-MM-DD"."""
    try:
        if not isinstance(text, str) or len(text.strip()) != 10:
            raise ValueError(text)
        return date.fromisoformat(text.strip())
    except ValueError as error:
        raise InvalidDate(str(text)) from error


def weekly_windows(days: Iterable[str], start: str, end: str) -> tuple[WeeklyWindow, ...]:
    """One ``WeeklyWindow`` per named day, e.g. (["mon", "tue"], "09:00", "17:00")."""
    start_minute, end_minute = parse_clock(start), parse_clock(end, allow_24=True)
    return tuple(WeeklyWindow(parse_weekday(day), start_minute, end_minute) for day in days)


def date_exception(
    day: str, kind: str, start: str | None = None, end: str | None = None
) -> DateException:
    """A ``DateException`` from the API's strings."""
    try:
        parsed_kind = ExceptionKind(kind)
    except ValueError as error:
        raise InvalidException(f"unknown exception kind {kind!r}") from error
    start_minute = None if start is None else parse_clock(start)
    end_minute = None if end is None else parse_clock(end, allow_24=True)
    return DateException(parse_date(day), parsed_kind, start_minute, end_minute)


def vacation(first: str, last: str) -> Vacation:
    """A ``Vacation`` from two "YYYY-MM-DD" strings, both inclusive."""
    return Vacation(parse_date(first), parse_date(last))
