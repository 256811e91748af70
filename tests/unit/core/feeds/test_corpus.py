"""Every real-world calendar in the shared corpus reads without surprises."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

from core.feeds import FeedError, read_feed

CORPUS = Path(__file__).parents[4] / ".." / "shared" / "corpus" / "recurrence-tz"
FILES = sorted(CORPUS.rglob("*.ics")) if CORPUS.is_dir() else []
pytestmark = pytest.mark.skipif(not FILES, reason="shared corpus not present")
WINDOW = (datetime(2010, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_reads_or_raises_only_feed_errors(path: Path) -> None:
    try:
        result = read_feed(path.read_bytes(), window_start=WINDOW[0], window_end=WINDOW[1],
                           default_zone="Europe/Berlin", max_events=20_000)  # fmt: skip
    except FeedError:
        return
    for event in result.events:
        assert event.start.tzinfo is UTC and event.end >= event.start


def _reference(path: Path, start: datetime, end: datetime) -> list[datetime]:
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    found = []
    for event in recurring_ical_events.of(calendar).between(start, end):
        value = event["DTSTART"].dt
        if not isinstance(value, datetime):
            value = datetime.combine(value, datetime.min.time())
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # the files compared use no floating times
        found.append(value.astimezone(UTC))
    return sorted(found)


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("each_week_but_two_deleted.ics", date(2019, 1, 1), date(2020, 1, 1)),
        ("issue_20_exdate_ignored.ics", date(2019, 10, 1), date(2020, 6, 1)),
        ("issue_62_moved_event.ics", date(2021, 11, 1), date(2022, 6, 1)),
        ("issue_48_dst.ics", date(2020, 9, 1), date(2021, 6, 1)),
        ("issue_28_rrule_with_UTC_endinginZ.ics", date(2020, 1, 1), date(2021, 1, 1)),
    ],
)
def test_expansion_matches_recurring_ical_events(name: str, start: date, end: date) -> None:
    path = next((p for p in FILES if p.name == name), None)
    if path is None:
        pytest.skip(f"{name} not in corpus")
    lo, hi = (datetime.combine(d, datetime.min.time(), tzinfo=UTC) for d in (start, end))
    ours = read_feed(path.read_bytes(), window_start=lo, window_end=hi, default_zone="UTC",
                     max_events=5000)  # fmt: skip
    expected = _reference(path, lo, hi)
    assert expected, "the window must hold occurrences for the comparison to mean anything"
    assert sorted(e.start for e in ours.events) == expected
