"""The availability windows of a policy on one local date, with where they came from.

Precedence, most specific last: weekly rules; then a vacation or a whole-day
``unavailable`` exception empties the day and ``unavailable`` windows cut slices out;
then ``available`` exception windows are added back (they win over everything else on
their date). Overlapping or touching windows of one date merge into one window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from core.domain.availability import AvailabilityPolicy, ExceptionKind
from core.domain.intervals import normalize, subtract, union

Minutes = tuple[int, int]


@dataclass(frozen=True, slots=True)
class DayPlan:
    """How one local date's windows were derived (minutes since local midnight)."""

    day: date
    weekly: tuple[Minutes, ...]
    vacation: bool
    closed_by_exception: bool
    unavailable: tuple[Minutes, ...]
    available: tuple[Minutes, ...]

    @property
    def windows(self) -> list[Minutes]:
        """The effective windows of the date, merged, sorted."""
        base: list[Minutes] = [] if self.vacation or self.closed_by_exception else list(self.weekly)
        return union(subtract(base, self.unavailable), self.available)


@dataclass(frozen=True, slots=True)
class _Index:
    weekly: dict[int, tuple[Minutes, ...]]
    closed: frozenset[date]
    unavailable: dict[date, tuple[Minutes, ...]]
    available: dict[date, tuple[Minutes, ...]]
    vacations: tuple[tuple[date, date], ...]
    special: frozenset[date]  # dates with any exception

    def windows(self, day: date) -> tuple[Minutes, ...] | list[Minutes]:
        """The effective windows of ``day``; the weekly ones unless something overrides."""
        if day in self.special or any(first <= day <= last for first, last in self.vacations):
            return _plan(self, day).windows
        return self.weekly.get(day.weekday(), ())


@lru_cache(maxsize=256)
def _index(policy: AvailabilityPolicy) -> _Index:
    weekly: dict[int, list[Minutes]] = defaultdict(list)
    for rule in policy.weekly:
        weekly[rule.weekday].append((rule.start_minute, rule.end_minute))
    closed: set[date] = set()
    slices: dict[ExceptionKind, dict[date, list[Minutes]]] = {
        kind: defaultdict(list) for kind in ExceptionKind
    }
    for exception in policy.exceptions:
        if exception.start_minute is None or exception.end_minute is None:
            closed.add(exception.day)
        else:
            window = (exception.start_minute, exception.end_minute)
            slices[exception.kind][exception.day].append(window)
    return _Index(
        weekly={day: tuple(normalize(windows)) for day, windows in weekly.items()},
        closed=frozenset(closed),
        unavailable=_frozen(slices[ExceptionKind.UNAVAILABLE]),
        available=_frozen(slices[ExceptionKind.AVAILABLE]),
        vacations=tuple((v.first, v.last) for v in policy.vacations),
        special=frozenset(exception.day for exception in policy.exceptions),
    )


def _frozen(by_day: dict[date, list[Minutes]]) -> dict[date, tuple[Minutes, ...]]:
    return {day: tuple(normalize(windows)) for day, windows in by_day.items()}


def day_plan(policy: AvailabilityPolicy, day: date) -> DayPlan:
    """The derivation of ``day``'s windows under ``policy``."""
    return _plan(_index(policy), day)


def _plan(index: _Index, day: date) -> DayPlan:
    return DayPlan(
        day=day,
        weekly=index.weekly.get(day.weekday(), ()),
        vacation=any(first <= day <= last for first, last in index.vacations),
        closed_by_exception=day in index.closed,
        unavailable=index.unavailable.get(day, ()),
        available=index.available.get(day, ()),
    )


def day_windows(policy: AvailabilityPolicy, day: date) -> list[Minutes]:
    """The effective local windows of ``day`` as (start minute, end minute), 1440 = 24:00."""
    return list(_index(policy).windows(day))


def windows_by_day(policy: AvailabilityPolicy) -> Callable[[date], Sequence[Minutes]]:
    """A fast ``day -> windows`` lookup for scanning many dates of one policy."""
    return _index(policy).windows


def window_count(policy: AvailabilityPolicy, first: date, last: date) -> int:
    """How many availability windows the local dates ``first``..``last`` hold in all.

    The candidate windows of a slot search, as the feasibility event reports them.
    """
    windows_of = windows_by_day(policy)
    days = (last - first).days + 1
    return sum(len(windows_of(first + timedelta(days=n))) for n in range(max(days, 0)))
