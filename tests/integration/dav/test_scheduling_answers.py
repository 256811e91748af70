"""Answers to events a provider scheduled over CalDAV, coming back as stored mail: an
Outlook REPLY writes PARTSTAT into the provider's object (new ETag, same Schedule-Tag)
and lands in the schedule inbox; a Gmail COUNTER becomes a proposal the provider approves
(the event moves, everyone gets SEQUENCE + 1) or declines (DECLINECOUNTER); REFRESH
re-sends the current copy; an answer sent to another tenant's organizer changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote

import httpx
import icalendar
import pytest
from sqlalchemy import select

from core.db.models import DavObject, DavProposal, InboundMessage, Tenant
from core.runtime import Runtime
from core.services import dav
from core.services.bookings import actor_of
from core.services.inbound import store_raw
from core.services.mail_in import AuthPolicy, ProcessingContext, process_pending
from parley.handlers import MAIL_READER
from tests.e2e.test_metrics_processes import bounce_for
from tests.integration.dav.conftest import NOW, DavUser, add_provider
from tests.integration.dav.scheduling_mails import gmail_counter, outlook_accept
from tests.integration.dav.test_scheduling import (
    ANNA,
    BOB,
    START,
    attendees,
    event_of,
    itip_of,
    outbox,
    put,
    scheduled_ics,
)
from tests.integration.negotiation.helpers import body_text
from tests.itip_restrictions import restriction_errors

UID = "answers@apple"
END = START + timedelta(hours=1)
LINK = re.compile(r"https?://[^\s\"'<>]+/schedule/(approve|decline)\?t=([A-Za-z0-9_\-%.~]+)")


def deliver(runtime: Runtime, raw: bytes, to: str) -> InboundMessage:
    stored = store_raw(runtime.sessions, raw, channel="smtp", now=runtime.clock(), envelope_to=[to])
    context = ProcessingContext(
        runtime.sessions, runtime.settings, AuthPolicy(), runtime.clock,
        actor_of(runtime, "mailbox"), reader=MAIL_READER,
    )  # fmt: skip
    process_pending(context)
    with runtime.sessions() as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        return row


def organizer_for(runtime: Runtime, address: str) -> str:
    requests = [r for r in outbox(runtime) if r.recipient == address]
    return str(event_of(requests[0])["ORGANIZER"]).removeprefix("mailto:")


def stored(runtime: Runtime, name: str = "blocks") -> list[DavObject]:
    with runtime.sessions() as session:
        query = (
            select(DavObject)
            .join(dav.DavCalendar, dav.DavCalendar.id == DavObject.calendar_id)
            .where(dav.DavCalendar.name == name)
        )
        return list(session.scalars(query))


def partstats(runtime: Runtime) -> dict[str, str]:
    (obj,) = stored(runtime)
    (event,) = icalendar.Calendar.from_ical(obj.ics).walk("VEVENT")
    return {str(a).lower().removeprefix("mailto:"): a.params["PARTSTAT"] for a in attendees(event)}


def get(base: str, user: DavUser) -> httpx.Response:
    return httpx.get(f"{base}/dav/alice/blocks/answers.ics", auth=(user.username, user.password))


@pytest.fixture
def alice(runtime: Runtime, dav_base: str) -> DavUser:
    user = add_provider(runtime, "alice")
    text = scheduled_ics(UID, START, "alice@example.org", [ANNA, BOB])
    assert put(dav_base, user, "answers.ics", text).status_code == 201
    return user


def test_outlook_accept_writes_partstat_keeps_schedule_tag_and_fills_inbox(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    before = get(dav_base, alice)
    to = organizer_for(runtime, ANNA)
    raw = outlook_accept(
        uid=UID, sequence=0, attendee=ANNA, name="Anna", to=to, start=START, end=END
    )
    row = deliver(runtime, raw, to)
    assert (row.outcome, row.outcome_reason) == ("itip", f"{ANNA} accepted")
    assert partstats(runtime)[ANNA] == "ACCEPTED" and partstats(runtime)[BOB] == "NEEDS-ACTION"
    after = get(dav_base, alice)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Schedule-Tag"] == before.headers["Schedule-Tag"]
    (inbox,) = stored(runtime, "inbox")
    assert "METHOD:REPLY" in inbox.ics and UID in inbox.ics
    listed = httpx.request(
        "PROPFIND", f"{dav_base}/dav/alice/inbox/", headers={"Depth": "1"},
        auth=(alice.username, alice.password),
    )  # fmt: skip
    assert listed.status_code == 207 and inbox.href in listed.text
    with runtime.sessions() as session:  # the inbox blocks no time
        busy = dav.dav_busy(session, alice.provider_id, NOW, NOW + timedelta(days=60))
    assert [b.label for b in busy] == ["blocks"]
    # The calendar app, not yet synced, writes back its older copy (Anna NEEDS-ACTION).
    stale = scheduled_ics(UID, START, "alice@example.org", [ANNA, BOB]).replace(
        "SUMMARY:Planning", "SUMMARY:Planning\r\nCATEGORIES:work"
    )
    count = len(outbox(runtime))
    assert put(dav_base, alice, "answers.ics", stale).status_code == 204
    assert partstats(runtime)[ANNA] == "ACCEPTED" and len(outbox(runtime)) == count
    again = deliver(runtime, raw, to)
    assert again.id == row.id  # the same Message-ID is one message, applied once


def test_gmail_counter_becomes_a_proposal_that_approval_applies(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    to = organizer_for(runtime, BOB)
    new_start = START + timedelta(hours=5)
    raw = gmail_counter(
        uid=UID, sequence=0, attendee=BOB, name="Bob", to=to, start=new_start,
        end=new_start + timedelta(hours=1),
    )  # fmt: skip
    row = deliver(runtime, raw, to)
    assert row.outcome == "itip" and "proposal" in (row.outcome_reason or "")
    with runtime.sessions() as session:
        (proposal,) = session.scalars(select(DavProposal)).all()
        assert proposal.status == "pending" and proposal.start_at == new_start
        assert proposal.note == "Could we do later? Mornings are hard, sorry."
    (request,) = [r for r in outbox(runtime) if r.recipient == "alice@example.org"]
    urls = {verb: token for verb, token in LINK.findall(body_text(request))}
    assert set(urls) == {"approve", "decline"}
    page = httpx.get(f"{dav_base}/schedule/approve", params={"t": unquote(urls["approve"])})
    assert page.status_code == 200 and "Approve the new time?" in page.text
    sent_before = len(outbox(runtime))
    done = httpx.post(f"{dav_base}/schedule/approve", data={"t": unquote(urls["approve"])})
    assert done.status_code == 200 and "Approved" in done.text
    updates = outbox(runtime)[sent_before:]
    assert sorted(r.recipient for r in updates) == [ANNA, BOB]
    for update in updates:
        event = event_of(update)
        assert int(event["SEQUENCE"]) == 1 and event.decoded("DTSTART") == new_start
        assert restriction_errors(itip_of(update).to_ical().decode()) == []
    (obj,) = stored(runtime)
    assert "SEQUENCE:1" in obj.ics
    twice = httpx.post(f"{dav_base}/schedule/approve", data={"t": unquote(urls["approve"])})
    assert twice.status_code == 409


def test_declined_counter_sends_declinecounter(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    to = organizer_for(runtime, BOB)
    later = START + timedelta(days=1)
    raw = gmail_counter(uid=UID, sequence=0, attendee=BOB, name="Bob", to=to, start=later,
                        end=later + timedelta(hours=1))  # fmt: skip
    deliver(runtime, raw, to)
    (request,) = [r for r in outbox(runtime) if r.recipient == "alice@example.org"]
    urls = dict(LINK.findall(body_text(request)))
    done = httpx.post(f"{dav_base}/schedule/decline", data={"t": unquote(urls["decline"])})
    assert done.status_code == 200
    (declined,) = [r for r in outbox(runtime) if r.kind == "itip.dav.declinecounter"]
    assert declined.recipient == BOB and str(itip_of(declined)["METHOD"]) == "DECLINECOUNTER"
    assert ANNA not in declined.mime.decode()
    # libical 3.0's table forbids ATTENDEE and SEQUENCE in a DECLINECOUNTER; RFC 5546
    # 3.2.8 requires ATTENDEE (1+) and has SEQUENCE echo the original: Parley follows the
    # RFC, as its booking DECLINECOUNTER (core.itip.build) does. Nothing else may be wrong.
    errors = restriction_errors(itip_of(declined).to_ical().decode())
    assert [
        e for e in errors if not re.search(r"for (ATTENDEE|SEQUENCE) property\. Expected 0", e)
    ] == []


def test_refresh_resends_the_current_request(runtime: Runtime, alice: DavUser) -> None:
    to = organizer_for(runtime, ANNA)
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REFRESH\r\n"
        f"BEGIN:VEVENT\r\nUID:{UID}\r\nDTSTAMP:20300304T090000Z\r\nORGANIZER:mailto:{to}\r\n"
        f"ATTENDEE:mailto:{ANNA}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    raw = (
        f"From: Anna <{ANNA}>\r\nTo: {to}\r\nSubject: Refresh\r\n"
        "Message-ID: <r1@guests.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/calendar; method=REFRESH; charset=utf-8\r\n\r\n"
        + ics
    ).encode()
    count = len(outbox(runtime))
    row = deliver(runtime, raw, to)
    assert row.outcome == "itip", row.outcome_reason
    (again,) = outbox(runtime)[count:]
    assert again.recipient == ANNA and str(itip_of(again)["METHOD"]) == "REQUEST"
    assert BOB not in again.mime.decode()
    assert restriction_errors(itip_of(again).to_ical().decode()) == []


def test_an_answer_to_another_tenants_organizer_changes_nothing(
    runtime: Runtime, alice: DavUser
) -> None:
    with runtime.sessions.begin() as session:
        session.add(Tenant(id="other", name="Other", slug="other",
                           organizer_email="booking@other.example", created_at=NOW))  # fmt: skip
    tag = organizer_for(runtime, ANNA).split("+", 1)[1].split("@", 1)[0]
    to = f"booking+{tag}@other.example"
    raw = outlook_accept(
        uid=UID, sequence=0, attendee=ANNA, name="Anna", to=to, start=START, end=END
    )
    before = stored(runtime)[0].etag
    row = deliver(runtime, raw, to)
    assert row.tenant_id == "other" and row.outcome != "itip"
    assert stored(runtime)[0].etag == before and partstats(runtime)[ANNA] == "NEEDS-ACTION"
    assert stored(runtime, "inbox") == []


def test_a_bounce_marks_the_attendee_undelivered(runtime: Runtime, alice: DavUser) -> None:
    (request,) = [r for r in outbox(runtime) if r.recipient == BOB]
    organizer = "scheduling@parley.localhost"
    row = deliver(runtime, bounce_for(BOB, organizer, request.message_id), organizer)
    assert row.outcome == "bounce" and BOB in (row.outcome_reason or "")
    (obj,) = stored(runtime)
    (event,) = icalendar.Calendar.from_ical(obj.ics).walk("VEVENT")
    status = {str(a).lower(): a.params.get("SCHEDULE-STATUS") for a in attendees(event)}
    assert status[f"mailto:{BOB}"] == "5.1" and status[f"mailto:{ANNA}"] == "1.1"


PROPOSE = re.compile(r"https?://[^\s\"'<>]+/schedule/reschedule\?r=([A-Za-z0-9_\-%.~]+)")


def test_plain_mail_gets_the_link_and_the_link_asks_the_provider(
    runtime: Runtime, dav_base: str, alice: DavUser
) -> None:
    to = organizer_for(runtime, ANNA)
    raw = (
        f"From: Anna <{ANNA}>\r\nTo: {to}\r\nSubject: Re: Planning\r\n"
        "Message-ID: <plain-1@guests.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nCan we do the afternoon instead?\r\n"
    ).encode()
    row = deliver(runtime, raw, to)
    assert (row.outcome, row.outcome_reason) == ("plain_reply", "answered with a reschedule link")
    (answer,) = [r for r in outbox(runtime) if r.kind == "notice.auto_reply"]
    assert answer.recipient == ANNA and BOB not in answer.mime.decode()
    (token,) = set(PROPOSE.findall(body_text(answer)))  # text and HTML
    token = unquote(token)
    page = httpx.get(f"{dav_base}/schedule/reschedule", params={"r": token})
    assert page.status_code == 200 and "Request a new time" in page.text
    sent = httpx.post(
        f"{dav_base}/schedule/reschedule",
        data={"r": token, "date": "2030-03-10", "time": "15:00", "tz": "Europe/Berlin",
              "note": "afternoon?"},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    with runtime.sessions() as session:
        (proposal,) = session.scalars(select(DavProposal)).all()
    assert proposal.via == "link" and proposal.start_at == START + timedelta(hours=5)
    assert [r.recipient for r in outbox(runtime) if r.kind == "notice.approval_request"] == [
        "alice@example.org"
    ]
    bad = httpx.get(f"{dav_base}/schedule/reschedule", params={"r": token[:-3] + "xyz"})
    assert bad.status_code == 404
