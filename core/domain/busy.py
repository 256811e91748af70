"""Busy time: what blocks availability, and how far each kind blocks.

External events and time inherited from related units block exactly their interval;
bookings and holds also block ``buffer_before`` minutes before and ``buffer_after``
minutes after them, so back-to-back bookings keep the provider's breathing room.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from itertools import accumulate, islice
from math import inf
from operator import le
from typing import NamedTuple

from core.domain.availability import AvailabilityPolicy
from core.domain.errors import InvalidInterval, NaiveDatetime
from core.domain.zones import from_utc_seconds


class BusyKind(StrEnum):
    """Where busy time comes from."""

    EXTERNAL = "external"  # an imported calendar event; ref = source id, label = source name
    BOOKING = "booking"  # a requested or confirmed booking; ref = booking id
    HOLD = "hold"  # an active hold; ref = hold id
    RELATED = "related"  # time inherited from a parent/child unit; ref = unit id


@dataclass(frozen=True, slots=True)
class Busy:
    """A busy interval [start, end) with what it is, for blocking and for explanations."""

    start: datetime
    end: datetime
    kind: BusyKind = BusyKind.EXTERNAL
    ref: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise NaiveDatetime("busy start and end")
        if self.end <= self.start:
            raise InvalidInterval(f"busy interval ends {self.end} before it starts {self.start}")
        if not isinstance(self.kind, BusyKind):
            object.__setattr__(self, "kind", BusyKind(self.kind))


def padding(policy: AvailabilityPolicy, kind: BusyKind) -> tuple[int, int]:
    """Seconds a busy item of ``kind`` blocks before its start and after its end."""
    if kind is BusyKind.BOOKING or kind is BusyKind.HOLD:
        return (policy.buffer_before_minutes * 60, policy.buffer_after_minutes * 60)
    return (0, 0)


def blocks(policy: AvailabilityPolicy, item: Busy, start: float, end: float) -> bool:
    """Whether ``item`` (with its buffers) blocks the slot [start, end) in Unix seconds."""
    before, after = padding(policy, item.kind)
    return item.start.timestamp() - before < end and item.end.timestamp() + after > start


class BlockedIndex(NamedTuple):
    """Blocked intervals sorted by start, with the running maximum of their ends.

    [s, e) is blocked iff some interval starts before e and the running maximum of the
    ends up to it exceeds s: one bisect per question, no merge loop.
    """

    starts: list[float]
    reach: list[float]  # reach[i] = max end of the first i intervals; reach[0] = -inf

    def blocks(self, start: float, end: float) -> bool:
        """Whether anything blocked overlaps [start, end) (Unix seconds)."""
        return self.reach[bisect_left(self.starts, end)] > start


def blocked_index(
    policy: AvailabilityPolicy, busy: Iterable[Busy], low: float, high: float
) -> BlockedIndex:
    """Index the Unix-second intervals blocked by ``busy`` (buffers included) near [low, high).

    One pass with plain datetime comparisons drops what lies outside the range before
    anything is converted, so a long history costs little; the order of ``busy`` is free
    (sorting already-sorted input is linear).
    """
    before, after = policy.buffer_before_minutes * 60, policy.buffer_after_minutes * 60
    low_dt, high_dt = from_utc_seconds(low - after), from_utc_seconds(high + before)
    near = [item for item in busy if item.start < high_dt and item.end > low_dt]
    starts = [item.start.timestamp() for item in near]
    ends = [item.end.timestamp() for item in near]
    if before or after:
        pads = {kind: padding(policy, kind) for kind in BusyKind}
        starts = [start - pads[item.kind][0] for start, item in zip(starts, near, strict=True)]
        ends = [end + pads[item.kind][1] for end, item in zip(ends, near, strict=True)]
    if not all(map(le, starts, islice(starts, 1, None))):
        pairs = sorted(zip(starts, ends, strict=True))
        starts, ends = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    return BlockedIndex(starts, [-inf, *accumulate(ends, max)])
