"""The driver-level REPLY and COUNTER paths leave what the ORM path leaves, or step aside.

Each case applies one answer twice in the same database: once through the ORM path, its
effects read and rolled back, then through the hot path. Bookings, invitations, audit
rows, proposals, links, the outbox (a CANCEL's MIME byte for byte; a notice's text with
its fresh tokens masked) and the outbox wake must agree. Answers the hot paths do not
take (stale, unknown, uninvited, older, refused) must write nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import (
    AuditEntry,
    Booking,
    InboundMessage,
    Invitation,
    MagicLink,
    OutboundMessage,
    Proposal,
)
from core.runtime import Runtime
from core.services import replies
from core.services.bookings import actor_of
from core.services.inbound import store_raw
from core.services.notify import Mailer
from mailagent.mime import parse_message
from tests.integration.negotiation import mails
from tests.integration.negotiation.helpers import GUEST, body_text, booked

HOST = "ada@example.org"
NOW = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def _snapshot(session: Session, booking_id: str, audit_after: int) -> dict[str, Any]:
    booking = session.get(Booking, booking_id)
    assert booking is not None
    invitations = session.scalars(
        select(Invitation).where(Invitation.booking_id == booking_id).order_by(Invitation.role)
    )
    audits = session.scalars(
        select(AuditEntry).where(AuditEntry.id > audit_after).order_by(AuditEntry.id)
    )
    outbox = session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.booking_id == booking_id, OutboundMessage.method == "CANCEL")
        .order_by(OutboundMessage.recipient)
    )
    notices = session.scalars(
        select(OutboundMessage)
        .where(
            OutboundMessage.booking_id == booking_id,
            OutboundMessage.kind == "notice.approval_request",
        )
        .order_by(OutboundMessage.id)
    )
    proposals = session.scalars(
        select(Proposal).where(Proposal.booking_id == booking_id).order_by(Proposal.status)
    )
    links = session.scalars(
        select(MagicLink)
        .where(MagicLink.booking_id == booking_id, MagicLink.proposal_id.is_not(None))
        .order_by(MagicLink.purpose)
    )

    def columns(row: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in skip}

    return {
        "booking": columns(booking),
        "invitations": [columns(i) for i in invitations],
        "audit": [columns(a, ("id",)) for a in audits],
        "outbox": [columns(o, ("id",)) for o in outbox],
        "notices": [
            {**columns(n, ("id", "mime", "idempotency_key", "message_id")), "text": _masked(n)}
            for n in notices
        ],
        "proposals": [columns(p, ("id",)) for p in proposals],
        "links": [columns(k, ("id", "token_hash", "proposal_id")) for k in links],
        "wakes": dict(session.info.get("parley.wakes", {})),
    }


def _masked(notice: OutboundMessage) -> str:
    """The notice's text with its fresh tokens and proposal id masked."""
    text = re.sub(r"([?&][tr]=)[A-Za-z0-9_\-%.~]+", r"\1…", body_text(notice))
    return re.sub(r"prp_[0-9a-f]{20}", "prp_…", text)


def _apply(
    runtime: Runtime,
    raw: bytes,
    to: str,
    booking_id: str,
    *,
    hot: bool,
    keep: bool,
    policy: replies.Policy | None = None,
) -> tuple[replies.Decision, dict[str, Any]]:
    stored = store_raw(runtime.sessions, raw, channel="smtp", now=NOW, envelope_to=[to])
    parsed = parse_message(raw)
    assert parsed.itip is not None
    actor = actor_of(runtime, "mailbox")
    assert actor.mailer is not None
    with runtime.sessions() as session:
        last = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        decision = replies.apply_itip(
            session, actor.mailer, row, parsed.itip, recipients=(to,),
            policy=policy or runtime.settings.decline_policy, now=NOW, actor=actor, hot=hot,
        )  # fmt: skip
        session.flush()
        state = _snapshot(session, booking_id, last)
        if keep:
            session.commit()
        else:
            session.rollback()
    return decision, state


