"""Local windows to UTC: DST gaps trimmed, overlaps doubled, 24:00, odd offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.domain.zones import is_nonexistent, occurrences, window_to_utc

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")


def hours(segments: list[tuple[datetime, datetime]]) -> float:
    return sum((end - start).total_seconds() for start, end in segments) / 3600


def utc(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


def test_spring_forward_trims_window_to_existing_times() -> None:
    # 2027-03-28: Berlin jumps from 02:00 to 03:00.
    segments = window_to_utc(BERLIN, date(2027, 3, 28), 2 * 60 + 30, 4 * 60)
    assert segments == [(utc(BERLIN, 2027, 3, 28, 3), utc(BERLIN, 2027, 3, 28, 4))]
    assert hours(segments) == 1


def test_fall_back_window_covers_both_occurrences() -> None:
    # 2027-10-31: Berlin repeats 02:00–03:00.
    segments = window_to_utc(BERLIN, date(2027, 10, 31), 60, 180)
    assert hours(segments) == 3
    assert segments == [(utc(BERLIN, 2027, 10, 31, 1), utc(BERLIN, 2027, 10, 31, 3))]


def test_window_ending_inside_the_repeated_hour_has_two_pieces() -> None:
    segments = window_to_utc(BERLIN, date(2027, 10, 31), 60, 150)
    assert segments == [
        (utc(BERLIN, 2027, 10, 31, 1), utc(BERLIN, 2027, 10, 31, 2, 30)),
        (utc(BERLIN, 2027, 10, 31, 2, fold=1), utc(BERLIN, 2027, 10, 31, 2, 30, fold=1)),
    ]


def test_window_ending_at_24_00_ends_at_next_local_midnight() -> None:
    segments = window_to_utc(NEW_YORK, date(2027, 3, 13), 22 * 60, 24 * 60)
    assert segments == [(utc(NEW_YORK, 2027, 3, 13, 22), utc(NEW_YORK, 2027, 3, 14, 0))]
    # On the fall-back day a 00:00–24:00 window is 25 hours long.
    assert hours(window_to_utc(NEW_YORK, date(2027, 11, 7), 0, 24 * 60)) == 25


def test_lord_howe_half_hour_shifts() -> None:
    # Lord Howe moves its clocks by 30 minutes: 02:00 → 02:30 on 2027-10-03.
    spring = window_to_utc(LORD_HOWE, date(2027, 10, 3), 60, 4 * 60)
    assert hours(spring) == 2.5
    assert spring[0][0] == utc(LORD_HOWE, 2027, 10, 3, 1)
    # ... and 02:00 → 01:30 on 2027-04-04, repeating 01:30–02:00.
    autumn = window_to_utc(LORD_HOWE, date(2027, 4, 4), 60, 4 * 60)
    assert hours(autumn) == 3.5
    assert len(occurrences(LORD_HOWE, datetime(2027, 4, 4, 1, 45))) == 2
    assert occurrences(LORD_HOWE, datetime(2027, 10, 3, 2, 15)) == []


def test_kolkata_half_hour_offset_matches_zoneinfo() -> None:
    segments = window_to_utc(KOLKATA, date(2027, 6, 1), 9 * 60, 17 * 60)
    assert segments == [
        (datetime(2027, 6, 1, 3, 30, tzinfo=UTC), datetime(2027, 6, 1, 11, 30, tzinfo=UTC))
    ]


def test_occurrences_agree_with_zoneinfo_every_quarter_hour_around_transitions() -> None:
    for zone, day in [
        (BERLIN, date(2027, 3, 28)),
        (BERLIN, date(2027, 10, 31)),
        (NEW_YORK, date(2027, 3, 14)),
        (NEW_YORK, date(2027, 11, 7)),
        (LORD_HOWE, date(2027, 4, 4)),
        (LORD_HOWE, date(2027, 10, 3)),
    ]:
        for quarter in range(24 * 4):
            wall = datetime.combine(day, datetime.min.time()) + timedelta(minutes=15 * quarter)
            expected = {
                datetime(*wall.timetuple()[:6], tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]
                for fold in (0, 1)
                if datetime(*wall.timetuple()[:6], tzinfo=zone, fold=fold)  # type: ignore[misc]
                .astimezone(UTC)
                .astimezone(zone)
                .replace(tzinfo=None)
                == wall
            }
            assert set(occurrences(zone, wall)) == expected, (zone, wall)


def test_is_nonexistent_flags_gap_times_only() -> None:
    assert is_nonexistent(datetime(2027, 3, 28, 2, 30, tzinfo=BERLIN))
    assert not is_nonexistent(datetime(2027, 3, 28, 3, 0, tzinfo=BERLIN))
    assert not is_nonexistent(datetime(2027, 10, 31, 2, 30, tzinfo=BERLIN, fold=1))
    assert not is_nonexistent(datetime(2027, 3, 28, 2, 30, tzinfo=UTC))
