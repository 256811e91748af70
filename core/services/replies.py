"""What an attendee's mail means for a booking: iTIP REPLY, COUNTER, REFRESH, and plain mail.

Each stored inbound message is matched to a booking by UID and to one of its invitations
by the attendee's address (plus-address tags must agree); forwarded copies answered by
someone never invited, stale SEQUENCEs and older DTSTAMPs change nothing. Every decision
is written to the audit log and returned as (outcome, reason) for the message row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import tokens
from core.db.models import AuditEntry, Booking, InboundMessage, Invitation
from core.events import record
from core.itip.read import ItipMessage, When
from core.services import bookings as booking_service
from core.services.errors import ServiceError
from core.services.notify import (
    Change,
    Mailer,
    invitations_of,
    reschedule_link,
    send_itip,
    send_notice,
)
from core.services.proposals import create_proposal
from mailagent.compose import Mailbox

Policy = Literal["strict", "soft"]
PARTSTATS = {"ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION", "DELEGATED"}
ACTIVE = ("confirmed", "requested")


@dataclass(frozen=True)
class Decision:
    outcome: str  # "applied" or "ignored"
    reason: str
    booking_id: str | None = None


def _audit(
    session: Session, booking: Booking, actor: str, action: str, now: datetime, **data: object
) -> None:
    session.add(
        AuditEntry(
            tenant_id=booking.tenant_id,
            at=now,
            actor=actor,
            action=action,
            subject_type="booking",
            subject_id=booking.id,
            data=dict(data),
        )
    )


def _tags(addresses: tuple[str, ...] | list[str], organizer: str) -> set[str]:
    base = organizer.lower()
    found = set()
    for address in addresses:
        plain, tag = tokens.split_plus_address(address.lower())
        if tag and plain == base:
            found.add(tag)
    return found


def match_invitation(
    session: Session, booking: Booking, itip: ItipMessage, tags: set[str]
) -> tuple[Invitation | None, str]:
    """The invitation this iTIP answer speaks for, or None with the reason."""
    invitations = invitations_of(session, booking)
    addresses = {a.address for a in itip.attendees}
    by_address = [i for i in invitations if i.address.lower() in addresses]
    by_tag = [i for i in invitations if i.plus_tag in tags]
    if by_tag and by_address and by_tag[0] not in by_address:
        return None, "the plus-address tag and the attendee belong to different invitations"
    if by_address:
        return (by_tag or by_address)[0], ""
    return None, "the attendee was never invited to this booking (a forwarded copy?)"


@dataclass(frozen=True)
class _Answer:
    """One attendee's iTIP message, matched to its booking and invitation."""

    session: Session
    mailer: Mailer
    row: InboundMessage
    itip: ItipMessage
    booking: Booking
    invitation: Invitation
    policy: Policy
    now: datetime
    actor: booking_service.Actor

    def audit(self, action: str, **data: object) -> None:
        _audit(
            self.session,
            self.booking,
            self.invitation.address,
            action,
            self.now,
            message=self.row.id,
            **data,
        )

    def decided(self, outcome: str, reason: str) -> Decision:
        return Decision(outcome, reason, self.booking.id)


def apply_itip(
    session: Session,
    mailer: Mailer,
    row: InboundMessage,
    itip: ItipMessage,
    *,
    recipients: tuple[str, ...],
    policy: Policy,
    now: datetime,
    actor: booking_service.Actor,
) -> Decision:
    """Act on one inbound iTIP message; never raises for what the sender got wrong."""
    booking = session.scalar(select(Booking).where(Booking.uid == itip.uid))
    if booking is None:
        return Decision("ignored", f"no booking has UID {itip.uid!r}")
    tags = _tags(recipients, mailer.organizer_email)
    invitation, why = match_invitation(session, booking, itip, tags)
    if invitation is None:
        sender = row.from_address or "?"
        _audit(session, booking, sender, "imip.ignored", now, reason=why, message=row.id)
        return Decision("ignored", why, booking.id)
    answer = _Answer(session, mailer, row, itip, booking, invitation, policy, now, actor)
    method = itip.method.upper()
    record("imip.in", method=method, booking_id=booking.id, role=invitation.role)
    if method != "REFRESH" and itip.sequence < booking.sequence:
        answer.audit("imip.stale", method=method)
        return answer.decided(
            "ignored", f"stale SEQUENCE {itip.sequence} < current {booking.sequence}"
        )
    handler = {"REPLY": _reply, "COUNTER": _counter, "REFRESH": _refresh}.get(method)
    if handler is None:
        answer.audit(f"imip.{method.lower()}")
        return answer.decided("ignored", f"{method} recorded; nothing to do")
    try:
        return handler(answer)
    except ServiceError as exc:
        answer.audit("imip.refused", method=method, reason=exc.message)
        return answer.decided("ignored", exc.message)


