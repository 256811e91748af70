"""Half-open intervals [start, end) and interval-set arithmetic.

An interval set is a list of (start, end) pairs sorted by start, pairwise disjoint and
not touching (``normalize`` makes one). Endpoints are aware datetimes or plain numbers
(epoch seconds, as the slot engine uses internally); operations are linear merges or bisects.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import chain
from typing import TypeVar

from core.domain.errors import InvalidInterval, NaiveDatetime

T = TypeVar("T", datetime, int, float)


def interval(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A validated UTC-comparable interval: both ends aware, end after start."""
    if start.tzinfo is None or end.tzinfo is None:
        raise NaiveDatetime("interval start and end")
    if end <= start:
        raise InvalidInterval(f"interval end {end.isoformat()} is not after {start.isoformat()}")
    return (start, end)


def normalize(intervals: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    """Sort and merge overlapping or touching intervals; empty ones are dropped."""
    ordered = sorted(pair for pair in intervals if pair[0] < pair[1])
    merged: list[tuple[T, T]] = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def union(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """All points in either set."""
    return normalize(chain(a, b))


def intersect(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """Points in both normalized sets, by a linear merge."""
    result: list[tuple[T, T]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            result.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def subtract(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """Points of normalized set ``a`` not in normalized set ``b``, by a linear merge."""
    result: list[tuple[T, T]] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        cursor = start
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                result.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def contains(normalized: Sequence[tuple[T, T]], start: T, end: T) -> bool:
    """Whether [start, end) lies wholly inside one interval of a normalized set."""
    i = bisect_right(normalized, start, key=_start) - 1
    return i >= 0 and normalized[i][1] >= end


def overlaps(normalized: Sequence[tuple[T, T]], start: T, end: T) -> bool:
    """Whether [start, end) shares any point with a normalized set."""
    i = bisect_right(normalized, start, key=_end)
    return i < len(normalized) and normalized[i][0] < end


def _start(pair: tuple[T, T]) -> T:
    return pair[0]


def _end(pair: tuple[T, T]) -> T:
    return pair[1]
