"""The availability editor's form: policy → form fields, and form fields → policy or messages.

Field names: ``w-<day>-<row>-start|end`` (day 0=Mon), ``x-<row>-date|kind|start|end``
(per-date overrides), ``v-<row>-from|to`` (vacations) and one name per setting. Every
problem becomes a message keyed by the field (or row) it belongs to, shown beside it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from core.domain import (
    AvailabilityPolicy,
    DateException,
    ExceptionKind,
    Vacation,
    WeeklyWindow,
    parse_clock,
    parse_date,
    parse_zone,
)
from core.domain.errors import DomainError
from web.words import N_

DAYS = (
    N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
    N_("Saturday"), N_("Sunday"),
)  # fmt: skip
BLANK_WINDOWS = 2
BLANK_EXCEPTIONS = 2
BLANK_VACATIONS = 1
# name: (label, lowest, highest, hint)
NUMBERS: dict[str, tuple[str, int, int, str]] = {
    "lead_time_hours": (N_("Lead time (hours)"), 0, 24 * 366, N_("Notice guests must give.")),
    "booking_window_days": (
        N_("Booking window (days)"), 0, 3660, N_("How far ahead guests may book.")
    ),
    "min_duration_minutes": (N_("Minimum duration (minutes)"), 1, 14 * 24 * 60, ""),
    "slot_step_minutes": (
        N_("Slot step (minutes)"), 1, 1440, N_("Starts offered every … minutes.")
    ),
    "buffer_before_minutes": (N_("Buffer before (minutes)"), 0, 1440, ""),
    "buffer_after_minutes": (N_("Buffer after (minutes)"), 0, 1440, ""),
}  # fmt: skip
_WINDOW = re.compile(r"w-([0-6])-(\d{1,3})-(start|end)")
_EXCEPTION = re.compile(r"x-(\d{1,4})-(date|kind|start|end)")
_VACATION = re.compile(r"v-(\d{1,3})-(from|to)")


@dataclass
class EditorState:
    """What the form shows: text as typed, so a rejected form comes back unchanged."""

    timezone: str
    days: list[list[tuple[str, str]]]
    exceptions: list[dict[str, str]]
    vacations: list[tuple[str, str]]
    numbers: dict[str, str]
    instant_book: bool
    errors: dict[str, str] = field(default_factory=dict)

    def padded(self) -> dict[str, Any]:
        """The state with blank rows to type into, for the template."""
        return {
            "days": [rows + [("", "")] * BLANK_WINDOWS for rows in self.days],
            "exceptions": self.exceptions + [{}] * BLANK_EXCEPTIONS,
            "vacations": self.vacations + [("", "")] * BLANK_VACATIONS,
        }


def clock(minute: int | None) -> str:
    return "" if minute is None else f"{minute // 60:02d}:{minute % 60:02d}"


def state_of(policy: AvailabilityPolicy) -> EditorState:
    """The form for a stored policy."""
    days: list[list[tuple[str, str]]] = [[] for _ in DAYS]
    for window in sorted(policy.weekly, key=lambda w: (w.weekday, w.start_minute)):
        days[window.weekday].append((clock(window.start_minute), clock(window.end_minute)))
    exceptions = [
        {
            "date": e.day.isoformat(),
            "kind": e.kind.value,
            "start": clock(e.start_minute),
            "end": clock(e.end_minute),
        }
        for e in sorted(policy.exceptions, key=lambda e: (e.day, e.start_minute or 0))
    ]
    vacations = [(v.first.isoformat(), v.last.isoformat()) for v in policy.vacations]
    numbers = {name: str(getattr(policy, name)) for name in NUMBERS}
    return EditorState(policy.timezone, days, exceptions, vacations, numbers, policy.instant_book)


def state_from_form(form: dict[str, str]) -> EditorState:
    """The form as submitted (rows sorted by their number; blank rows dropped)."""
    windows: dict[tuple[int, int], dict[str, str]] = {}
    exceptions: dict[int, dict[str, str]] = {}
    vacations: dict[int, dict[str, str]] = {}
    for name, value in form.items():
        value = value.strip()[:40]
        if match := _WINDOW.fullmatch(name):
            windows.setdefault((int(match[1]), int(match[2])), {})[match[3]] = value
        elif match := _EXCEPTION.fullmatch(name):
            exceptions.setdefault(int(match[1]), {})[match[2]] = value
        elif match := _VACATION.fullmatch(name):
            vacations.setdefault(int(match[1]), {})[match[2]] = value
    days: list[list[tuple[str, str]]] = [[] for _ in DAYS]
    for (day, _), row in sorted(windows.items()):
        if row.get("start") or row.get("end"):
            days[day].append((row.get("start", ""), row.get("end", "")))
    return EditorState(
        timezone=form.get("timezone", "").strip()[:64],
        days=days,
        exceptions=[
            row
            for _, row in sorted(exceptions.items())
            if row.get("date") or row.get("start") or row.get("end")
        ],
        vacations=[
            (row.get("from", ""), row.get("to", ""))
            for _, row in sorted(vacations.items())
            if row.get("from") or row.get("to")
        ],
        numbers={name: form.get(name, "").strip()[:12] for name in NUMBERS},
        instant_book=form.get("instant_book") == "on",
    )


def copy_day(state: EditorState, source: int, targets: list[int]) -> list[int]:
    """Give each target day the source day's windows; returns the days that changed."""
    changed = [t for t in targets if 0 <= t < len(DAYS) and t != source]
    for target in changed:
        state.days[target] = list(state.days[source])
    return changed


