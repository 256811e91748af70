"""Busy spans of objects stored in providers' own calendars: merged, bounded, zone-aware."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.services.dav import MAX_OCCURRENCES, object_busy

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _ics(start: str, extra: str = "", length: str = "PT1H") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:u\r\n"
        f"DTSTAMP:20260101T000000Z\r\nDTSTART{start}\r\nDURATION:{length}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_one_event_and_a_daily_series_over_the_horizon() -> None:
    one = object_busy(_ics(":20270105T090000Z"), NOW, timedelta(days=730), BERLIN)
    assert one == [(datetime(2027, 1, 5, 9, tzinfo=UTC), datetime(2027, 1, 5, 10, tzinfo=UTC))]
    daily = object_busy(
        _ics(":20261201T090000Z", "RRULE:FREQ=DAILY\r\n"), NOW, timedelta(days=30), BERLIN
    )
    assert len(daily) == 30 and daily[0][0] == datetime(2026, 12, 2, 9, tzinfo=UTC)


def test_floating_time_is_read_in_the_provider_zone_across_dst() -> None:
    spans = object_busy(
        _ics(";TZID=:20270322T100000", "RRULE:FREQ=WEEKLY;COUNT=2\r\n").replace(";TZID=", ""),
        NOW,
        timedelta(days=730),
        BERLIN,
    )
    # 10:00 local is 09:00 UTC before 28 March and 08:00 UTC after it.
    assert [s for s, _ in spans] == [
        datetime(2027, 3, 22, 9, tzinfo=UTC),
        datetime(2027, 3, 29, 8, tzinfo=UTC),
    ]


def test_a_secondly_rule_is_bounded_and_merged() -> None:
    started = time.monotonic()
    spans = object_busy(
        _ics(":20261202T100000Z", "RRULE:FREQ=SECONDLY\r\n", "PT1S"),
        NOW,
        timedelta(days=730),
        BERLIN,
    )
    assert time.monotonic() - started < 20
    assert len(spans) == 1  # back-to-back seconds are one busy span
    first, last = spans[0]
    assert first == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert last - first <= timedelta(seconds=2 * MAX_OCCURRENCES)


def test_unreadable_calendar_blocks_nothing() -> None:
    assert object_busy("BEGIN:VCALENDAR\r\nnot ical", NOW, timedelta(days=1), BERLIN) == []
