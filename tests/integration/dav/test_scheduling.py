"""Implicit scheduling (RFC 6638) through the CalDAV server: a provider's PUT of an event it
organizes mails each attendee a private REQUEST through the outbox; changes, removals and
deletes send updates and CANCELs; Schedule-Tag and If-Schedule-Tag-Match over HTTP."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import caldav
import httpx
import icalendar
import pytest
from sqlalchemy import select

from core.db.models import DavAttendee, DavObject, OutboundMessage
from core.runtime import Runtime
from tests.integration.dav.conftest import DavUser, add_provider, calendar_named
from tests.itip_restrictions import restriction_errors

START = datetime(2030, 3, 10, 9, tzinfo=UTC)
ANNA, BOB = "anna@guests.example", "bob@other.example"
FMT = "%Y%m%dT%H%M%SZ"

_OPEN: list[Any] = []


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def scheduled_ics(
    uid: str,
    start: datetime,
    organizer: str,
    attendees: list[str],
    *,
    client: tuple[str, ...] = (),
    extra: str = "",
) -> str:
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Apple Inc.//iCal 5.0//EN", "BEGIN:VEVENT",
        f"UID:{uid}", "DTSTAMP:20300101T000000Z", f"DTSTART:{start:{FMT}}",
        f"DTEND:{start + timedelta(hours=1):{FMT}}", "SUMMARY:Planning",
        f"ORGANIZER;CN=Alice:mailto:{organizer}",
        f"ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED:mailto:{organizer}",
    ]  # fmt: skip
    for address in attendees:
        agent = ";SCHEDULE-AGENT=CLIENT" if address in client else ""
        name = address.split("@")[0].title()
        lines.append(f"ATTENDEE;CN={name};PARTSTAT=NEEDS-ACTION;RSVP=TRUE{agent}:mailto:{address}")
    lines += [*(extra.splitlines()), "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Soon",
              "TRIGGER:-PT15M", "END:VALARM", "END:VEVENT", "END:VCALENDAR"]  # fmt: skip
    return "\r\n".join(line for line in lines if line) + "\r\n"


def outbox(runtime: Runtime) -> list[OutboundMessage]:
    with runtime.sessions() as session:
        query = select(OutboundMessage).order_by(OutboundMessage.id)
        return list(session.scalars(query))


def itip_of(row: OutboundMessage) -> icalendar.Calendar:
    message = email.message_from_bytes(row.mime, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_content())
    raise AssertionError("no calendar part")


def event_of(row: OutboundMessage) -> Any:
    (event,) = itip_of(row).walk("VEVENT")
    return event


def attendees(event: Any) -> list[Any]:
    value = event.get("ATTENDEE")
    return [] if value is None else (value if isinstance(value, list) else [value])


def put(base: str, user: DavUser, href: str, text: str, **headers: str) -> httpx.Response:
    return httpx.put(
        f"{base}/dav/{user.username}/blocks/{href}",
        content=text,
        auth=(user.username, user.password),
        headers={"Content-Type": "text/calendar", **headers},
    )


@pytest.fixture
def alice(runtime: Runtime) -> DavUser:
    return add_provider(runtime, "alice")


def test_put_with_two_attendees_sends_two_private_requests(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    client = caldav.DAVClient(
        url=f"{dav_base}/dav/", username=alice.username, password=alice.password
    )
    _OPEN.append(client)
    blocks = calendar_named(client, "blocks")
    blocks.save_event(scheduled_ics("ev1@apple", START, "alice@example.org", [ANNA, BOB]))
    sent = outbox(runtime)
    assert sorted(r.recipient for r in sent) == [ANNA, BOB]
    organizers = set()
    for row in sent:
        calendar = itip_of(row)
        assert str(calendar["METHOD"]) == "REQUEST"
        assert restriction_errors(calendar.to_ical().decode()) == []
        event = event_of(row)
        (attendee,) = attendees(event)
        assert str(attendee).lower() == f"mailto:{row.recipient}"
        assert attendee.params["RSVP"] == "TRUE" and "SCHEDULE-STATUS" not in attendee.params
        organizer = str(event["ORGANIZER"]).removeprefix("mailto:")
        assert organizer.startswith("scheduling+") and "alice@example.org" not in row.mime.decode()
        assert event["ORGANIZER"].params["CN"] == "Alice"
        assert int(event["SEQUENCE"]) == 0
        assert event.decoded("DTSTART") == START
        assert "Request a new time: http" in str(event["DESCRIPTION"])
        assert not list(event.walk("VALARM"))
        other = BOB if row.recipient == ANNA else ANNA
        assert other not in row.mime.decode(), "one attendee's copy names the other"
        organizers.add(organizer)
    assert len(organizers) == 2, "each attendee answers to a tag of their own"
    (stored,) = blocks.events()
    event = stored.icalendar_component
    status = {str(a).lower(): a.params.get("SCHEDULE-STATUS") for a in attendees(event)}
    assert status == {
        f"mailto:{ANNA}": "1.1",
        f"mailto:{BOB}": "1.1",
        "mailto:alice@example.org": None,
    }


def test_schedule_tag_header_property_and_precondition(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    text = scheduled_ics("ev2@apple", START, "alice@example.org", [ANNA, BOB])
    created = put(dav_base, alice, "ev2.ics", text)
    assert created.status_code == 201
    assert "ETag" not in created.headers, "Parley changed the object: no ETag (RFC 4791 5.3.4)"
    tag = created.headers["Schedule-Tag"]
    options = httpx.options(f"{dav_base}/dav/alice/", auth=(alice.username, alice.password))
    assert "calendar-auto-schedule" in options.headers["DAV"]
    got = httpx.get(f"{dav_base}/dav/alice/blocks/ev2.ics", auth=(alice.username, alice.password))
    assert got.headers["Schedule-Tag"] == tag
    body = (
        '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        "<d:prop><d:getetag/><c:schedule-tag/></d:prop></d:propfind>"
    )
    found = httpx.request(
        "PROPFIND", f"{dav_base}/dav/alice/blocks/", content=body,
        headers={"Depth": "1"}, auth=(alice.username, alice.password),
    )  # fmt: skip
    assert found.status_code == 207 and f"schedule-tag>{tag}<" in found.text.replace("&quot;", '"')
    refused = put(dav_base, alice, "ev2.ics", text, **{"If-Schedule-Tag-Match": '"nope"'})
    assert refused.status_code == 412
    same = put(dav_base, alice, "ev2.ics", text, **{"If-Schedule-Tag-Match": tag})
    assert same.status_code == 204 and same.headers["Schedule-Tag"] == tag
    assert len(outbox(runtime)) == 2, "an unchanged PUT sends nothing again"
    moved = put(dav_base, alice, "ev2.ics", text.replace("T090000Z", "T100000Z"))
    assert moved.headers["Schedule-Tag"] != tag
    deleted = httpx.delete(
        f"{dav_base}/dav/alice/blocks/ev2.ics",
        auth=(alice.username, alice.password),
        headers={"If-Schedule-Tag-Match": tag},
    )
    assert deleted.status_code == 412


def test_move_remove_client_agent_and_delete(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    uid = "ev3@apple"
    put(dav_base, alice, "ev3.ics", scheduled_ics(uid, START, "alice@example.org", [ANNA, BOB]))
    later = START + timedelta(hours=2)
    put(dav_base, alice, "ev3.ics", scheduled_ics(uid, later, "alice@example.org", [ANNA, BOB]))
    updates = outbox(runtime)[2:]
    assert sorted(r.recipient for r in updates) == [ANNA, BOB]
    for row in updates:
        assert int(event_of(row)["SEQUENCE"]) == 1
        assert event_of(row).decoded("DTSTART") == later
    put(dav_base, alice, "ev3.ics", scheduled_ics(uid, later, "alice@example.org", [ANNA]))
    (cancel,) = outbox(runtime)[4:]
    assert cancel.recipient == BOB and str(itip_of(cancel)["METHOD"]) == "CANCEL"
    assert restriction_errors(itip_of(cancel).to_ical().decode()) == []
    assert int(event_of(cancel)["SEQUENCE"]) == 2 and ANNA not in cancel.mime.decode()
    carol = "carol@client.example"
    put(
        dav_base, alice, "ev3.ics",
        scheduled_ics(uid, later, "alice@example.org", [ANNA, carol], client=(carol,)),
    )  # fmt: skip
    assert outbox(runtime)[5:] == [], "SCHEDULE-AGENT=CLIENT: the calendar app mails carol"
    gone = httpx.delete(
        f"{dav_base}/dav/alice/blocks/ev3.ics", auth=(alice.username, alice.password)
    )
    assert gone.status_code == 200
    (last,) = outbox(runtime)[5:]
    assert last.recipient == ANNA and str(itip_of(last)["METHOD"]) == "CANCEL"
    assert str(event_of(last)["STATUS"]) == "CANCELLED"


def test_events_the_provider_does_not_organize_send_nothing(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    text = scheduled_ics("ev4@other", START, "someone@else.example", [ANNA])
    assert put(dav_base, alice, "ev4.ics", text).status_code == 201
    plain = scheduled_ics("ev5@apple", START, "alice@example.org", [])
    created = put(dav_base, alice, "ev5.ics", plain)
    assert created.status_code == 201 and "Schedule-Tag" not in created.headers
    assert created.headers["ETag"], "a plain event is stored as sent"
    assert outbox(runtime) == []
    with runtime.sessions() as session:
        assert session.scalars(select(DavAttendee)).all() == []
        assert len(session.scalars(select(DavObject)).all()) == 2
