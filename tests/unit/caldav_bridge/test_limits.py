"""The recurrence cost estimate reads only the rule lines of the text, as vobject would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from caldav_bridge.limits import estimated_steps

UNTIL = datetime(2030, 3, 5, tzinfo=UTC)
PARIS = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "END:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def _calendar(dtstart: str, rule: str, before: str = "", inside: str = "") -> str:
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{before}BEGIN:VEVENT\r\nUID:x@test\r\n"
        f"DTSTART{dtstart}\r\n{rule}DESCRIPTION:{'x' * 70}\r\n {'y' * 70}\r\n{inside}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        (_calendar(":20300304T000000Z", "RRULE:FREQ=SECONDLY\r\n"), 86400),
        (_calendar(":20300304T000000Z", "rrule:freq=minutely;\r\n bysecond=1,2\r\n"), 2880),
        (_calendar(";TZID=Europe/Paris:20300304T010000", "RRULE:FREQ=HOURLY\r\n", PARIS), 24),
        (_calendar(";VALUE=DATE:20300301", "RRULE:FREQ=DAILY;COUNT=2\r\n"), 2),
        (_calendar(":20300304T000000Z", "RRULE:FREQ=SECONDLY;UNTIL=20300304T000100Z\r\n"), 60),
        # A VALARM's or VTIMEZONE's lines are not the event's.
        (_calendar(":20300304T000000Z", "", PARIS, "BEGIN:VALARM\r\nEND:VALARM\r\n"), 0),
    ],
)
def test_estimated_steps(text: str, steps: int) -> None:
    assert estimated_steps(text, UNTIL) == steps
