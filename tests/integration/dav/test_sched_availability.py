"""Availability as VAVAILABILITY (RFC 7953) on the schedule inbox, over a real server: the
provider's weekly hours, exceptions and vacations read as calendar-availability; working
hours written the way Apple Calendar writes them become the provider's rules (the
availability API and the slots a guest sees change); what Parley cannot store is refused
with a reason and changes nothing; PARLEY_DAV_AVAILABILITY_WRITABLE=false answers 403."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import httpx
import pytest
from icalendar import Calendar

from core.runtime import Runtime
from tests.conftest import ADMIN_TOKEN
from tests.integration.api.helpers import HOURS, Clock
from tests.integration.dav.sched_helpers import NS, c, dav_client, found, make_provider, propfind

NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AVAILABILITY = "C:calendar-availability"

APPLE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//macOS 14.0//EN
CALSCALE:GREGORIAN
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
DTSTART:19810329T020000
TZNAME:CEST
TZOFFSETTO:+0200
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
DTSTART:19961027T030000
TZNAME:CET
TZOFFSETTO:+0100
END:STANDARD
END:VTIMEZONE
BEGIN:VAVAILABILITY
UID:0F5B9A52-8F1E-4C38-9C57-availability
DTSTAMP:20300304T080000Z
BEGIN:AVAILABLE
UID:0F5B9A52-1
DTSTAMP:20300304T080000Z
DTSTART;TZID=Europe/Berlin:20020101T100000
DTEND;TZID=Europe/Berlin:20020101T140000
RRULE:FREQ=WEEKLY;BYDAY=MO,WE
SUMMARY:Monday, Wednesday
END:AVAILABLE
BEGIN:AVAILABLE
UID:0F5B9A52-2
DTSTAMP:20300304T080000Z
DTSTART;TZID=Europe/Berlin:20020105T080000
DTEND;TZID=Europe/Berlin:20020105T120000
RRULE:FREQ=WEEKLY;BYDAY=SA
SUMMARY:Saturday
END:AVAILABLE
END:VAVAILABILITY
BEGIN:VAVAILABILITY
UID:0F5B9A52-vacation
DTSTAMP:20300304T080000Z
PRIORITY:1
DTSTART;VALUE=DATE:20300318
DTEND;VALUE=DATE:20300321
SUMMARY:Skiing
END:VAVAILABILITY
BEGIN:VAVAILABILITY
UID:0F5B9A52-sunday
DTSTAMP:20300304T080000Z
PRIORITY:1
DTSTART;TZID=Europe/Berlin:20300310T110000
DTEND;TZID=Europe/Berlin:20300310T130000
BEGIN:AVAILABLE
UID:0F5B9A52-sunday-open
DTSTAMP:20300304T080000Z
DTSTART;TZID=Europe/Berlin:20300310T110000
DTEND;TZID=Europe/Berlin:20300310T130000
END:AVAILABLE
END:VAVAILABILITY
END:VCALENDAR
"""


@pytest.fixture
def api(runtime: Runtime, dav_base: str) -> Iterator[httpx.Client]:
    runtime.clock = Clock(NOW)
    with httpx.Client(base_url=dav_base, headers=ADMIN, timeout=30) as client:
        yield client


@pytest.fixture
def dana(api: httpx.Client) -> dict[str, Any]:
    return make_provider(api, "dana")


def _read(dav: httpx.Client, user: str) -> str:
    answer = propfind(dav, f"/{user}/inbox/", AVAILABILITY)
    assert answer.status_code == 207, answer.text
    text = found(answer, f"/dav/{user}/inbox/")[c("calendar-availability")].text
    assert text
    return text


def _write(dav: httpx.Client, user: str, text: str, *, extra: str = "") -> httpx.Response:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><D:propertyupdate {NS}><D:set><D:prop>'
        f"<C:calendar-availability>{escape(text)}</C:calendar-availability>{extra}"
        "</D:prop></D:set></D:propertyupdate>"
    )
    return dav.request(
        "PROPPATCH", f"/{user}/inbox/", content=body, headers={"Content-Type": "application/xml"}
    )


def _statuses(answer: httpx.Response) -> dict[str, str]:
    """property Clark name → its propstat status in a PROPPATCH answer."""
    out = {}
    for propstat in ET.fromstring(answer.content).iter("{DAV:}propstat"):
        status = propstat.findtext("{DAV:}status") or ""
        for prop in propstat.find("{DAV:}prop") or ():
            out[prop.tag] = status
    return out


