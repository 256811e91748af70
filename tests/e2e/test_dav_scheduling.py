"""A provider schedules from its own calendar app over CalDAV (RFC 6638), end to end.

`parley serve` with a local relay; the `caldav` client plays Apple Calendar. Creating an
event with two attendees mails each a private REQUEST from the organizer mailbox; an
Outlook-shaped ACCEPTED REPLY and a Gmail-shaped COUNTER come back over SMTP: the stored
object shows ACCEPTED under the same Schedule-Tag, the schedule inbox holds the REPLY,
the provider is asked to approve the new time; moving the event sends SEQUENCE + 1 to
both, deleting it CANCEL to both. Every message Parley sends is read by icalendar and
ical.js and passes libical's iTIP restriction check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import caldav
import httpx
import pytest

from tests.e2e.relay import Received, running_relay
from tests.e2e.test_negotiation_smtp import (
    Parley,
    attendees,
    decoded,
    event_of,
    is_itip,
    itip_of,
    new_mail,
    parts,
    run_icaljs,
    serve_parley,
    stop_parley,
    views,
)
from tests.integration.dav.scheduling_mails import gmail_counter, outlook_accept
from tests.itip_restrictions import restriction_errors

pytestmark = pytest.mark.slow

PROVIDER = "alice@provider.example"
ANNA, BOB = "anna@outlook.example", "bob@gmail.example"
FMT = "%Y%m%dT%H%M%SZ"
APPROVE = re.compile(r"https?://[^\s\"'<>]+/schedule/approve\?t=[A-Za-z0-9_\-%.~]+")


@pytest.fixture
def parley(tmp_path: Path, db_url: str) -> Iterator[Parley]:
    with running_relay() as (sink, relay_port):
        proc, parley_ = serve_parley(tmp_path, db_url, sink, relay_port)
        try:
            yield parley_
        finally:
            parley_.http.close()
            stop_parley(proc)


def event_text(uid: str, start: datetime, attendees_: list[str]) -> str:
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Apple Inc.//macOS 14.0//EN",
        "BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{datetime.now(UTC):{FMT}}",
        f"DTSTART:{start:{FMT}}", f"DTEND:{start + timedelta(hours=1):{FMT}}",
        "SUMMARY:Quarterly planning", "LOCATION:Room 4",
        f"ORGANIZER;CN=Alice Provider:mailto:{PROVIDER}",
        f"ATTENDEE;CN=Alice Provider;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:{PROVIDER}",
        *(f"ATTENDEE;CN={a.split('@')[0].title()};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}"
          for a in attendees_),
        "END:VEVENT", "END:VCALENDAR",
    ]  # fmt: skip
    return "\r\n".join(lines) + "\r\n"


def check_sent(messages: list[Received], method: str) -> None:
    """What every sent iTIP message must pass: one private copy, read alike by icalendar,
    ical.js and libical's restriction check."""
    texts = []
    for message in messages:
        found, _ = itip_of(message)
        assert found == method
        (attendee,) = attendees(event_of(message))
        assert str(attendee).lower() == f"mailto:{message.recipient}"
        organizer = str(event_of(message)["ORGANIZER"]).removeprefix("mailto:")
        assert organizer.startswith("scheduling+") and organizer.endswith("@parley.test")
        assert event_of(message)["ORGANIZER"].params["CN"] == "Alice Provider"
        others = {ANNA, BOB, PROVIDER} - {message.recipient}
        for view in views(message):
            assert not any(o in view for o in others), f"{message.recipient}'s copy leaks"
        inline = [decoded(p) for p in parts(message) if p.get_content_type() == "text/calendar"]
        texts.append(inline[0])
        assert restriction_errors(inline[0]) == []
    for result in run_icaljs(texts):
        assert "error" not in result, result
        assert result["method"] == method and len(result["events"][0]["attendees"]) == 1


