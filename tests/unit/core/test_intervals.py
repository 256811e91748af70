"""Interval-set arithmetic on half-open intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.errors import InvalidInterval, NaiveDatetime
from core.domain.intervals import (
    contains,
    intersect,
    interval,
    normalize,
    overlaps,
    subtract,
    union,
)

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_normalize_merges_overlapping_and_touching_and_sorts() -> None:
    merged = normalize([(5, 6), (1, 3), (3, 4), (2, 2.5), (8, 8)])
    assert merged == [(1, 4), (5, 6)]


def test_normalize_works_on_datetimes() -> None:
    assert normalize([(at(2), at(3)), (at(0), at(2))]) == [(at(0), at(3))]


def test_subtract_cuts_slices_and_keeps_edges() -> None:
    assert subtract([(0, 10)], [(2, 3), (5, 7), (9, 12)]) == [(0, 2), (3, 5), (7, 9)]
    assert subtract([(0, 2), (4, 6)], [(1, 5)]) == [(0, 1), (5, 6)]


def test_intersect_and_union() -> None:
    assert intersect([(0, 4), (6, 9)], [(3, 7)]) == [(3, 4), (6, 7)]
    assert union([(0, 2)], [(2, 5), (7, 8)]) == [(0, 5), (7, 8)]


def test_contains_and_overlaps_are_half_open() -> None:
    blocks = [(1, 3), (5, 8)]
    assert contains(blocks, 5, 8)
    assert not contains(blocks, 2, 6)
    assert overlaps(blocks, 2, 4)
    assert not overlaps(blocks, 3, 5)  # touching the ends is not overlapping
    assert not overlaps(blocks, 8, 9)


def test_interval_rejects_naive_and_empty() -> None:
    with pytest.raises(NaiveDatetime):
        interval(datetime(2027, 1, 1), at(1))
    with pytest.raises(InvalidInterval):
        interval(at(1), at(1))


pairs = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 10)), max_size=12).map(
    lambda items: [(start, start + length) for start, length in items]
)


def points(intervals: list[tuple[int, int]]) -> set[int]:
    return {p for start, end in intervals for p in range(start, end)}


@settings(max_examples=80, deadline=None)
@given(pairs, pairs)
def test_set_operations_match_point_sets(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    na, nb = normalize(a), normalize(b)
    assert points(union(na, nb)) == points(a) | points(b)
    assert points(intersect(na, nb)) == points(a) & points(b)
    assert points(subtract(na, nb)) == points(a) - points(b)
    for probe in range(0, 70, 3):
        assert overlaps(nb, probe, probe + 2) == bool(points(b) & {probe, probe + 1})
        assert contains(na, probe, probe + 2) == ({probe, probe + 1} <= points(a))