def _starts(api: httpx.Client, provider_id: str, day: str) -> list[str]:
    answer = api.get(
        f"/api/v1/providers/{provider_id}/slots",
        params={"start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z", "duration": "60"},
    )
    assert answer.status_code == 200, answer.text
    return [slot["start"][11:16] for slot in answer.json()["slots"]]


def _availability(api: httpx.Client, provider_id: str) -> dict[str, Any]:
    answer = api.get(f"/api/v1/providers/{provider_id}/availability")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_rules_exceptions_and_vacations_read_as_vavailability(
    api: httpx.Client, dav_base: str, dana: dict[str, Any]
) -> None:
    policy = {
        **HOURS,
        "exceptions": [
            {"date": "2030-03-12", "kind": "unavailable"},
            {"date": "2030-03-13", "kind": "unavailable", "start": "12:00", "end": "13:00"},
            {"date": "2030-03-16", "kind": "available", "start": "10:00", "end": "12:00"},
        ],
        "vacations": [{"from": "2030-04-01", "to": "2030-04-05"}],
    }
    put = api.put(f"/api/v1/providers/{dana['id']}/availability", json=policy)
    assert put.status_code == 200, put.text
    with dav_client(dav_base, dana) as dav:
        text = _read(dav, dana["username"])
    parsed = Calendar.from_ical(text)
    assert [str(tz["TZID"]) for tz in parsed.walk("VTIMEZONE")] == ["Europe/Berlin"]
    blocks = parsed.walk("VAVAILABILITY")
    weekly = blocks[0]
    assert "DTSTART" not in weekly and int(weekly["PRIORITY"]) == 9
    (hours,) = weekly.walk("AVAILABLE")
    assert hours["RRULE"]["BYDAY"] == ["MO", "TU", "WE", "TH", "FR"]
    start, end = hours.decoded("DTSTART"), hours.decoded("DTEND")
    assert (f"{start:%H:%M}", f"{end:%H:%M}", str(start.tzinfo)) == (
        "09:00",
        "17:00",
        "Europe/Berlin",
    )
    shapes = sorted(
        (
            f"{b.decoded('DTSTART'):%Y-%m-%d %H:%M}",
            f"{b.decoded('DTEND'):%Y-%m-%d %H:%M}",
            int(b["PRIORITY"]),
            len(b.walk("AVAILABLE")),
        )
        for b in blocks[1:]
    )
    assert shapes == [
        ("2030-03-12 00:00", "2030-03-13 00:00", 5, 0),  # closed all day
        ("2030-03-13 12:00", "2030-03-13 13:00", 5, 0),  # closed over lunch
        ("2030-03-16 10:00", "2030-03-16 12:00", 1, 1),  # opened on a Saturday
        ("2030-04-01 00:00", "2030-04-06 00:00", 5, 0),  # the vacation
    ]
    for secret in ("@example.org", "SUMMARY:Dana"):
        assert secret not in text

    # What Parley rendered, written back unchanged, changes nothing.
    before = _availability(api, dana["id"])
    with dav_client(dav_base, dana) as dav:
        again = _write(dav, dana["username"], text)
    assert again.status_code == 207 and set(_statuses(again).values()) == {"HTTP/1.1 200 OK"}
    assert _availability(api, dana["id"]) == before


def test_working_hours_written_by_a_calendar_app_reach_the_slots(
    api: httpx.Client, dav_base: str, dana: dict[str, Any]
) -> None:
    pid = dana["id"]
    assert _starts(api, pid, "2030-03-07")  # Thursday: open 09–17 before
    with dav_client(dav_base, dana) as dav:
        written = _write(dav, dana["username"], APPLE)
    assert written.status_code == 207, written.text
    assert _statuses(written) == {c("calendar-availability"): "HTTP/1.1 200 OK"}

    stored = _availability(api, pid)
    assert stored["timezone"] == "Europe/Berlin"
    assert stored["weekly"] == [
        {"days": ["mon"], "start": "10:00", "end": "14:00"},
        {"days": ["wed"], "start": "10:00", "end": "14:00"},
        {"days": ["sat"], "start": "08:00", "end": "12:00"},
    ]
    assert stored["vacations"] == [{"from": "2030-03-18", "to": "2030-03-20"}]
    assert stored["exceptions"] == [
        {"date": "2030-03-10", "kind": "available", "start": "11:00", "end": "13:00"}
    ]
    assert stored["lead_time_hours"] == HOURS["lead_time_hours"]  # settings untouched

    # Berlin is UTC+1: 10:00–14:00 local is 09:00–13:00 UTC.
    assert _starts(api, pid, "2030-03-06") == ["09:00", "09:30", "10:00", "10:30", "11:00",
                                                "11:30", "12:00"]  # fmt: skip
    assert _starts(api, pid, "2030-03-07") == []  # Thursday is closed now
    assert _starts(api, pid, "2030-03-09")[:1] == ["07:00"]  # Saturday 08:00 local
    assert _starts(api, pid, "2030-03-10") == ["10:00", "10:30", "11:00"]  # the open Sunday
    assert _starts(api, pid, "2030-03-11")[:1] == ["09:00"]
    assert _starts(api, pid, "2030-03-18") == []  # skiing

    with dav_client(dav_base, dana) as dav:
        shown = Calendar.from_ical(_read(dav, dana["username"]))
    days = sorted(str(b["RRULE"]["BYDAY"]) for b in shown.walk("AVAILABLE") if "RRULE" in b)
    assert days == ["['MO', 'WE']", "['SA']"]


