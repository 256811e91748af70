"""Reading iTIP calendar bodies: content lines, time zones, durations, overrides, errors."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from core.itip.errors import (
    BadProperty,
    BadStructure,
    ItipError,
    MissingProperty,
    NoEvent,
    NoMethod,
    NotCalendar,
)
from core.itip.read import parse_duration, parse_line, read_itip, unescape_text, unfold

CORPUS = Path(__file__).parents[3] / ".." / "shared" / "corpus" / "itip-ics"


def cal(*event_lines: str, method: str | None = "REPLY", extra: str = "") -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN"]
    if method:
        head.append(f"METHOD:{method}")
    body = ["BEGIN:VEVENT", "UID:u1", "DTSTAMP:20260505T101010Z", *event_lines, "END:VEVENT"]
    return "\r\n".join([*head, *([extra] if extra else []), *body, "END:VCALENDAR"]) + "\r\n"


def test_parse_line_honours_quoted_params_with_colons_and_semicolons() -> None:
    line = parse_line('ATTENDEE;CN="Doe; John: Jr";PARTSTAT=accepted:mailto:J@x.example')
    assert line is not None
    assert line.name == "ATTENDEE"
    assert line.params == {"CN": "Doe; John: Jr", "PARTSTAT": "accepted"}
    assert line.value == "mailto:J@x.example"


def test_parse_line_rejects_line_without_value() -> None:
    assert parse_line("no colon here") is None


def test_unfold_joins_space_and_tab_continuations() -> None:
    assert unfold("SUMMARY:Long\r\n  title\r\n\tend\nX:1") == ["SUMMARY:Long title" + "end", "X:1"]


def test_unescape_text() -> None:
    assert unescape_text(r"a\, b\; c\\d\nnext\Nlast") == "a, b; c\\d\nnext\nlast"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1D", timedelta(days=1)),
        ("-P2W", -timedelta(weeks=2)),
        ("P1DT2H3M4S", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "1H", "P1X", ""])
def test_parse_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(BadProperty):
        parse_duration(text)


def test_windows_zone_name_with_quotes_is_resolved_to_utc() -> None:
    msg = read_itip(
        cal(
            'DTSTART;TZID="W. Europe Standard Time":20260512T100000',
            "DTEND;TZID=W. Europe Standard Time:20260512T103000",
        )
    )
    assert msg.dtstart == datetime(2026, 5, 12, 8, 0, tzinfo=UTC)
    assert msg.dtend == datetime(2026, 5, 12, 8, 30, tzinfo=UTC)
    assert not msg.event.floating


def test_utc_floating_and_date_values() -> None:
    utc = read_itip(cal("DTSTART:20260512T100000Z", "DURATION:PT45M"))
    assert utc.dtend == datetime(2026, 5, 12, 10, 45, tzinfo=UTC)
    floating = read_itip(cal("DTSTART:20260512T100000", "DTEND:20260512T110000"))
    assert floating.dtstart == datetime(2026, 5, 12, 10, 0)
    assert floating.event.floating
    allday = read_itip(cal("DTSTART;VALUE=DATE:20260512"))
    assert allday.dtstart == date(2026, 5, 12)
    assert allday.dtend == date(2026, 5, 13)  # RFC 5545: no DTEND on a DATE is one day


def test_unknown_tzid_is_reported_not_guessed() -> None:
    msg = read_itip(cal("DTSTART;TZID=Mars/Olympus:20260512T100000"))
    assert msg.dtstart == datetime(2026, 5, 12, 10, 0)
    assert msg.event.unresolved_tzids == ("Mars/Olympus",)


def test_absurd_tzid_is_unresolved_not_an_error() -> None:
    tzid = "W. Europe Standard Time" + "x" * 300
    msg = read_itip(cal(f"DTSTART;TZID={tzid}:20260512T100000"))
    assert msg.event.unresolved_tzids == (tzid,)
    tzid = "Europe/" + "b" * 190
    msg = read_itip(cal(f"DTSTART;TZID={tzid}:20260512T100000"))
    assert msg.event.unresolved_tzids == (tzid,)


def test_custom_vtimezone_resolved_by_x_lic_location_or_single_offset() -> None:
    located = "\r\n".join(
        ["BEGIN:VTIMEZONE", "TZID:My Zone", "X-LIC-LOCATION:America/New_York", "END:VTIMEZONE"]
    )
    msg = read_itip(cal("DTSTART;TZID=My Zone:20260105T090000", extra=located))
    assert msg.dtstart == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    fixed = "\r\n".join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:Custom+0530",
            "BEGIN:STANDARD",
            "DTSTART:19700101T000000",
            "TZOFFSETFROM:+0530",
            "TZOFFSETTO:+0530",
            "END:STANDARD",
            "END:VTIMEZONE",
        ]
    )
    msg = read_itip(cal("DTSTART;TZID=Custom+0530:20260105T090000", extra=fixed))
    assert msg.dtstart == datetime(2026, 1, 5, 3, 30, tzinfo=UTC)


def test_attendee_fields_and_response_comment() -> None:
    msg = read_itip(
        cal(
            "ORGANIZER;CN=Org:MAILTO:Org@Parley.Example",
            'ATTENDEE;CN="Guest";PARTSTAT=tentative;ROLE=OPT-PARTICIPANT;RSVP=TRUE;',
            ' X-RESPONSE-COMMENT="Later\\, please":mailto:Guest@Example.COM',
            "ATTENDEE;EMAIL=room@example.com:urn:uuid:1234",
            "COMMENT:first",
            "COMMENT:second",
        )
    )
    guest = msg.event.attendee("MAILTO:guest@example.com")
    assert guest is not None
    assert (guest.cn, guest.partstat, guest.role, guest.rsvp) == (
        "Guest",
        "TENTATIVE",
        "OPT-PARTICIPANT",
        True,
    )
    assert guest.response_comment == "Later, please"
    assert msg.attendees[1].address == "room@example.com"
    assert msg.organizer == "org@parley.example"
    assert msg.comment == "first\nsecond"


def test_method_from_content_type_when_file_has_none() -> None:
    msg = read_itip(cal("DTSTART:20260512T100000Z", method=None), method_hint="reply")
    assert (msg.method, msg.method_from_content_type) == ("REPLY", True)
    with pytest.raises(NoMethod):
        read_itip(cal("DTSTART:20260512T100000Z", method=None))


def test_file_method_wins_over_content_type() -> None:
    assert read_itip(cal(method="COUNTER"), method_hint="REPLY").method == "COUNTER"


def test_master_and_override_are_split() -> None:
    text = cal("DTSTART:20260512T100000Z", "RRULE:FREQ=DAILY;COUNT=3").replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20260505T101010Z\r\n"
        "RECURRENCE-ID:20260513T100000Z\r\nDTSTART:20260513T120000Z\r\nSEQUENCE:2\r\n"
        "END:VEVENT\r\nEND:VCALENDAR",
    )
    msg = read_itip(text.encode())
    assert msg.recurrence_id is None
    assert len(msg.overrides) == 1
    assert msg.overrides[0].recurrence_id == datetime(2026, 5, 13, 10, 0, tzinfo=UTC)
    assert msg.overrides[0].sequence == 2


def test_valarm_and_x_props() -> None:
    msg = read_itip(
        cal(
            "X-MICROSOFT-DISALLOW-COUNTER:TRUE",
            "BEGIN:VALARM",
            "UID:not-the-event",
            "END:VALARM",
        )
    )
    assert msg.uid == "u1"
    assert msg.event.x_prop("x-microsoft-disallow-counter") == "TRUE"


def test_cp1252_bytes_are_read() -> None:
    msg = read_itip(cal("SUMMARY:Caf\u00e9").encode("cp1252"))
    assert msg.summary == "Café"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("hello world", NotCalendar),
        (b"\x00\xff\xfe garbage", NotCalendar),
        ("BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VTODO\nUID:x\nEND:VTODO\nEND:VCALENDAR", NoEvent),
        ("BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCALENDAR", MissingProperty),
        ("BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nUID:x\nEND:VCALENDAR", BadStructure),
        ("BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nUID:x\n", BadStructure),
        (cal("DTSTART:20260230T100000Z"), BadProperty),
        (cal("DTEND:19970701T10300Z"), BadProperty),
        (cal("SEQUENCE:one"), BadProperty),
        (cal("DTSTART:20260512T100000Z", "DURATION:soon"), BadProperty),
    ],
)
def test_errors(text: str | bytes, error: type[ItipError]) -> None:
    with pytest.raises(error):
        read_itip(text)


def test_error_docstrings_say_when_raised() -> None:
    from core.itip import errors

    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert obj.__doc__ and obj.__doc__.strip(), name


def _blocks(path: Path) -> list[str]:
    return [b for b in re.split(r"\n(?=BEGIN:VCALENDAR)", path.read_text()) if b.strip()]


@pytest.mark.skipif(not CORPUS.exists(), reason="shared corpus not present")
def test_libical_incoming_agrees_with_icalendar() -> None:
    """Our reader and icalendar agree on METHOD, UID, SEQUENCE and attendee states."""
    checked = 0
    for block in _blocks(CORPUS / "libical" / "incoming.ics"):
        reference = icalendar.Calendar.from_ical(block)
        events = [c for c in reference.walk("VEVENT")]
        if not events:
            with pytest.raises(NoEvent):
                read_itip(block)
            continue
        try:
            ours = read_itip(block)
        except BadProperty:
            continue  # libical's #I1 carries a deliberately broken DTEND
        assert ours.method == str(reference["METHOD"])
        assert ours.uid == str(events[0]["UID"])
        assert ours.sequence == int(events[0].get("SEQUENCE", 0))
        theirs = events[0].get("ATTENDEE", [])
        theirs = theirs if isinstance(theirs, list) else [theirs]
        assert [a.partstat for a in ours.attendees] == [
            str(t.params.get("PARTSTAT", "NEEDS-ACTION")).upper() for t in theirs
        ]
        checked += 1
    assert checked >= 10