def test_provider_schedules_from_its_calendar_app(parley: Parley) -> None:
    created = parley.api(
        "POST", "/providers",
        json={"name": "Alice Provider", "email": PROVIDER, "timezone": "Europe/Berlin",
              "slug": "alice"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    provider_id = created.json()["id"]
    issued = parley.api("POST", f"/providers/{provider_id}/app-passwords", json={"label": "mac"})
    assert issued.status_code == 201, issued.text
    user, password = issued.json()["username"], issued.json()["password"]
    client = caldav.DAVClient(url=f"{parley.base}/dav/", username=user, password=password)
    try:
        run_scenario(parley, client, user, password)
    finally:
        client.close()


def run_scenario(parley: Parley, client: caldav.DAVClient, user: str, password: str) -> None:
    blocks = next(c for c in client.principal().calendars() if str(c.url).endswith("/blocks/"))
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    uid = "planning-e2e@apple.example"
    saved = blocks.save_event(event_text(uid, start, [ANNA, BOB]))
    requests = new_mail(parley.relay, 0, lambda m: is_itip(m, "REQUEST"), 2)
    assert sorted(m.recipient for m in requests) == [ANNA, BOB]
    check_sent(requests, "REQUEST")
    organizer = {
        m.recipient: str(event_of(m)["ORGANIZER"]).removeprefix("mailto:") for m in requests
    }
    url = str(saved.url)
    auth = (user, password)
    tag = httpx.get(url, auth=auth).headers["Schedule-Tag"]

    # Anna accepts from Outlook; Bob proposes another time from Gmail.
    accept = outlook_accept(
        uid=uid, sequence=0, attendee=ANNA, name="Anna", to=organizer[ANNA], start=start,
        end=start + timedelta(hours=1), summary="Quarterly planning",
    )  # fmt: skip
    parley.send(accept, organizer[ANNA])
    assert parley.inbound_outcome(accept)[0] == "itip"
    later = start + timedelta(hours=4)
    counter = gmail_counter(
        uid=uid, sequence=0, attendee=BOB, name="Bob", to=organizer[BOB], start=later,
        end=later + timedelta(hours=1), summary="Quarterly planning",
    )  # fmt: skip
    before = len(parley.relay.snapshot())
    parley.send(counter, organizer[BOB])
    assert parley.inbound_outcome(counter)[0] == "itip"
    (ask,) = new_mail(parley.relay, before, lambda m: m.recipient == PROVIDER, 1)
    assert any(APPROVE.search(decoded(p)) for p in parts(ask)), "a proposal waits for approval"

    got = httpx.get(url, auth=auth)
    assert got.headers["Schedule-Tag"] == tag
    event = caldav.CalendarObjectResource(client=client, url=url).load().icalendar_component
    partstat = {str(a).lower(): a.params["PARTSTAT"] for a in attendees(event)}
    assert partstat[f"mailto:{ANNA}"] == "ACCEPTED" and partstat[f"mailto:{BOB}"] == "NEEDS-ACTION"
    inbox = caldav.Calendar(client=client, url=f"{parley.base}/dav/{user}/inbox/")
    delivered = [o.load().data for o in inbox.objects()]
    assert any("METHOD:REPLY" in d and uid in d for d in delivered)

    # The same answer, declining, to another tenant's organizer at Anna's tag: not ours.
    other = parley.api("POST", "/tenants", json={
        "name": "Other", "slug": "other", "organizer_email": "booking@other.example"})  # fmt: skip
    assert other.status_code == 201, other.text
    tag = organizer[ANNA].split("+", 1)[1].split("@", 1)[0]
    elsewhere = outlook_accept(
        uid=uid, sequence=0, attendee=ANNA, name="Anna", to=f"booking+{tag}@other.example",
        start=start, end=start + timedelta(hours=1), dtstamp="20300304T091512Z",
        partstat="DECLINED",
    )  # fmt: skip
    parley.send(elsewhere, f"booking+{tag}@other.example")
    assert parley.inbound_outcome(elsewhere)[0] != "itip"
    unchanged = httpx.get(url, auth=auth)
    assert unchanged.headers["ETag"] == got.headers["ETag"]

    # The provider moves the event: both get SEQUENCE 1.
    before = len(parley.relay.snapshot())
    saved = blocks.event_by_uid(uid)
    moved = saved.data.replace(f"DTSTART:{start:{FMT}}", f"DTSTART:{later:{FMT}}").replace(
        f"DTEND:{start + timedelta(hours=1):{FMT}}", f"DTEND:{later + timedelta(hours=1):{FMT}}"
    )
    assert moved != saved.data
    saved.data = moved
    saved.save()
    updates = new_mail(parley.relay, before, lambda m: is_itip(m, "REQUEST"), 2)
    assert sorted(m.recipient for m in updates) == [ANNA, BOB]
    assert {int(event_of(m)["SEQUENCE"]) for m in updates} == {1}
    check_sent(updates, "REQUEST")

    # The provider deletes it: both get CANCEL.
    before = len(parley.relay.snapshot())
    saved.delete()
    cancels = new_mail(parley.relay, before, lambda m: is_itip(m, "CANCEL"), 2)
    assert sorted(m.recipient for m in cancels) == [ANNA, BOB]
    assert {str(event_of(m)["STATUS"]) for m in cancels} == {"CANCELLED"}
    check_sent(cancels, "CANCEL")