def to_policy(state: EditorState) -> AvailabilityPolicy | None:
    """The policy the form describes, or None with ``state.errors`` filled in."""
    state.errors = {}
    weekly = _windows(state)
    exceptions = _exceptions(state)
    vacations = _vacations(state)
    numbers = _numbers(state)
    try:
        parse_zone(state.timezone)
    except DomainError:
        state.errors["timezone"] = "Unknown time zone; use a name like Europe/Berlin."
    if state.errors:
        return None
    try:
        return AvailabilityPolicy(
            state.timezone,
            weekly=tuple(weekly),
            exceptions=tuple(exceptions),
            vacations=tuple(vacations),
            instant_book=state.instant_book,
            **numbers,
        )
    except DomainError as error:
        state.errors["form"] = str(error)
        return None


def _minutes(start: str, end: str) -> tuple[int, int]:
    """Both ends of a window; raises ValueError with a message for the person."""
    if not start or not end:
        raise ValueError("Give both a start and an end, like 09:00 and 17:00.")
    try:
        low, high = parse_clock(start), parse_clock(end, allow_24=True)
    except DomainError:
        raise ValueError("Use 24-hour times like 09:00 or 17:30 (24:00 for midnight).") from None
    if high <= low:
        raise ValueError("The end must be after the start.")
    return low, high


def _windows(state: EditorState) -> list[WeeklyWindow]:
    found: list[WeeklyWindow] = []
    for day, rows in enumerate(state.days):
        spans: list[tuple[int, int, int]] = []
        for row, (start, end) in enumerate(rows):
            try:
                low, high = _minutes(start, end)
            except ValueError as error:
                state.errors[f"w-{day}-{row}"] = str(error)
                continue
            spans.append((low, high, row))
        spans.sort()
        for (_, prev_end, _), (low, _, row) in itertools.pairwise(spans):
            if low < prev_end:
                state.errors[f"w-{day}-{row}"] = "This overlaps another window of the day."
        found += [WeeklyWindow(day, low, high) for low, high, _ in spans]
    return found


def _exceptions(state: EditorState) -> list[DateException]:
    found: list[DateException] = []
    for row, values in enumerate(state.exceptions):
        try:
            found.append(_exception(values))
        except ValueError as error:
            state.errors[f"x-{row}"] = str(error)
    return found


def _exception(values: dict[str, str]) -> DateException:
    try:
        day = parse_date(values.get("date", ""))
    except DomainError:
        raise ValueError("Give the date as YYYY-MM-DD.") from None
    kind = values.get("kind", "unavailable")
    if kind not in ("available", "unavailable"):
        raise ValueError("Choose available or unavailable.")
    start, end = values.get("start", ""), values.get("end", "")
    if not start and not end:
        if kind == "available":
            raise ValueError("Extra hours need a start and an end.")
        return DateException(day, ExceptionKind.UNAVAILABLE)
    low, high = _minutes(start, end)
    return DateException(day, ExceptionKind(kind), low, high)


def _vacations(state: EditorState) -> list[Vacation]:
    found: list[Vacation] = []
    for row, (first, last) in enumerate(state.vacations):
        try:
            start, end = parse_date(first), parse_date(last or first)
        except DomainError:
            state.errors[f"v-{row}"] = "Give both dates as YYYY-MM-DD."
            continue
        if end < start:
            state.errors[f"v-{row}"] = "The last day must not be before the first."
            continue
        found.append(Vacation(start, end))
    return found


def _numbers(state: EditorState) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, (label, low, high, _) in NUMBERS.items():
        text = state.numbers.get(name, "")
        if not text.isdigit() or not low <= int(text) <= high:
            state.errors[name] = f"{label.split(' (')[0]}: a whole number from {low} to {high}."
            continue
        found[name] = int(text)
    return found