def _reply(a: _Answer) -> Decision:
    attendee = next(x for x in a.itip.attendees if x.address == a.invitation.address.lower())
    partstat = attendee.partstat.upper()
    if partstat not in PARTSTATS:
        return a.decided("ignored", f"unknown PARTSTAT {partstat}")
    stamp, last = a.itip.dtstamp, a.invitation.last_reply_dtstamp
    if stamp is not None and last is not None and stamp < last:
        return a.decided("ignored", "an older answer than the one already applied")
    a.invitation.partstat = partstat.lower()
    a.invitation.last_reply_dtstamp = stamp or a.now
    a.invitation.updated_at = a.now
    a.audit("imip.reply", partstat=partstat.lower())
    role = a.invitation.role
    if partstat == "DECLINED" and a.policy == "strict" and a.booking.status in ACTIVE:
        booking_service.cancel_for_decline(a.session, a.booking, role, now=a.now, actor=a.actor)
        return a.decided("applied", f"{role} declined: cancelled for both")
    return a.decided("applied", f"{role} {partstat.lower()}")


def _as_utc(value: When | None, zone_hint: str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=ZoneInfo(zone_hint or "UTC")).astimezone(UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), UTC)
    return None


def _counter(a: _Answer) -> Decision:
    # A TENTATIVE inside a COUNTER (Gmail) is part of the proposal, not an answer.
    booking, invitation = a.booking, a.invitation
    zone = invitation.timezone or booking.guest_timezone
    start = _as_utc(a.itip.event.dtstart, zone)
    end = _as_utc(a.itip.event.dtend, zone)
    if start is None:
        return a.decided("ignored", "the COUNTER carries no DTSTART")
    if end is None:
        end = start + (booking.end_at - booking.start_at)
    attendee = next((x for x in a.itip.attendees if x.address == invitation.address.lower()), None)
    note = (attendee.response_comment if attendee else None) or a.itip.event.comment
    proposal = create_proposal(
        a.session,
        a.mailer,
        booking,
        role=invitation.role,
        address=invitation.address,
        start=start,
        end=end,
        note=note,
        via="counter",
        now=a.now,
        inbound_message_id=a.row.id,
    )
    return a.decided("applied", f"COUNTER became proposal {proposal.id}")


def _refresh(a: _Answer) -> Decision:
    change: Change = "cancellation" if a.booking.status == "cancelled" else "update"
    send_itip(
        a.session,
        a.mailer,
        a.booking,
        change,
        a.now,
        among=[a.invitation],
        refresh_of=str(a.row.id),
    )
    return a.decided("applied", "current copy sent again")


def answer_plain_mail(
    session: Session,
    mailer: Mailer,
    row: InboundMessage,
    invitation: Invitation,
    *,
    subject: str,
    in_reply_to: str | None,
    now: datetime,
) -> Decision:
    """Mail without iTIP that answers an invitation gets the sender's reschedule link."""
    booking = session.get(Booking, invitation.booking_id)
    if booking is None or booking.status != "confirmed" or booking.end_at <= now:
        return Decision("ignored", "the booking is no longer open to changes")
    link = reschedule_link(session, mailer, booking, invitation, now)
    send_notice(
        session,
        mailer,
        template="auto_reply",
        key=f"auto-reply:{row.id}",
        booking=booking,
        to=Mailbox(invitation.address, invitation.name or ""),
        context={"title": booking.title, "reschedule_url": link, "original_subject": subject},
        now=now,
        zone_name=invitation.timezone,
        in_reply_to=f"<{in_reply_to}>" if in_reply_to else None,
    )
    _audit(session, booking, invitation.address, "mail.auto_reply", now, message=row.id)
    return Decision("applied", "answered with a reschedule link", booking.id)
