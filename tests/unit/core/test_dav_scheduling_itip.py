"""The per-attendee iTIP objects Parley builds from a provider's stored event: one
attendee, Parley's organizer, no alarms or private extensions, and libical's iTIP
restriction check passes for REQUEST and CANCEL (also with zones and overrides)."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
import pytest

from core.db.models import DavAttendee
from core.services.dav_scheduling import content_digest, itip_text
from tests.itip_restrictions import restriction_errors

NOW = datetime(2030, 3, 1, 9, tzinfo=UTC)
RECURRING = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly@tb
DTSTAMP:20300101T000000Z
DTSTART;TZID=Europe/Berlin:20300304T100000
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=5
SUMMARY:Weekly
ORGANIZER;CN=Alice:mailto:alice@example.org
ATTENDEE;CN=Anna;PARTSTAT=NEEDS-ACTION:mailto:anna@guests.example
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;SCHEDULE-STATUS=1.1:mailto:bob@other.example
X-MOZ-SEND-INVITATIONS:TRUE
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:soon
TRIGGER:-PT5M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:weekly@tb
RECURRENCE-ID;TZID=Europe/Berlin:20300311T100000
DTSTAMP:20300101T000000Z
DTSTART;TZID=Europe/Berlin:20300311T120000
DURATION:PT1H
SUMMARY:Weekly (moved)
ORGANIZER;CN=Alice:mailto:alice@example.org
ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@other.example
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


def _attendee(address: str) -> DavAttendee:
    return DavAttendee(id="sca_x", tenant_id="default", address=address, plus_tag="t")


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
@pytest.mark.parametrize("address", ["anna@guests.example", "bob@other.example"])
def test_one_attendee_per_copy_and_libical_accepts_it(method: str, address: str) -> None:
    text = itip_text(
        icalendar.Calendar.from_ical(RECURRING), _attendee(address), method,
        organizer="scheduling+t@parley.example", organizer_name="Alice", sequence=2, now=NOW,
        link="https://parley.example/schedule/reschedule?r=abc",
    )  # fmt: skip
    assert restriction_errors(text) == []
    calendar = icalendar.Calendar.from_ical(text)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == (2 if address.startswith("bob") else 1)
    for event in events:
        assert str(event["ATTENDEE"]) == f"mailto:{address}"
        assert "SCHEDULE-STATUS" not in event["ATTENDEE"].params
        assert str(event["ORGANIZER"]) == "mailto:scheduling+t@parley.example"
        assert int(event["SEQUENCE"]) == 2
        assert not list(event.walk("VALARM")) and "X-MOZ-SEND-INVITATIONS" not in event
    other = "bob" if address.startswith("anna") else "anna"
    assert other not in text and "alice@example.org" not in text
    assert ("Request a new time" in text) == (method == "REQUEST")
    assert list(calendar.walk("VTIMEZONE")), "the zone the times name goes along"


def test_the_restriction_check_can_fail() -> None:
    broken = RECURRING.replace("ORGANIZER;CN=Alice:mailto:alice@example.org\r\n", "").replace(
        "VERSION:2.0", "VERSION:2.0\r\nMETHOD:REQUEST"
    )
    assert any("ORGANIZER" in e for e in restriction_errors(broken))


def test_the_digest_ignores_answers_alarms_and_stamps_but_not_times() -> None:
    base = content_digest(RECURRING)
    answered = RECURRING.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
    restamped = RECURRING.replace("DTSTAMP:20300101T000000Z", "DTSTAMP:20300202T000000Z")
    assert content_digest(answered) == base == content_digest(restamped)
    assert content_digest(RECURRING.replace("TRIGGER:-PT5M", "TRIGGER:-PT9M")) == base
    assert content_digest(RECURRING.replace("T100000\r\nDURATION", "T110000\r\nDURATION")) != base
