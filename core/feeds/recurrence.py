"""Expansion of recurring series (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides).

Only the series that can touch the window reach here; they are handed, as one small
calendar, to recurring-ical-events. A series it cannot expand is dropped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import icalendar
import recurring_ical_events
import x_wr_timezone

_TZID_PARAM = re.compile(r';TZID=("[^"]*"|[^;:]*)', re.IGNORECASE)
_RRULE_LINE = re.compile(r"^(RRULE|EXRULE)([;:].*)$", re.MULTILINE)
# Frequencies that can yield tens of thousands of instances in a window: not calendar data.
UNSUPPORTED_FREQ = re.compile(r"FREQ=(SECONDLY|MINUTELY)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Expansion:
    """Occurrences of all series, and how many series could not be expanded."""

    occurrences: list[icalendar.Event]
    failed_series: int


def rewrite_tzids(group: str, resolve: Callable[[str], str | None]) -> str:
    """Replace every TZID parameter by resolve(tzid): a name to use, or None to drop it."""

    def swap(match: re.Match[str]) -> str:
        name = resolve(match.group(1).strip('"'))
        return "" if name is None else f";TZID={_quote(name)}"

    return _TZID_PARAM.sub(swap, group)


def repair_rules(group: str) -> str:
    """Drop blanks inside RRULE values: Exchange's CDO writes "BYDAY=MO, TU, WE"."""
    return _RRULE_LINE.sub(lambda m: m.group(1) + re.sub(r"[ \t]+", "", m.group(2)), group)


def expand(
    groups: Sequence[str],
    *,
    vtimezones: str,
    x_wr_tz: str | None,
    window: tuple[datetime, datetime],
) -> Expansion:
    """Occurrences in window of each series; groups are VEVENT texts sharing one UID."""
    if not groups:
        return Expansion([], 0)
    try:
        return Expansion(_between(list(groups), vtimezones, x_wr_tz, window), 0)
    except Exception:
        pass  # one bad series: retry one by one to keep the good ones
    occurrences: list[icalendar.Event] = []
    failed = 0
    for group in groups:
        try:
            occurrences.extend(_between([group], vtimezones, x_wr_tz, window))
        except Exception:  # recurring-ical-events and icalendar raise many types
            failed += 1
    return Expansion(occurrences, failed)


def _between(
    groups: list[str], vtimezones: str, x_wr_tz: str | None, window: tuple[datetime, datetime]
) -> list[icalendar.Event]:
    header = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Parley//feed reader//EN\n"
    if x_wr_tz:
        header += f"X-WR-TIMEZONE:{x_wr_tz}\n"
    text = header + vtimezones + "".join(groups) + "END:VCALENDAR\n"
    calendar = icalendar.Calendar.from_ical(text.replace("\n", "\r\n"))
    if x_wr_tz:
        # Google writes UTC DTSTARTs meaning wall-clock times in X-WR-TIMEZONE; convert so
        # a weekly 09:00 stays at 09:00 local across DST.
        calendar = x_wr_timezone.to_standard(calendar)
    found = recurring_ical_events.of(calendar).between(window[0], window[1])
    return [event for event in found if isinstance(event, icalendar.Event)]


def _quote(name: str) -> str:
    return f'"{name}"' if any(ch in name for ch in ";:,") else name