def _setup(runtime: Runtime, admin_headers: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    _, booking_id = booked(runtime, admin_headers)
    with runtime.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None
        tags = {
            i.role: f"scheduling+{i.plus_tag}@parley.localhost"
            for i in session.scalars(select(Invitation).where(Invitation.booking_id == booking_id))
        }
        return booking_id, booking.uid, tags


CASES = [
    ("guest", GUEST, "DECLINED"),
    ("host", HOST, "DECLINED"),
    ("guest", GUEST, "ACCEPTED"),
    ("host", HOST, "TENTATIVE"),
]


@pytest.mark.parametrize(("role", "address", "partstat"), CASES)
def test_hot_reply_writes_what_the_orm_path_writes(
    runtime: Runtime, admin_headers: dict[str, str], role: str, address: str, partstat: str
) -> None:
    booking_id, uid, to = _setup(runtime, admin_headers)
    raw = mails.apple(uid=uid, sequence=0, attendee=address, to=to[role], partstat=partstat)
    slow, expected = _apply(runtime, raw, to[role], booking_id, hot=False, keep=False)
    again = raw.replace(b"Message-ID: <", b"Message-ID: <again-")
    fast, got = _apply(runtime, again, to[role], booking_id, hot=True, keep=True)
    assert slow.outcome == "applied"
    assert (fast.outcome, fast.reason, fast.booking_id) == (slow.outcome, slow.reason, booking_id)
    for audit in (*expected["audit"], *got["audit"]):
        audit["data"].pop("message", None)  # the two stored copies have their own ids
    assert got == expected
    if partstat == "DECLINED":
        assert got["booking"]["status"] == "cancelled"
        assert len(got["outbox"]) == 2 and got["wakes"]


def test_hot_reply_skips_attendees_who_never_got_the_event(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    booking_id, uid, to = _setup(runtime, admin_headers)
    with runtime.sessions.begin() as session:
        session.execute(
            update(Invitation)
            .where(Invitation.booking_id == booking_id, Invitation.role == "host")
            .values(last_method_sent=None)
        )
    raw = mails.apple(uid=uid, sequence=0, attendee=GUEST, to=to["guest"], partstat="DECLINED")
    _, expected = _apply(runtime, raw, to["guest"], booking_id, hot=False, keep=False)
    again = raw.replace(b"Message-ID: <", b"Message-ID: <again-")
    _, got = _apply(runtime, again, to["guest"], booking_id, hot=True, keep=True)
    for audit in (*expected["audit"], *got["audit"]):
        audit["data"].pop("message", None)
    assert got == expected
    assert [o["recipient"] for o in got["outbox"]] == [GUEST]


@pytest.mark.parametrize("variant", ["soft", "undeliverable host", "zones from fallbacks"])
def test_hot_reply_agrees_on_policy_delivery_state_and_zones(
    runtime: Runtime, admin_headers: dict[str, str], variant: str
) -> None:
    """A soft decline only records; a CANCEL goes to an undeliverable attendee too; an
    attendee without a zone of their own reads the host's provider's or the booking's."""
    booking_id, uid, to = _setup(runtime, admin_headers)
    with runtime.sessions.begin() as session:
        if variant == "undeliverable host":
            session.execute(
                update(Invitation)
                .where(Invitation.booking_id == booking_id, Invitation.role == "host")
                .values(delivery_state="undeliverable")
            )
        elif variant == "zones from fallbacks":
            session.execute(
                update(Invitation).where(Invitation.booking_id == booking_id).values(timezone=None)
            )
            session.execute(
                update(Booking)
                .where(Booking.id == booking_id)
                .values(guest_timezone="America/New_York")
            )
    policy: replies.Policy = "soft" if variant == "soft" else "strict"
    raw = mails.apple(uid=uid, sequence=0, attendee=GUEST, to=to["guest"], partstat="DECLINED")
    slow, expected = _apply(
        runtime, raw, to["guest"], booking_id, hot=False, keep=False, policy=policy
    )
    again = raw.replace(b"Message-ID: <", b"Message-ID: <again-")
    fast, got = _apply(runtime, again, to["guest"], booking_id, hot=True, keep=True, policy=policy)
    assert (fast.outcome, fast.reason) == (slow.outcome, slow.reason)
    for audit in (*expected["audit"], *got["audit"]):
        audit["data"].pop("message", None)
    assert got == expected
    if variant == "soft":
        assert got["booking"]["status"] == "confirmed" and not got["outbox"]
    else:
        assert len(got["outbox"]) == 2
    if variant == "zones from fallbacks":
        with runtime.sessions() as session:
            sent = session.scalars(
                select(OutboundMessage).where(
                    OutboundMessage.booking_id == booking_id, OutboundMessage.method == "CANCEL"
                )
            )
            texts = {o.recipient: body_text(o) for o in sent}
        assert " EST" in texts[GUEST] and " CET" not in texts[GUEST]  # the guest zone
        assert " CET" in texts[HOST] and " EST" not in texts[HOST]  # the provider zone


def test_hot_counter_from_the_host_writes_what_the_orm_path_writes(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    """The host counters (Thunderbird, local Berlin times): the guest is asked."""
    booking_id, uid, to = _setup(runtime, admin_headers)
    raw = mails.thunderbird(
        method="COUNTER", uid=uid, sequence=0, attendee=HOST, to=to["host"],
        start_local="20270305T140000", end_local="20270305T150000", comment="Friday?",
    )  # fmt: skip
    slow, expected = _apply(runtime, raw, to["host"], booking_id, hot=False, keep=False)
    again = raw.replace(b"Message-ID: <", b"Message-ID: <again-")
    fast, got = _apply(runtime, again, to["host"], booking_id, hot=True, keep=True)
    assert slow.outcome == fast.outcome == "applied"
    for state in (expected, got):
        for audit in state["audit"]:
            audit["data"].pop("proposal", None)
        for proposal in state["proposals"]:
            proposal.pop("inbound_message_id")
    assert got == expected
    assert [(p["proposed_by"], p["status"]) for p in got["proposals"]] == [("host", "pending")]
    assert [n["recipient"] for n in got["notices"]] == [GUEST]


@pytest.mark.parametrize("shape", ["outlook", "gmail"])
def test_hot_counter_writes_what_the_orm_path_writes(
    runtime: Runtime, admin_headers: dict[str, str], shape: str
) -> None:
    booking_id, uid, to = _setup(runtime, admin_headers)
    if shape == "outlook":
        raw = mails.outlook(
            method="COUNTER", uid=uid, sequence=0, attendee=GUEST, to=to["guest"],
            partstat="TENTATIVE", start_local="20270303T150000", end_local="20270303T153000",
            comment="Afternoon?",
        )  # fmt: skip
    else:
        raw = mails.gmail(
            method="COUNTER", uid=uid, sequence=0, attendee=GUEST, to=to["guest"],
            partstat="TENTATIVE", start_utc="20270304T100000Z", end_utc="20270304T103000Z",
            note="Thursday works better",
        )  # fmt: skip
    # A pending proposal already there: both paths supersede it.
    first = raw.replace(b"Message-ID: <", b"Message-ID: <first-")
    first = first.replace(b"20270303T15", b"20270303T16").replace(b"20270304T10", b"20270304T11")
    _apply(runtime, first, to["guest"], booking_id, hot=False, keep=True)
    slow, expected = _apply(runtime, raw, to["guest"], booking_id, hot=False, keep=False)
    again = raw.replace(b"Message-ID: <", b"Message-ID: <again-")
    fast, got = _apply(runtime, again, to["guest"], booking_id, hot=True, keep=True)
    assert slow.outcome == fast.outcome == "applied"
    assert slow.reason.startswith("COUNTER became proposal prp_")
    assert fast.reason.startswith("COUNTER became proposal prp_") and fast.reason != slow.reason
    for state in (expected, got):
        for audit in state["audit"]:
            audit["data"].pop("proposal", None)
        for proposal in state["proposals"]:
            proposal.pop("inbound_message_id")  # the two stored copies have their own ids
    assert got == expected
    assert [p["status"] for p in got["proposals"]] == ["pending", "superseded"]
    assert len(got["links"]) == 4 and len(got["notices"]) == 2 and got["wakes"]  # 2 each


@pytest.mark.parametrize("shape", ["stale", "unknown", "stranger", "older", "no booking"])
def test_hot_reply_steps_aside_and_writes_nothing(
    runtime: Runtime, admin_headers: dict[str, str], shape: str
) -> None:
    booking_id, uid, to = _setup(runtime, admin_headers)
    attendee, partstat, sequence, the_uid = GUEST, "DECLINED", 0, uid
    with runtime.sessions.begin() as session:
        if shape == "stale":
            session.execute(update(Booking).where(Booking.id == booking_id).values(sequence=2))
            sequence = 1
        elif shape == "older":
            session.execute(
                update(Invitation)
                .where(Invitation.booking_id == booking_id, Invitation.role == "guest")
                .values(last_reply_dtstamp=datetime(2027, 3, 1, 9, tzinfo=UTC) + timedelta(1))
            )
    if shape == "unknown":
        partstat = "MAYBE-LATER"
    elif shape == "stranger":
        attendee = "friend@else.example"
    elif shape == "no booking":
        the_uid = "unknown-uid@elsewhere.example"
    raw = mails.apple(
        uid=the_uid, sequence=sequence, attendee=attendee, to=to["guest"], partstat=partstat
    )
    decision = _hot_steps_aside(runtime, raw, to["guest"], booking_id)
    assert decision.outcome == "ignored" and decision.reason


@pytest.mark.parametrize(
    ("when", "end"),
    [("20270201T100000Z", "20270201T103000Z"), ("20270302T090000Z", "20270302T093000Z")],
    ids=["past", "unchanged"],
)
def test_hot_counter_steps_aside_for_what_create_proposal_refuses(
    runtime: Runtime, admin_headers: dict[str, str], when: str, end: str
) -> None:
    booking_id, uid, to = _setup(runtime, admin_headers)
    raw = mails.gmail(
        method="COUNTER", uid=uid, sequence=0, attendee=GUEST, to=to["guest"],
        partstat="TENTATIVE", start_utc=when, end_utc=end,
    )  # fmt: skip
    decision = _hot_steps_aside(runtime, raw, to["guest"], booking_id)
    assert decision.outcome == "ignored"
    assert "past" in decision.reason or "current time" in decision.reason


def _hot_steps_aside(runtime: Runtime, raw: bytes, to: str, booking_id: str) -> replies.Decision:
    """Check the hot path returns None and writes nothing; what the full path decides."""
    itip = parse_message(raw).itip
    assert itip is not None
    actor = actor_of(runtime, "mailbox")
    assert isinstance(actor.mailer, Mailer)
    stored = store_raw(runtime.sessions, raw, channel="smtp", now=NOW, envelope_to=[to])
    with runtime.sessions() as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        before = _snapshot(session, booking_id, 0)
        if itip.method == "REPLY":
            done = replies.apply_reply_hot(
                session, actor.mailer, row, itip, recipients=(to,), policy="strict", now=NOW,
                actor=actor,
            )  # fmt: skip
        else:
            done = replies.apply_counter_hot(
                session, actor.mailer, row, itip, recipients=(to,), now=NOW
            )
        assert done is None
        assert _snapshot(session, booking_id, 0) == before
        # The full path still decides it, and says why.
        return replies.apply_itip(
            session, actor.mailer, row, itip, recipients=(to,), policy="strict", now=NOW,
            actor=actor,
        )  # fmt: skip