def test_what_cannot_be_stored_is_refused_with_a_reason(
    api: httpx.Client, dav_base: str, dana: dict[str, Any]
) -> None:
    before = _availability(api, dana["id"])
    counted = APPLE.replace("RRULE:FREQ=WEEKLY;BYDAY=SA", "RRULE:FREQ=WEEKLY;BYDAY=SA;COUNT=3")
    with dav_client(dav_base, dana) as dav:
        user = dana["username"]
        limited = _write(dav, user, counted, extra="<D:displayname>Mine</D:displayname>")
        garbage = _write(dav, user, "BEGIN:VCALENDAR\r\nthis is no calendar")
        backwards = _write(dav, user, APPLE.replace("20020101T140000", "20020101T090000"))
    assert limited.status_code == 207, limited.text
    assert _statuses(limited) == {
        c("calendar-availability"): "HTTP/1.1 409 Conflict",
        "{DAV:}displayname": "HTTP/1.1 424 Failed Dependency",
    }
    assert "without an end" in limited.text and "valid-calendar-data" in limited.text
    assert _statuses(garbage)[c("calendar-availability")] == "HTTP/1.1 409 Conflict"
    assert "ends before it starts" in backwards.text
    assert _availability(api, dana["id"]) == before


def test_a_setting_makes_it_read_only(
    runtime: Runtime, api: httpx.Client, dav_base: str, dana: dict[str, Any]
) -> None:
    before = _availability(api, dana["id"])
    runtime.settings = runtime.settings.model_copy(update={"dav_availability_writable": False})
    with dav_client(dav_base, dana) as dav:
        refused = _write(dav, dana["username"], APPLE)
        still = _read(dav, dana["username"])
    assert refused.status_code == 403, refused.text
    assert "cannot-modify-protected-property" in refused.text
    assert "PARLEY_DAV_AVAILABILITY_WRITABLE" in refused.text
    assert _availability(api, dana["id"]) == before
    assert "BYDAY=MO,TU,WE,TH,FR" in still
    assert date(2030, 3, 4).weekday() == 0


def test_hours_in_another_zone_move_the_provider_there(
    api: httpx.Client, dav_base: str, dana: dict[str, Any]
) -> None:
    # A start and no end on the VAVAILABILITY (it lasts for ever), no VTIMEZONE: the
    # IANA name is enough, and the provider's zone follows the hours.
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VAVAILABILITY\r\n"
        "UID:ny\r\nDTSTAMP:20300304T080000Z\r\nDTSTART;TZID=America/New_York:20300101T000000\r\n"
        "BEGIN:AVAILABLE\r\nUID:ny-1\r\nDTSTAMP:20300304T080000Z\r\n"
        "DTSTART;TZID=America/New_York:20300101T090000\r\nDURATION:PT3H\r\n"
        "RRULE:FREQ=WEEKLY;BYDAY=TU\r\nEND:AVAILABLE\r\nEND:VAVAILABILITY\r\nEND:VCALENDAR\r\n"
    )
    with dav_client(dav_base, dana) as dav:
        written = _write(dav, dana["username"], text)
    assert _statuses(written) == {c("calendar-availability"): "HTTP/1.1 200 OK"}, written.text
    stored = _availability(api, dana["id"])
    assert stored["timezone"] == "America/New_York"
    assert stored["weekly"] == [{"days": ["tue"], "start": "09:00", "end": "12:00"}]
    # New York keeps daylight time from 10 March 2030: 09:00 EDT is 13:00 UTC.
    assert _starts(api, dana["id"], "2030-03-12") == ["13:00", "13:30", "14:00", "14:30", "15:00"]
    assert _starts(api, dana["id"], "2030-03-05") == ["14:00", "14:30", "15:00", "15:30", "16:00"]
