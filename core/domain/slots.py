"""The feasibility engine: bookable slots = availability windows − busy.

A pure function of (policy, busy, now, query); see ``compute_slots`` for the rules.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice, repeat
from math import inf
from operator import add, le
from typing import NamedTuple

from core.domain.availability import AvailabilityPolicy
from core.domain.busy import BlockedIndex, Busy, BusyKind, blocked_index
from core.domain.errors import BelowMinimumDuration, InvalidDuration, InvalidInterval, NaiveDatetime
from core.domain.windows import windows_by_day
from core.domain.zones import (
    from_utc_seconds,
    local_day,
    local_seconds,
    offset_at,
    resolve_window,
    wall_offsets,
)

_ONE_DAY = timedelta(days=1)
_DAY_SECONDS = 86_400
_PADDED = frozenset((BusyKind.BOOKING.value, BusyKind.HOLD.value))

# Busy time as a plain row: (start, end, kind, ref, label), aware datetimes and the
# ``BusyKind`` value; what services read from the database without building ``Busy``.
BusyRow = tuple[datetime, datetime, str, str, str]


class Slot(NamedTuple):
    """A bookable interval [start, end) as aware UTC datetimes."""

    start: datetime
    end: datetime


def duration_seconds(policy: AvailabilityPolicy, duration: timedelta) -> int:
    """Whole seconds of ``duration``, checked against the policy's minimum."""
    seconds = duration.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise InvalidDuration(f"duration must be a positive whole number of seconds: {duration}")
    if seconds < policy.min_duration_minutes * 60:
        raise BelowMinimumDuration(seconds / 60, policy.min_duration_minutes)
    return int(seconds)


def require_aware(**instants: datetime) -> None:
    """Raise ``NaiveDatetime`` for the first naive argument."""
    for name, instant in instants.items():
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise NaiveDatetime(name)


def bookable_range(policy: AvailabilityPolicy, now: datetime) -> tuple[float, float]:
    """Earliest and latest (inclusive) allowed slot start in Unix seconds."""
    now_seconds = now.timestamp()
    return (
        now_seconds + policy.lead_time_hours * 3600,
        now_seconds + policy.booking_window_days * 86_400,
    )


def compute_slots(
    policy: AvailabilityPolicy,
    busy: Iterable[Busy],
    now: datetime,
    start: datetime,
    end: datetime,
    duration: timedelta,
) -> list[Slot]:
    """Every bookable slot of ``duration`` whose start lies in [start, end), sorted.

    A slot [s, s + duration) is bookable when
    - it lies wholly inside one availability window of the local date of s (see
      ``core.domain.windows`` for how weekly rules, exceptions and vacations combine, and
      ``core.domain.zones`` for DST: gap times never occur, overlap times occur twice);
    - s is on that window's grid: local window start + k × slot_step, once per occurrence;
    - now + lead_time ≤ s ≤ now + booking_window;
    - no busy item blocks it: busy [b, e) blocks when b − pad_before < s + duration and
      e + pad_after > s, where the pads are the policy's buffers for bookings and holds and
      zero for external and related time.
    Raises ``InvalidInterval`` when end ≤ start, ``NaiveDatetime`` for naive inputs,
    ``InvalidDuration`` / ``BelowMinimumDuration`` for a bad duration.
    """
    return _compute(
        policy, lambda low, high: blocked_index(policy, busy, low, high), now, start, end, duration
    )


def compute_slots_from_rows(
    policy: AvailabilityPolicy,
    rows: Iterable[BusyRow],
    now: datetime,
    start: datetime,
    end: datetime,
    duration: timedelta,
) -> list[Slot]:
    """``compute_slots`` for busy time given as plain ``BusyRow`` tuples; same answers.

    The fast path for services that read a thousand busy rows: no ``Busy`` objects are
    built. A row whose end is not after its start blocks nothing.
    """
    return _compute(
        policy, lambda low, high: rows_index(policy, rows, low, high), now, start, end, duration
    )


