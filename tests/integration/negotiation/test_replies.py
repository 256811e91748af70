"""Inbound iTIP over stored mail: replies, counters, refresh, forwarded copies, plain answers.

Messages are shaped as Outlook, Gmail, Apple Calendar and Thunderbird send them, stored
the way the SMTP listener stores them, and processed by the worker's job function.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.db.models import Booking, InboundMessage, Invitation, Proposal
from core.runtime import Runtime
from core.services.bookings import actor_of
from core.services.inbound import store_raw
from core.services.mail_in import AuthPolicy, ProcessingContext, process_pending
from parley.handlers import MAIL_READER
from tests.integration.negotiation import mails
from tests.integration.negotiation.helpers import GUEST, booked, outbox

HOST = "ada@example.org"
ORGANIZER = "scheduling@parley.localhost"


def _setup(
    runtime: Runtime, admin_headers: dict[str, str]
) -> tuple[Any, str, dict[str, Invitation]]:
    client, booking_id = booked(runtime, admin_headers)
    with runtime.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        invitations = {
            i.role: i
            for i in session.scalars(select(Invitation).where(Invitation.booking_id == booking_id))
        }
        return client, booking.uid, invitations


def _deliver(runtime: Runtime, raw: bytes, to: str) -> InboundMessage:
    stored = store_raw(runtime.sessions, raw, channel="smtp", now=runtime.clock(), envelope_to=[to])
    context = ProcessingContext(
        runtime.sessions,
        runtime.settings,
        AuthPolicy(),
        runtime.clock,
        actor_of(runtime, "mailbox"),
        reader=MAIL_READER,
    )
    process_pending(context)
    with runtime.sessions() as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        return row


def _plus(invitation: Invitation) -> str:
    return f"scheduling+{invitation.plus_tag}@parley.localhost"


def _booking(runtime: Runtime, uid: str) -> Booking:
    with runtime.sessions() as session:
        booking = session.scalar(select(Booking).where(Booking.uid == uid))
        assert booking is not None
        return booking


def _partstat(runtime: Runtime, role: str, uid: str) -> str:
    with runtime.sessions() as session:
        booking = session.scalar(select(Booking).where(Booking.uid == uid))
        assert booking is not None
        inv = session.scalar(
            select(Invitation).where(Invitation.booking_id == booking.id, Invitation.role == role)
        )
        assert inv is not None
        return inv.partstat


def test_gmail_accept_updates_partstat(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    row = _deliver(
        runtime,
        mails.gmail(
            method="REPLY", uid=uid, sequence=0, attendee=GUEST, to=to, partstat="ACCEPTED"
        ),
        to,
    )
    assert row.outcome == "itip", row.outcome_reason
    assert _partstat(runtime, "guest", uid) == "accepted"


def test_outlook_decline_cancels_for_both_under_strict(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["host"])
    row = _deliver(
        runtime,
        mails.outlook(
            method="REPLY", uid=uid, sequence=0, attendee=HOST, to=to, partstat="DECLINED"
        ),
        to,
    )
    assert row.outcome == "itip", row.outcome_reason
    booking = _booking(runtime, uid)
    assert booking.status == "cancelled"
    cancels = [r for r in outbox(runtime) if r.method == "CANCEL"]
    assert sorted(r.recipient for r in cancels) == [HOST, GUEST]


def test_decline_is_only_recorded_under_soft(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    runtime.settings = runtime.settings.model_copy(update={"decline_policy": "soft"})
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    _deliver(
        runtime,
        mails.thunderbird(
            method="REPLY", uid=uid, sequence=0, attendee=GUEST, to=to, partstat="DECLINED"
        ),
        to,
    )
    assert _booking(runtime, uid).status == "confirmed"
    assert _partstat(runtime, "guest", uid) == "declined"
    assert not [r for r in outbox(runtime) if r.method == "CANCEL"]


def test_outlook_counter_with_windows_zone_becomes_a_proposal(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    raw = mails.outlook(
        method="COUNTER",
        uid=uid,
        sequence=0,
        attendee=GUEST,
        to=to,
        partstat="TENTATIVE",
        start_local="20270303T150000",
        end_local="20270303T153000",
        comment="Afternoon?",
    )
    row = _deliver(runtime, raw, to)
    assert row.outcome == "itip", row.outcome_reason
    with runtime.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
    assert proposal.via == "counter" and proposal.status == "pending"
    assert proposal.start_at == datetime(2027, 3, 3, 14, 0, tzinfo=UTC)  # 15:00 Berlin
    assert proposal.proposed_by == "guest" and proposal.note == "Afternoon?"
    asks = [r for r in outbox(runtime) if r.kind == "notice.approval_request"]
    assert [r.recipient for r in asks] == [HOST]
    assert GUEST.encode() not in asks[0].mime


def test_gmail_counter_tentative_is_a_proposal_not_an_answer(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    raw = mails.gmail(
        method="COUNTER",
        uid=uid,
        sequence=0,
        attendee=GUEST,
        to=to,
        partstat="TENTATIVE",
        start_utc="20270304T100000Z",
        end_utc="20270304T103000Z",
        note="Thursday works better",
    )
    _deliver(runtime, raw, to)
    assert _partstat(runtime, "guest", uid) == "accepted"  # unchanged by the TENTATIVE
    with runtime.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
    assert proposal.note == "Thursday works better"


def test_thunderbird_counter_with_olson_zone_becomes_a_proposal(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["host"])
    raw = mails.thunderbird(
        method="COUNTER", uid=uid, sequence=0, attendee=HOST, to=to, partstat="ACCEPTED",
        start_local="20270705T091500", end_local="20270705T094500", comment="Before lunch?",
    )  # fmt: skip
    row = _deliver(runtime, raw, to)
    assert row.outcome == "itip", row.outcome_reason
    with runtime.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
    assert proposal.via == "counter" and proposal.proposed_by == "host"
    assert proposal.start_at == datetime(2027, 7, 5, 7, 15, tzinfo=UTC)  # 09:15 CEST
    assert proposal.end_at == datetime(2027, 7, 5, 7, 45, tzinfo=UTC)
    assert proposal.note == "Before lunch?"
    assert _partstat(runtime, "host", uid) == "accepted"  # the ACCEPTED is part of the copy
    asks = [r for r in outbox(runtime) if r.kind == "notice.approval_request"]
    assert [r.recipient for r in asks] == [GUEST]
    assert HOST.encode() not in asks[0].mime


def test_ios_counter_written_by_exchange_becomes_a_proposal(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    raw = mails.ios_exchange_counter(
        uid=uid, sequence=0, attendee=GUEST, to=to, start_utc="20270305T160000Z",
        end_utc="20270305T163000Z", note="Could we meet a bit later? gus@guest.example",
    )  # fmt: skip
    row = _deliver(runtime, raw, to)
    assert row.outcome == "itip", row.outcome_reason
    with runtime.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
    assert proposal.via == "counter" and proposal.proposed_by == "guest"
    assert proposal.start_at == datetime(2027, 3, 5, 16, 0, tzinfo=UTC)
    # The note lives only in the mail's text, signature and all: it is not passed on.
    assert proposal.note is None
    assert _partstat(runtime, "guest", uid) == "accepted"  # NEEDS-ACTION in a COUNTER: no answer
    asks = [r for r in outbox(runtime) if r.kind == "notice.approval_request"]
    assert [r.recipient for r in asks] == [HOST]
    assert GUEST.encode() not in asks[0].mime and b"gus@guest.example" not in asks[0].mime


def test_forwarded_copy_answered_by_a_stranger_is_ignored(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    raw = mails.gmail(
        method="REPLY",
        uid=uid,
        sequence=0,
        attendee="friend@else.example",
        to=to,
        partstat="DECLINED",
    )
    row = _deliver(runtime, raw, to)
    assert row.outcome == "ignored"
    assert _booking(runtime, uid).status == "confirmed"


def test_stale_sequence_is_ignored(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    client, uid, inv = _setup(runtime, admin_headers)
    booking = _booking(runtime, uid)
    moved = client.post(
        f"/api/v1/bookings/{booking.id}/reschedule",
        json={"start": "2027-03-05T10:00:00Z", "end": "2027-03-05T10:30:00Z"},
        headers=admin_headers,
    )
    assert moved.status_code == 200
    to = _plus(inv["guest"])
    row = _deliver(
        runtime,
        mails.gmail(
            method="REPLY", uid=uid, sequence=0, attendee=GUEST, to=to, partstat="DECLINED"
        ),
        to,
    )
    assert row.outcome == "ignored" and "stale" in (row.outcome_reason or "")
    assert _booking(runtime, uid).status == "confirmed"


def test_older_dtstamp_at_the_same_sequence_is_ignored(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    runtime.settings = runtime.settings.model_copy(update={"decline_policy": "soft"})
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    newer = mails.gmail(
        method="REPLY",
        uid=uid,
        sequence=0,
        attendee=GUEST,
        to=to,
        partstat="TENTATIVE",
        dtstamp="20270301T100000Z",
    )
    older = mails.gmail(
        method="REPLY",
        uid=uid,
        sequence=0,
        attendee=GUEST,
        to=to,
        partstat="DECLINED",
        dtstamp="20270301T090000Z",
    )
    _deliver(runtime, newer, to)
    row = _deliver(runtime, older, to)
    assert row.outcome == "ignored"
    assert _partstat(runtime, "guest", uid) == "tentative"


def test_refresh_resends_the_current_copy(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    before = len(outbox(runtime))
    _deliver(
        runtime, mails.thunderbird(method="REFRESH", uid=uid, sequence=0, attendee=GUEST, to=to), to
    )
    rows = outbox(runtime)
    assert len(rows) == before + 1
    assert rows[-1].recipient == GUEST and b"METHOD:REQUEST" in rows[-1].mime


def test_apple_reply_from_another_account_matched_by_plus_address(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    _, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    raw = mails.apple(
        uid=uid,
        sequence=0,
        attendee=GUEST,
        to=to,
        partstat="TENTATIVE",
        sender="grace@icloud.example",
    )
    row = _deliver(runtime, raw, to)
    assert row.outcome == "itip", row.outcome_reason
    assert _partstat(runtime, "guest", uid) == "tentative"


def test_plain_answer_gets_an_auto_reply_with_the_reschedule_link(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    _setup(runtime, admin_headers)
    invite = next(r for r in outbox(runtime) if r.recipient == GUEST)
    raw = mails.plain(sender=GUEST, to=ORGANIZER, in_reply_to=invite.message_id)
    row = _deliver(runtime, raw, ORGANIZER)
    assert row.outcome == "plain_reply", row.outcome_reason
    replies = [r for r in outbox(runtime) if r.kind == "notice.auto_reply"]
    assert [r.recipient for r in replies] == [GUEST]
    assert b"reschedule?r=" in replies[0].mime.replace(b"=\r\n", b"")


def test_declining_a_counter_sends_declinecounter_to_the_proposer(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import unquote

    from tests.integration.negotiation.helpers import links

    client, uid, inv = _setup(runtime, admin_headers)
    to = _plus(inv["guest"])
    raw = mails.gmail(
        method="COUNTER", uid=uid, sequence=0, attendee=GUEST, to=to, partstat="TENTATIVE",
        start_utc="20270304T100000Z", end_utc="20270304T103000Z", note="Thursday?",
    )  # fmt: skip
    _deliver(runtime, raw, to)
    ask = next(r for r in outbox(runtime) if r.kind == "notice.approval_request")
    assert client.post("/decline", data={"t": unquote(links(ask)["decline"])}).status_code == 200
    declined = [r for r in outbox(runtime) if r.kind == "itip.declinecounter"]
    assert [r.recipient for r in declined] == [GUEST]
    assert b"METHOD:DECLINECOUNTER" in declined[0].mime
    assert HOST.encode() not in declined[0].mime
    assert _booking(runtime, uid).sequence == 0


def test_many_declines_are_processed_side_by_side_each_exactly_once(
    runtime: Runtime,
    admin_headers,  # type: ignore[no-untyped-def]
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"inbound_concurrency": 4})
    client, first = booked(runtime, admin_headers)
    with runtime.sessions() as session:
        provider_id = session.get(Booking, first).provider_id  # type: ignore[union-attr]
    uids = [_booking_uid(runtime, first)]
    for hour in range(10, 16):  # five more bookings that day, one an hour
        hold = client.post(
            "/api/v1/holds",
            json={
                "provider_id": provider_id, "start": f"2027-03-02T{hour:02d}:00:00Z",
                "end": f"2027-03-02T{hour:02d}:30:00Z", "guest_email": GUEST,
            },
        )  # fmt: skip
        assert hold.status_code == 201, hold.text
        done = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm")
        uids.append(done.json()["booking"]["uid"])
    with runtime.sessions() as session:
        invitations = {
            (i.booking_id, i.role): _plus(i)
            for i in session.scalars(select(Invitation).where(Invitation.role == "host"))
        }
    for uid in uids:
        booking = _booking(runtime, uid)
        to = invitations[(booking.id, "host")]
        raw = mails.outlook(
            method="REPLY", uid=uid, sequence=0, attendee=HOST, to=to, partstat="DECLINED"
        )
        store_raw(runtime.sessions, raw, channel="smtp", now=runtime.clock(), envelope_to=[to])
    context = ProcessingContext(
        runtime.sessions,
        runtime.settings,
        AuthPolicy(),
        runtime.clock,
        actor_of(runtime, "mailbox"),
        reader=MAIL_READER,
    )
    assert process_pending(context) == len(uids)
    assert process_pending(context) == 0
    assert all(_booking(runtime, uid).status == "cancelled" for uid in uids)
    cancels = [r for r in outbox(runtime) if r.method == "CANCEL"]
    assert sorted((r.uid, r.recipient) for r in cancels) == sorted(
        (uid, who) for uid in uids for who in (HOST, GUEST)
    )
    with runtime.sessions() as session:
        outcomes = list(session.scalars(select(InboundMessage.outcome)))
    assert outcomes == ["itip"] * len(uids)


def _booking_uid(runtime: Runtime, booking_id: str) -> str:
    with runtime.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        return booking.uid


def test_a_message_whose_decision_raises_is_failed_and_the_others_go_on(
    runtime: Runtime,
    admin_headers,  # type: ignore[no-untyped-def]
) -> None:
    """A COUNTER to the end of year 9999 overflows the approval request's composer (the
    host is in Berlin): that message alone is failed, whichever path processes it."""
    from prometheus_client import REGISTRY

    from mailagent.imap import folder_for

    def failed_count() -> float:
        sample = REGISTRY.get_sample_value("parley_mail_inbound_total", {"outcome": "failed"})
        return sample or 0.0

    runtime.settings = runtime.settings.model_copy(update={"inbound_concurrency": 4})
    client, first = booked(runtime, admin_headers)
    with runtime.sessions() as session:
        provider_id = session.get(Booking, first).provider_id  # type: ignore[union-attr]
    uids = [_booking_uid(runtime, first)]
    for hour in range(10, 14):
        hold = client.post(
            "/api/v1/holds",
            json={
                "provider_id": provider_id, "start": f"2027-03-02T{hour:02d}:00:00Z",
                "end": f"2027-03-02T{hour:02d}:30:00Z", "guest_email": GUEST,
            },
        )  # fmt: skip
        uids.append(
            client.post(f"/api/v1/holds/{hold.json()['id']}/confirm").json()["booking"]["uid"]
        )
    with runtime.sessions() as session:
        guest_to = {
            i.booking_id: _plus(i)
            for i in session.scalars(select(Invitation).where(Invitation.role == "guest"))
        }
    crash_uid, *decline_uids = uids
    to = guest_to[_booking(runtime, crash_uid).id]
    crash = mails.gmail(
        method="COUNTER", uid=crash_uid, sequence=0, attendee=GUEST, to=to, partstat="TENTATIVE",
        start_utc="99991231T234500Z", end_utc="99991231T235900Z",
    )  # fmt: skip
    crashed = store_raw(runtime.sessions, crash, channel="smtp", now=runtime.clock(),
                        envelope_to=[to]).id  # fmt: skip
    for uid in decline_uids:
        to = guest_to[_booking(runtime, uid).id]
        raw = mails.apple(uid=uid, sequence=0, attendee=GUEST, to=to, partstat="DECLINED")
        store_raw(runtime.sessions, raw, channel="smtp", now=runtime.clock(), envelope_to=[to])
    before = failed_count()
    context = ProcessingContext(
        runtime.sessions, runtime.settings, AuthPolicy(), runtime.clock,
        actor_of(runtime, "mailbox"), reader=MAIL_READER,
    )  # fmt: skip
    assert process_pending(context) == 1 + len(decline_uids)
    assert process_pending(context) == 0
    with runtime.sessions() as session:
        rows = {r.id: r for r in session.scalars(select(InboundMessage))}
        proposals = list(session.scalars(select(Proposal)))
    bad = rows.pop(crashed)
    assert bad.outcome == "failed"
    assert bad.outcome_reason and bad.outcome_reason.startswith(
        "processing raised OverflowError: date value out of range"
    ), bad.outcome_reason
    assert (bad.method, bad.uid, bad.subject) == ("COUNTER", crash_uid, "Invitation: Session")
    assert bad.booking_id is None and proposals == []  # the proposal was rolled back
    assert folder_for(bad.outcome) == "Parley/Failed"
    assert failed_count() == before + 1
    assert [r.outcome for r in rows.values()] == ["itip"] * len(decline_uids)
    assert all(_booking(runtime, uid).status == "cancelled" for uid in decline_uids)
    assert _booking(runtime, crash_uid).status == "confirmed"
