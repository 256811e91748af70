"""Local wall-clock windows to UTC, per date, with the DST rules of DESIGN.md.

A window [start, end) on a local date is the set of instants whose wall-clock time lies in
it: times in a spring-forward gap never occur (the window is trimmed), times in a fall-back
overlap occur twice (both are covered). Internally times are integer seconds: "local"
seconds count wall-clock time since 1970-01-01 00:00, "utc" seconds are Unix time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NAIVE_EPOCH = datetime(1970, 1, 1)
_DAY = 86_400


def local_seconds(day: date, minute: int = 0) -> int:
    """Wall-clock seconds of ``minute`` past midnight on ``day`` (minute 1440 is 24:00)."""
    return (day.toordinal() - _EPOCH_ORDINAL) * _DAY + minute * 60


def local_day(local: int) -> date:
    """The local date a wall-clock second falls on."""
    return date.fromordinal(local // _DAY + _EPOCH_ORDINAL)


def to_utc_seconds(instant: datetime) -> float:
    """Unix seconds of an aware datetime."""
    return instant.timestamp()


def from_utc_seconds(seconds: float) -> datetime:
    """The aware UTC datetime of Unix seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def offset_at(zone: tzinfo, utc: float) -> int:
    """The zone's UTC offset in seconds at an instant."""
    offset = datetime.fromtimestamp(utc, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def wall_offsets(zone: tzinfo, local: int) -> tuple[int, int]:
    """Offsets for a wall-clock time with fold=0 and fold=1 (equal unless gap or overlap)."""
    naive = _NAIVE_EPOCH + timedelta(seconds=local)
    first = zone.utcoffset(naive)
    second = zone.utcoffset(naive.replace(fold=1))
    if first is None or second is None:
        return (0, 0)
    return (int(first.total_seconds()), int(second.total_seconds()))


def wall_instants(zone: tzinfo, local: int) -> tuple[int, ...]:
    """Every instant showing this wall-clock time: none in a gap, two in an overlap."""
    first, second = wall_offsets(zone, local)
    if first == second:
        return (local - first,)
    if first > second:  # overlap: fold=0 is the earlier occurrence
        return (local - first, local - second)
    return ()


def _transition(zone: tzinfo, low: int, high: int) -> int:
    """The first instant in (low, high] whose offset differs from the one at ``low``."""
    before = offset_at(zone, low)
    while high - low > 1:
        middle = (low + high) // 2
        if offset_at(zone, middle) == before:
            low = middle
        else:
            high = middle
    return high


def _resolve(zone: tzinfo, local: int, *, earliest: bool) -> int:
    """The instant bounding a window at ``local``: first or last occurrence, or the gap's end."""
    first, second = wall_offsets(zone, local)
    if first == second:
        return local - first
    if first > second:
        return local - first if earliest else local - second
    return _transition(zone, local - second, local - first)


@dataclass(frozen=True, slots=True)
class UtcWindow:
    """A local window resolved to UTC: constant-offset pieces and contiguous segments."""

    local_start: int
    local_end: int
    pieces: tuple[tuple[int, int, int], ...]  # (utc start, utc end, offset seconds)
    segments: tuple[tuple[int, int], ...]  # contiguous UTC intervals, sorted

    def starts(self, step: int, duration: int) -> list[int]:
        """Grid starts local_start + k×step, once per occurrence, whose slot fits a segment."""
        found: list[int] = []
        for low, high, offset in self.pieces:
            segment_end = next(end for start, end in self.segments if start <= low < end)
            k = -((self.local_start - (low + offset)) // step)  # ceil division
            start = self.local_start + k * step - offset
            last = min(high - 1, segment_end - duration)
            found.extend(range(start, last + 1, step))
        return found


def fixed_window(local_start: int, local_end: int, offset: int) -> UtcWindow:
    """A window on a date with a single offset: one piece, one segment."""
    span = (local_start - offset, local_end - offset)
    return UtcWindow(local_start, local_end, ((*span, offset),), (span,))


def resolve_window(zone: tzinfo, local_start: int, local_end: int) -> UtcWindow:
    """The instants whose wall-clock time lies in [local_start, local_end)."""
    first_start, second_start = wall_offsets(zone, local_start)
    first_end, second_end = wall_offsets(zone, local_end)
    if first_start == second_start == first_end == second_end:
        # No gap or overlap at either end and the same offset: assume no transition inside.
        return fixed_window(local_start, local_end, first_start)
    low = _resolve(zone, local_start, earliest=True)
    high = _resolve(zone, local_end, earliest=False)
    pieces = []
    for piece_low, piece_high, offset in _constant_offset_pieces(zone, low, high):
        clipped = (max(piece_low, local_start - offset), min(piece_high, local_end - offset))
        if clipped[0] < clipped[1]:
            pieces.append((*clipped, offset))
    return UtcWindow(local_start, local_end, tuple(pieces), _segments(pieces))


def _constant_offset_pieces(zone: tzinfo, low: int, high: int) -> list[tuple[int, int, int]]:
    pieces: list[tuple[int, int, int]] = []
    while low < high:
        offset = offset_at(zone, low)
        if offset_at(zone, high - 1) == offset:
            pieces.append((low, high, offset))
            break
        change = _transition(zone, low, high - 1)
        pieces.append((low, change, offset))
        low = change
    return pieces


def _segments(pieces: list[tuple[int, int, int]]) -> tuple[tuple[int, int], ...]:
    segments: list[tuple[int, int]] = []
    for low, high, _ in sorted(pieces):
        if segments and low <= segments[-1][1]:
            segments[-1] = (segments[-1][0], max(high, segments[-1][1]))
        else:
            segments.append((low, high))
    return tuple(segments)


def window_to_utc(
    zone: tzinfo, day: date, start_minute: int, end_minute: int
) -> list[tuple[datetime, datetime]]:
    """The contiguous UTC intervals of local window [start, end) on ``day`` (1440 = 24:00)."""
    window = resolve_window(zone, local_seconds(day, start_minute), local_seconds(day, end_minute))
    return [(from_utc_seconds(low), from_utc_seconds(high)) for low, high in window.segments]


def occurrences(zone: tzinfo, wall: datetime) -> list[datetime]:
    """The UTC instants at which a naive wall-clock time occurs: 0 (gap), 1, or 2 (overlap)."""
    local = local_seconds(wall.date()) + wall.hour * 3600 + wall.minute * 60 + wall.second
    return [from_utc_seconds(instant) for instant in wall_instants(zone, local)]


def is_nonexistent(instant: datetime) -> bool:
    """Whether an aware datetime names a wall-clock time its own zone skips (a DST gap)."""
    zone = instant.tzinfo
    if zone is None:
        return False
    wall = instant.replace(tzinfo=None)
    round_trip = instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return round_trip != wall
