from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from core.feeds import EventKind, FeedEvent, Platform, PlatformInfo
from core.feeds.events import content_hash
from core.feeds.merge import (
    ConflictType,
    SourcedEvent,
    dedup,
    diff,
    is_mass_removal,
    same_booking,
    settle,
)


def day(n: int) -> datetime:
    return datetime(2025, 6, n, tzinfo=UTC)


def feed_event(uid: str, start: int, summary: str = "x", rid: str | None = None,
               sequence: int = 0) -> FeedEvent:  # fmt: skip
    event = FeedEvent(
        uid=uid, recurrence_id=rid, start=day(start), end=day(start + 1), all_day=True,
        summary=summary, description="", location="", status="", transparent=False,
        sequence=sequence, last_modified=None, dtstamp=None,
        platform=PlatformInfo(Platform.GENERIC, EventKind.BLOCK),
    )  # fmt: skip
    return replace(event, content_hash=content_hash(event))


def test_diff_added_updated_removed_unchanged() -> None:
    a, b, c = feed_event("a", 1), feed_event("b", 2), feed_event("c", 3, rid="20250603")
    stored = {a.key: a.content_hash, b.key: "old-hash", ("gone", None): "h"}
    delta = diff(stored, [a, b, c])
    assert [e.key for e in delta.added] == [("c", "20250603")]
    assert [e.key for e in delta.updated] == [("b", None)]
    assert delta.removed == (("gone", None),)
    assert delta.unchanged == (("a", None),)


def test_diff_keeps_highest_sequence_of_repeated_key() -> None:
    old, new = feed_event("a", 1, "old"), feed_event("a", 1, "new", sequence=3)
    delta = diff({}, [new, old])
    assert [e.summary for e in delta.added] == ["new"] and delta.duplicate_keys == 1


def test_mass_removal() -> None:
    assert is_mass_removal(10, 4)
    assert is_mass_removal(1, 0)  # became empty
    assert not is_mass_removal(10, 6)  # lost 40%
    assert not is_mass_removal(6, 2)  # lost 4 < 5
    assert not is_mass_removal(0, 0)
    assert not is_mass_removal(10, 12)


def sourced(source: str, platform: str, uid: str, start: int, end: int,
            kind: EventKind = EventKind.RESERVATION, code: str | None = None,
            unit: str = "villa", modified: datetime | None = None) -> SourcedEvent:  # fmt: skip
    return SourcedEvent(source, platform, unit, uid, None, day(start), day(end), kind, code,
                        modified)  # fmt: skip


def test_same_booking_by_uid_or_code() -> None:
    air = sourced("s1", "airbnb", "1418fb94e984-a@airbnb.com", 3, 7, code="HMABCD1234")
    mp = sourced("s2", "motopress_ics", "mp-1042", 3, 7, code="HMABCD1234")
    copy = sourced("s3", "generic_ics", "1418fb94e984-a@airbnb.com", 3, 7)
    assert same_booking(air, mp) == "reservation_code"
    assert same_booking(air, copy) == "uid"
    other_unit = replace(mp, unit_id="room")
    assert same_booking(air, other_unit) is None
    shifted = replace(mp, start=day(5))
    assert same_booking(air, shifted) is None
    assert same_booking(air, replace(air, uid="z")) is None  # same source is never a copy


def test_dedup_keeps_best_priority_copy() -> None:
    air = sourced("s1", "airbnb", "1418fb94e984-a@airbnb.com", 3, 7, code="HMABCD1234")
    mp = sourced("s2", "motopress_ics", "mp-1042", 3, 7, code="HMABCD1234")
    lone = sourced("s1", "airbnb", "1418fb94e984-b@airbnb.com", 10, 12)
    result = dedup([air, lone, mp])
    assert [e.ref for e in result.kept] == [mp.ref, lone.ref]
    (dup,) = result.duplicates
    assert (dup.kept, dup.dropped, dup.reason) == (mp.ref, air.ref, "reservation_code")