def _compute(
    policy: AvailabilityPolicy,
    index: Callable[[float, float], BlockedIndex],
    now: datetime,
    start: datetime,
    end: datetime,
    duration: timedelta,
) -> list[Slot]:
    require_aware(now=now, start=start, end=end)
    if end <= start:
        raise InvalidInterval("query end must be after its start")
    length = duration_seconds(policy, duration)
    earliest, latest = bookable_range(policy, now)
    low, high = max(earliest, start.timestamp()), end.timestamp()
    if low > latest or low >= high:
        return []
    blocked = index(low, min(high, latest) + length)
    starts = _window_starts(policy, low, min(high, latest), length)
    return _slots(_unblocked(starts, blocked, low, high, latest, length), duration)


def rows_index(
    policy: AvailabilityPolicy, rows: Iterable[BusyRow], low: float, high: float
) -> BlockedIndex:
    """``blocked_index`` for ``BusyRow`` tuples (bookings and holds carry the buffers)."""
    before, after = policy.buffer_before_minutes * 60, policy.buffer_after_minutes * 60
    low_dt, high_dt = from_utc_seconds(low - after), from_utc_seconds(high + before)
    near = [row for row in rows if row[0] < high_dt and row[1] > low_dt and row[1] > row[0]]
    starts = [row[0].timestamp() for row in near]
    ends = [row[1].timestamp() for row in near]
    if before or after:
        padded = [row[2] in _PADDED for row in near]
        starts = [s - before if p else s for s, p in zip(starts, padded, strict=True)]
        ends = [e + after if p else e for e, p in zip(ends, padded, strict=True)]
    if not all(map(le, starts, islice(starts, 1, None))):
        pairs = sorted(zip(starts, ends, strict=True))
        starts, ends = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    return BlockedIndex(starts, [-inf, *accumulate(ends, max)])


def _window_starts(policy: AvailabilityPolicy, low: float, high: float, length: int) -> list[int]:
    """Grid starts of every window on the local dates that instants in [low, high] fall on."""
    zone, step, windows_of = policy.zone, policy.slot_step_minutes * 60, windows_by_day(policy)
    # One day of margin each side: a zone that falls back across midnight repeats a date.
    day = local_day(int(low) + offset_at(zone, low)) - _ONE_DAY
    last = local_day(int(high) + offset_at(zone, high)) + _ONE_DAY
    midnight = local_seconds(day)
    offsets = wall_offsets(zone, midnight)
    starts: list[int] = []
    while day <= last:
        next_offsets = wall_offsets(zone, midnight + _DAY_SECONDS)
        windows = windows_of(day)
        if offsets[0] == offsets[1] == next_offsets[0] == next_offsets[1]:
            # One offset all day (the common case): the grid is plain arithmetic.
            offset = offsets[0]
            for start_minute, end_minute in windows:
                first = midnight + start_minute * 60 - offset
                starts.extend(range(first, midnight + end_minute * 60 - offset - length + 1, step))
        else:
            for start_minute, end_minute in windows:
                window = resolve_window(
                    zone, midnight + start_minute * 60, midnight + end_minute * 60
                )
                starts.extend(window.starts(step, length))
        day, midnight, offsets = day + _ONE_DAY, midnight + _DAY_SECONDS, next_offsets
    starts.sort()  # fall-back overlaps can interleave windows of one date
    return starts


def _unblocked(
    starts: list[int], blocked: BlockedIndex, low: float, high: float, latest: float, length: int
) -> list[int]:
    """The starts in [low, high), not after ``latest``, whose slot nothing blocks."""
    first = bisect_left(starts, low)
    beyond = min(bisect_left(starts, high), bisect_right(starts, latest))
    candidates = starts[first:beyond]
    # bisect for every candidate in one C-level map: this loop is the hot path.
    ends = map(add, candidates, repeat(length))
    reach = list(map(blocked.reach.__getitem__, map(bisect_left, repeat(blocked.starts), ends)))
    return [s for s, r in zip(candidates, reach, strict=True) if r <= s]


def _slots(starts: list[int], duration: timedelta) -> list[Slot]:
    firsts = list(map(datetime.fromtimestamp, starts, repeat(UTC, len(starts))))
    return list(map(Slot, firsts, map(add, firsts, repeat(duration, len(firsts)))))
