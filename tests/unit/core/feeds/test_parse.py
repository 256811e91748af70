from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.feeds import (
    EmptyFeed,
    FeedEvent,
    FeedResult,
    InvalidRequest,
    NotACalendar,
    TooManyEvents,
    TruncatedFeed,
    read_feed,
)

DATA = Path(__file__).parents[3] / "data" / "feeds"
JUNE = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))


def read(name: str, window: tuple[datetime, datetime] = JUNE, zone: str = "Europe/Berlin",
         max_events: int = 1000) -> FeedResult:  # fmt: skip
    return read_feed(
        (DATA / name).read_bytes(),
        window_start=window[0],
        window_end=window[1],
        default_zone=zone,
        max_events=max_events,
    )


def by_uid(result: FeedResult) -> dict[str, list[FeedEvent]]:
    found: dict[str, list[FeedEvent]] = {}
    for event in result.events:
        found.setdefault(event.uid, []).append(event)
    return found


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_utc_event_and_window_filter() -> None:
    result = read("google.ics")
    events = by_uid(result)
    dentist = events["5m2c1s0a9b8c7d6e5f4g3h2i1j@google.com"][0]
    assert (dentist.start, dentist.end) == (utc(2025, 6, 2, 14), utc(2025, 6, 2, 15))
    assert dentist.busy and not dentist.all_day and dentist.recurrence_id is None
    assert "old-1@google.com" not in events
    assert result.outside_window == 1
    assert result.calendar_props.x_wr_calname == "Ana (work)"
    assert result.calendar_props.platform == "google"


def test_floating_time_read_in_x_wr_timezone() -> None:
    result = read("google.ics", zone="Asia/Tokyo")
    standup = by_uid(result)["floating-1@google.com"][0]
    assert standup.start == utc(2025, 6, 3, 13)  # 09:00 EDT
    assert result.calendar_props.floating_zone == "America/New_York"


def test_floating_time_read_in_default_zone_without_x_wr_timezone() -> None:
    body = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:f\r\nDTSTART:20250603T090000\r\n" \
        b"DTEND:20250603T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"  # fmt: skip
    result = read_feed(body, window_start=JUNE[0], window_end=JUNE[1],
                       default_zone="Asia/Tokyo", max_events=10)  # fmt: skip
    assert result.events[0].start == utc(2025, 6, 3, 0)


def test_weekly_series_with_exdate_and_moved_override() -> None:
    weekly = by_uid(read("google.ics"))["weekly-1@google.com"]
    starts = [e.start for e in weekly]
    # Thursdays 10:00 EDT: 5 Jun, (12 Jun excluded), 19 Jun moved to 20 Jun 15:00, 26 Jun
    assert starts == [utc(2025, 6, 5, 14), utc(2025, 6, 20, 19), utc(2025, 6, 26, 14)]
    moved = weekly[1]
    assert moved.recurrence_id == "20250619T140000Z"
    assert moved.summary == "Weekly review (moved)" and moved.sequence == 2
    assert all(e.recurrence_id for e in weekly)


def test_transparent_and_cancelled_are_flagged_not_busy() -> None:
    events = by_uid(read("google.ics"))
    free, cancelled = events["free-1@google.com"][0], events["cancelled-1@google.com"][0]
    assert free.transparent and not free.busy
    assert cancelled.cancelled and cancelled.status == "CANCELLED" and not cancelled.busy


def test_all_day_across_spring_forward_blocks_whole_local_days() -> None:
    march = (utc(2025, 3, 1), utc(2025, 4, 30))
    events = by_uid(read("allday_dst.ics", march, zone="UTC"))
    weekend = events["dst-weekend@example.com"][0]
    assert weekend.all_day
    assert weekend.start == utc(2025, 3, 28, 23)  # Berlin midnight, CET
    assert weekend.end == utc(2025, 3, 30, 22)  # Berlin midnight, CEST
    assert weekend.end - weekend.start == timedelta(hours=47)
    single = events["one-day@example.com"][0]
    assert single.end - single.start == timedelta(days=1)


def test_windows_tzid_and_vtimezone() -> None:
    result = read("outlook.ics")
    events = {e.summary: e for e in result.events}
    sync = events["Project sync"]
    assert sync.start == utc(2025, 6, 10, 7)  # 09:00 CEST
    assert sync.uid.endswith("AABBCCDDEE")  # folded UID joined
    assert sync.description == "\n"  # VALARM's DESCRIPTION is not the event's
    assert events["Out of office hint"].transparent  # X-MICROSOFT-CDO-BUSYSTATUS:FREE
    assert result.calendar_props.platform == "outlook"