def test_overlapping_reservations_higher_priority_wins_and_needs_review() -> None:
    air = sourced("s1", "airbnb", "a", 3, 7)
    gen = sourced("s2", "generic_ics", "g", 5, 9)
    (found,) = settle([gen, air])
    assert found.conflict_type is ConflictType.OVERLAPPING_RESERVATIONS
    assert found.winner == air.ref and found.resolved_by == "rule:priority"
    assert found.needs_review and found.warning == "double booking"
    assert (found.overlap_start, found.overlap_end) == (day(5), day(7))


def test_reservation_over_block_splits_block() -> None:
    block = sourced("s1", "booking.com", "b", 1, 10, EventKind.BLOCK)
    stay = sourced("s2", "vrbo", "v", 4, 6)
    (found,) = settle([block, stay])
    assert found.conflict_type is ConflictType.RESERVATION_VS_BLOCK
    assert found.winner == stay.ref and found.resolved_by == "rule:reservation_over_block"
    assert found.strategy == "split" and not found.needs_review
    assert found.loser_remaining == ((day(1), day(4)), (day(6), day(10)))


def test_same_priority_same_kind_newer_wins() -> None:
    old = sourced("s1", "airbnb", "a", 3, 7, modified=day(1))
    new = sourced("s2", "vrbo", "v", 3, 7, modified=day(2))
    (found,) = settle([old, new])
    assert found.winner == new.ref and found.resolved_by == "rule:last_modified"


def test_same_day_turnover_allowed_with_warning() -> None:
    first = sourced("s1", "motopress_api", "m", 1, 5)  # inclusive checkout day
    second = replace(sourced("s2", "airbnb", "a", 4, 8), start=day(4) + timedelta(hours=15))
    (found,) = settle([first, second])
    assert found.conflict_type is ConflictType.TIME_BOUNDARY
    assert found.winner is None and found.strategy == "allow" and found.warning


def test_no_conflict_for_touching_stays_blocks_or_other_units() -> None:
    a = sourced("s1", "airbnb", "a", 1, 4)
    b = sourced("s2", "vrbo", "b", 4, 8)
    blocks = [sourced("s1", "airbnb", "x", 1, 9, EventKind.BLOCK),
              sourced("s2", "booking.com", "y", 2, 5, EventKind.BLOCK)]  # fmt: skip
    elsewhere = sourced("s3", "vrbo", "c", 2, 6, unit="room")
    assert settle([a, b]) == []
    assert settle(blocks) == []
    assert settle([a, elsewhere]) == []


def test_block_beating_guest_needs_review() -> None:
    block = sourced("s1", "motopress_api", "m", 1, 10, EventKind.BLOCK)
    stay = sourced("s2", "airbnb", "a", 3, 6)
    (found,) = settle([block, stay])
    assert found.winner == block.ref and found.resolved_by == "rule:priority"
    assert found.needs_review


def test_fuzzy_match_needs_near_dates_and_the_same_phone_ending() -> None:
    # MUVA §3.3's third rule: no shared UID or code, dates within a day, phones end alike.
    air = replace(sourced("s1", "airbnb", "a@airbnb.com", 3, 7), phone_last4="2833")
    booking = replace(sourced("s2", "booking.com", "b@booking.com", 4, 7), phone_last4="2833")
    assert same_booking(air, booking) == "fuzzy"
    assert same_booking(air, replace(booking, phone_last4="0147")) is None
    assert same_booking(air, replace(booking, phone_last4=None)) is None
    assert same_booking(air, replace(booking, start=day(5))) is None  # two days apart
    assert same_booking(air, replace(booking, kind=EventKind.BLOCK)) is None
    assert same_booking(air, replace(booking, unit_id="room")) is None
    result = dedup([booking, air])
    assert [e.ref for e in result.kept] == [air.ref]
    assert result.duplicates[0].reason == "fuzzy"
