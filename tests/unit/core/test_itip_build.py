"""Tests for core.itip.build: what the organizer's outgoing iTIP objects contain."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import icalendar
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.itip.build import (
    PRODID,
    EventSnapshot,
    Recipient,
    build_cancel,
    build_declinecounter,
    build_request,
    fold,
)
from core.itip.errors import InvalidCalendarInput

DTSTAMP = datetime(2025, 3, 1, 9, 30, 15, tzinfo=UTC)
URL = "https://parley.example/reschedule?r=AbC_123-xyz"
EVENT = EventSnapshot(
    uid="7f1c2a9e-booking@parley.example",
    sequence=0,
    start_utc=datetime(2025, 3, 4, 13, 0, tzinfo=UTC),
    end_utc=datetime(2025, 3, 4, 14, 0, tzinfo=UTC),
    summary="Practice Session",
    description="Bring your sheet music.",
    location="Studio 2",
    organizer_address="scheduling+abc123@example.org",
    organizer_name="Parley Scheduling",
    status="CONFIRMED",
)
HOST = Recipient(address="host@example.com", name="Hannah Host")

# Text a person could type: no surrogates, no control characters except newlines.
typed_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\n"),
    max_size=300,
)


def parse(ics: str) -> icalendar.Calendar:
    calendars = icalendar.Calendar.from_ical(ics, multiple=True)
    assert len(calendars) == 1
    return calendars[0]


def only_event(calendar: icalendar.Calendar) -> icalendar.Event:
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def attendees(event: icalendar.Event) -> list[icalendar.vCalAddress]:
    value = event.get("ATTENDEE")
    return value if isinstance(value, list) else [value]


def test_request_carries_the_required_itip_fields() -> None:
    calendar = parse(build_request(EVENT, HOST, dtstamp=DTSTAMP, reschedule_url=URL))
    event = only_event(calendar)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["PRODID"]) == PRODID == "-//Parley//Parley//EN"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(event["UID"]) == EVENT.uid
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == EVENT.start_utc
    assert event.decoded("DTEND") == EVENT.end_utc
    assert event.decoded("DTSTAMP") == DTSTAMP
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == "Practice Session"
    assert str(event["LOCATION"]) == "Studio 2"
    assert str(event["X-MICROSOFT-DISALLOW-COUNTER"]) == "FALSE"
    assert str(event["ORGANIZER"]) == "mailto:scheduling+abc123@example.org"
    assert event["ORGANIZER"].params["CN"] == "Parley Scheduling"


def test_request_names_exactly_the_recipient_as_attendee() -> None:
    event = only_event(parse(build_request(EVENT, HOST, dtstamp=DTSTAMP, reschedule_url=URL)))
    (attendee,) = attendees(event)
    assert str(attendee) == "mailto:host@example.com"
    assert dict(attendee.params) == {
        "CUTYPE": "INDIVIDUAL",
        "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE",
        "CN": "Hannah Host",
    }


def test_times_are_written_in_utc_whatever_zone_they_arrive_in() -> None:
    plus_two = timezone(timedelta(hours=2))
    moved = replace(
        EVENT,
        start_utc=datetime(2025, 3, 4, 15, 0, tzinfo=plus_two),
        end_utc=datetime(2025, 3, 4, 16, 0, tzinfo=plus_two),
    )
    ics = build_request(moved, HOST, dtstamp=DTSTAMP, reschedule_url=URL)
    assert "DTSTART:20250304T130000Z\r\n" in ics
    assert "DTEND:20250304T140000Z\r\n" in ics


def test_description_holds_the_text_and_the_reschedule_link() -> None:
    event = only_event(parse(build_request(EVENT, HOST, dtstamp=DTSTAMP, reschedule_url=URL)))
    assert str(event["DESCRIPTION"]) == f"Bring your sheet music.\n\nRequest a new time: {URL}"


def test_update_bumps_sequence_and_keeps_uid() -> None:
    update = replace(EVENT, sequence=3, status="TENTATIVE")
    event = only_event(parse(build_request(update, HOST, dtstamp=DTSTAMP, reschedule_url=URL)))
    assert int(event["SEQUENCE"]) == 3
    assert str(event["UID"]) == EVENT.uid
    assert str(event["STATUS"]) == "TENTATIVE"


def test_cancel_marks_the_whole_event_cancelled() -> None:
    calendar = parse(build_cancel(replace(EVENT, sequence=2), HOST, dtstamp=DTSTAMP))
    event = only_event(calendar)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 2
    (attendee,) = attendees(event)
    assert str(attendee) == "mailto:host@example.com"
    assert attendee.params["RSVP"] == "FALSE"


def test_declinecounter_carries_only_what_rfc_5546_allows() -> None:
    ics = build_declinecounter(
        replace(EVENT, sequence=4), HOST, dtstamp=DTSTAMP, comment="Sorry, that time is taken"
    )
    calendar = parse(ics)
    event = only_event(calendar)
    assert str(calendar["METHOD"]) == "DECLINECOUNTER"
    assert int(event["SEQUENCE"]) == 4
    assert str(event["COMMENT"]) == "Sorry, that time is taken"
    assert [str(a) for a in attendees(event)] == ["mailto:host@example.com"]
    for forbidden in ("DTSTART", "DTEND", "SUMMARY", "DESCRIPTION", "LOCATION", "STATUS"):
        assert forbidden not in event


def test_request_refuses_a_cancelled_snapshot() -> None:
    with pytest.raises(InvalidCalendarInput):
        build_request(replace(EVENT, status="CANCELLED"), HOST, dtstamp=DTSTAMP, reschedule_url=URL)


@pytest.mark.parametrize(
    "address",
    [
        "host@example.com\r\nATTENDEE:mailto:guest@example.com",
        "host@example.com,guest@example.com",
        'host"@example.com',
        "host@example.com:x",
        "no-at-sign",
        "a..b@example.com",
        "",
    ],
)
def test_addresses_that_could_smuggle_content_are_refused(address: str) -> None:
    with pytest.raises(InvalidCalendarInput):
        build_request(EVENT, Recipient(address, "X"), dtstamp=DTSTAMP, reschedule_url=URL)


@pytest.mark.parametrize(
    "change",
    [
        {"start_utc": datetime(2025, 3, 4, 13, 0)},
        {"end_utc": EVENT.start_utc},
        {"sequence": -1},
        {"uid": ""},
        {"uid": "a\r\nb"},
    ],
)
def test_invalid_snapshots_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(InvalidCalendarInput):
        build_request(replace(EVENT, **change), HOST, dtstamp=DTSTAMP, reschedule_url=URL)  # type: ignore[arg-type]


def test_naive_dtstamp_is_refused() -> None:
    with pytest.raises(InvalidCalendarInput):
        build_cancel(EVENT, HOST, dtstamp=datetime(2025, 3, 1))


def test_reschedule_url_with_whitespace_is_refused() -> None:
    with pytest.raises(InvalidCalendarInput):
        build_request(EVENT, HOST, dtstamp=DTSTAMP, reschedule_url="https://x/\r\nSUMMARY:evil")


def test_unknown_partstat_is_refused() -> None:
    with pytest.raises(InvalidCalendarInput):
        build_cancel(EVENT, Recipient("a@example.com", "A", "MAYBE"), dtstamp=DTSTAMP)  # type: ignore[arg-type]


def test_folding_keeps_multibyte_characters_whole() -> None:
    line = "DESCRIPTION:" + "ü€😀" * 40
    folded = fold(line)
    for physical in folded.split("\r\n"):
        assert len(physical.encode("utf-8")) <= 75
        physical.encode("utf-8").decode("utf-8")  # no split sequences
    assert folded.replace("\r\n ", "") == line


def test_every_physical_line_is_crlf_terminated_and_short() -> None:
    long_event = replace(EVENT, description="word, " * 200, summary="😀" * 60)
    ics = build_request(long_event, HOST, dtstamp=DTSTAMP, reschedule_url=URL)
    assert ics.endswith("\r\n")
    assert "\n" not in ics.replace("\r\n", "")
    assert "\r" not in ics.replace("\r\n", "")
    for physical in ics.split("\r\n")[:-1]:
        assert len(physical.encode("utf-8")) <= 75


@settings(max_examples=150, deadline=None)
@given(summary=typed_text, description=typed_text, location=typed_text)
@example(summary="a,b;c\\d\\n", description="\\;\\,", location=";")
@example(summary=" lead", description="x" * 74 + " y", location="")
@example(summary="Ŝ" * 100, description="\n\n", location="日本語の会議室")
def test_text_round_trips_through_escaping_and_folding(
    summary: str, description: str, location: str
) -> None:
    snapshot = replace(EVENT, summary=summary, description=description, location=location)
    ics = build_request(snapshot, HOST, dtstamp=DTSTAMP, reschedule_url=URL)
    for physical in ics.split("\r\n")[:-1]:
        assert len(physical.encode("utf-8")) <= 75
    event = only_event(parse(ics))
    assert str(event["SUMMARY"]) == summary
    assert str(event.get("LOCATION", "")) == location
    expected = "\n\n".join(
        [*([description.strip()] if description.strip() else []), f"Request a new time: {URL}"]
    )
    assert str(event["DESCRIPTION"]) == expected


@settings(max_examples=100, deadline=None)
@given(name=typed_text)
@example(name='Dr. "Doc" O\'Neil, PhD; MD: Berlin')
@example(name="caret^n^^ and back\\slash\\n")
def test_common_names_survive_as_quoted_parameters(name: str) -> None:
    ics = build_request(
        EVENT, Recipient("a@example.com", name), dtstamp=DTSTAMP, reschedule_url=URL
    )
    (attendee,) = attendees(only_event(parse(ics)))
    expected = re.sub(r"[\x00-\x1f\x7f]", " ", name).replace("\\", "/").strip()
    assert attendee.params.get("CN", "") == expected
    assert str(attendee) == "mailto:a@example.com"


def test_control_characters_in_text_are_dropped_and_carriage_returns_become_newlines() -> None:
    snapshot = replace(EVENT, summary="a\x00b\x07c", description="one\r\ntwo\rthree")
    event = only_event(parse(build_request(snapshot, HOST, dtstamp=DTSTAMP, reschedule_url=None)))
    assert str(event["SUMMARY"]) == "abc"
    assert str(event["DESCRIPTION"]) == "one\ntwo\nthree"