def test_unknown_tzid_falls_back_to_calendar_zone_with_warning() -> None:
    result = read("outlook.ics", zone="Europe/Lisbon")
    custom = next(e for e in result.events if e.summary == "Custom zone meeting")
    assert custom.start == utc(2025, 6, 12, 8)  # 09:00 Lisbon summer time
    assert result.warnings["unknown_tzid"] >= 1


def test_broken_events_skipped_and_counted() -> None:
    result = read("broken_event.ics")
    assert sorted(e.uid for e in result.events) == ["good-1@example.com", "good-2@example.com"]
    assert result.skipped == 3
    assert result.skip_reasons == {"bad_dtstart": 1, "missing_dtstart": 1, "end_before_start": 1}
    two = by_uid(result)["good-2@example.com"][0]
    assert two.end - two.start == timedelta(minutes=45)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("login_page.html", NotACalendar),
        ("not_found.json", NotACalendar),
        ("truncated.ics", TruncatedFeed),
    ],
)
def test_unusable_bodies_raise_specific_errors(name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        read(name)


def test_html_is_named_in_error() -> None:
    with pytest.raises(NotACalendar) as caught:
        read("login_page.html")
    assert caught.value.sniffed == "HTML"


@pytest.mark.parametrize("body", [b"", b"  \r\n"])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(EmptyFeed):
        read_feed(body, window_start=JUNE[0], window_end=JUNE[1], default_zone="UTC",
                  max_events=5)  # fmt: skip


def test_too_many_events() -> None:
    with pytest.raises(TooManyEvents) as caught:
        read("google.ics", max_events=3)
    assert caught.value.limit == 3


def test_bad_request() -> None:
    with pytest.raises(InvalidRequest):
        read("google.ics", (datetime(2025, 6, 1), datetime(2025, 7, 1)))
    with pytest.raises(InvalidRequest):
        read("google.ics", (JUNE[1], JUNE[0]))
    with pytest.raises(InvalidRequest):
        read("google.ics", zone="Mars/Olympus")


def test_content_hash_stable_and_sensitive() -> None:
    first, again = read("google.ics"), read("google.ics")
    assert [e.content_hash for e in first.events] == [e.content_hash for e in again.events]
    body = (DATA / "google.ics").read_bytes()
    edited = body.replace(b"SUMMARY:Dentist", b"SUMMARY:Dentist (moved)")
    restamped = body.replace(b"DTSTAMP:20250601T120000Z", b"DTSTAMP:20250602T000000Z")

    def hashes(raw: bytes) -> dict[tuple[str, str | None], str]:
        got = read_feed(raw, window_start=JUNE[0], window_end=JUNE[1],
                        default_zone="UTC", max_events=100)  # fmt: skip
        return {e.key: e.content_hash for e in got.events}

    base = hashes(body)
    changed = {k for k, v in hashes(edited).items() if base[k] != v}
    assert changed == {("5m2c1s0a9b8c7d6e5f4g3h2i1j@google.com", None)}
    assert hashes(restamped) == base  # DTSTAMP churn is not a change


def test_long_history_prefilter_skips_without_parsing() -> None:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0"]
    for n in range(300):
        day = datetime(2015, 1, 1) + timedelta(days=n)
        lines += ["BEGIN:VEVENT", f"UID:h{n}", f"DTSTART:{day:%Y%m%dT090000Z}",
                  f"DTEND:{day:%Y%m%dT100000Z}", "END:VEVENT"]  # fmt: skip
    lines += ["BEGIN:VEVENT", "UID:now", "DTSTART:20250610T090000Z", "DTEND:20250610T100000Z",
              "END:VEVENT", "END:VCALENDAR"]  # fmt: skip
    body = "\r\n".join(lines).encode()
    result = read_feed(body, window_start=JUNE[0], window_end=JUNE[1], default_zone="UTC",
                       max_events=1000)  # fmt: skip
    assert [e.uid for e in result.events] == ["now"]
    assert result.outside_window == 300 and result.vevents == 301


def test_series_ended_before_window_is_not_expanded() -> None:
    body = (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:s\r\nDTSTART:20200106T090000Z\r\n"
            b"DTEND:20200106T100000Z\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\nEND:VEVENT\r\n"
            b"END:VCALENDAR\r\n")  # fmt: skip
    result = read_feed(body, window_start=JUNE[0], window_end=JUNE[1], default_zone="UTC",
                       max_events=10)  # fmt: skip
    assert result.events == [] and result.outside_window == 1
