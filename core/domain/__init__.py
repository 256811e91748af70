"""The pure scheduling domain: availability, time zones, busy time, slots and explanations.

No I/O and no clock: callers pass ``now``. Services and the API import from here.
"""

from __future__ import annotations

from core.domain.availability import (
    AvailabilityPolicy,
    DateException,
    ExceptionKind,
    Vacation,
    WeeklyWindow,
    date_exception,
    parse_clock,
    parse_date,
    parse_weekday,
    parse_zone,
    vacation,
    weekly_windows,
)
from core.domain.busy import Busy, BusyKind
from core.domain.explain import Explanation, Reason, ReasonCode, explain
from core.domain.slots import Slot, compute_slots

__all__ = [
    "AvailabilityPolicy",
    "Busy",
    "BusyKind",
    "DateException",
    "ExceptionKind",
    "Explanation",
    "Reason",
    "ReasonCode",
    "Slot",
    "Vacation",
    "WeeklyWindow",
    "compute_slots",
    "date_exception",
    "explain",
    "parse_clock",
    "parse_date",
    "parse_weekday",
    "parse_zone",
    "vacation",
    "weekly_windows",
]
