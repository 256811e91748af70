"""What an attendee's mail means for a booking: iTIP REPLY, COUNTER, REFRESH, and plain mail.

Each stored inbound message is matched to a booking by UID and to one of its invitations
by the attendee's address (plus-address tags must agree); forwarded copies answered by
someone never invited, stale SEQUENCEs and older DTSTAMPs change nothing. Every decision
is written to the audit log and returned as (outcome, reason) for the message row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import tokens
from core.db.models import AuditEntry, Booking, InboundMessage, Invitation
from core.events import record
from core.itip.read import ItipMessage, When
from core.services import bookings as booking_service
from core.services.busy import as_utc, dialect_time, driver_batch
from core.services.errors import ServiceError
from core.services.notify import (
    Change,
    Mailer,
    compose_change,
    deliver_soon,
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


def plus_tags(addresses: tuple[str, ...] | list[str], organizer: str) -> set[str]:
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
    return pick_invitation(invitations_of(session, booking), itip, tags)


def pick_invitation(
    invitations: Sequence[Invitation], itip: ItipMessage, tags: set[str]
) -> tuple[Invitation | None, str]:
    """``match_invitation`` among the booking's invitations, already loaded."""
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
    hot: bool = True,
) -> Decision:
    """Act on one inbound iTIP message; never raises for what the sender got wrong.

    hot: a common REPLY goes through ``apply_reply_hot`` (False: the ORM path only).
    """
    if hot and itip.method.upper() == "REPLY":
        done = apply_reply_hot(
            session, mailer, row, itip, recipients=recipients, policy=policy, now=now, actor=actor
        )
        if done is not None:
            return done
    booking = session.scalar(select(Booking).where(Booking.uid == itip.uid))
    if booking is None:
        return Decision("ignored", f"no booking has UID {itip.uid!r}")
    tags = plus_tags(recipients, mailer.organizer_email)
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


def reply_partstat(itip: ItipMessage, invitation: Invitation) -> tuple[str, str | None]:
    """The PARTSTAT a REPLY gives the invitation, and why it cannot be applied (or None)."""
    attendee = next(x for x in itip.attendees if x.address == invitation.address.lower())
    partstat = attendee.partstat.upper()
    if partstat not in PARTSTATS:
        return partstat, f"unknown PARTSTAT {partstat}"
    stamp, last = itip.dtstamp, invitation.last_reply_dtstamp
    if stamp is not None and last is not None and stamp < last:
        return partstat, "an older answer than the one already applied"
    return partstat, None


def _reply(a: _Answer) -> Decision:
    partstat, problem = reply_partstat(a.itip, a.invitation)
    if problem is not None:
        return a.decided("ignored", problem)
    stamp = a.itip.dtstamp
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


# --- the common REPLY on the driver's cursor ------------------------------------------------

_B = (
    "id", "tenant_id", "provider_id", "uid", "sequence", "status", "title", "start_at",
    "end_at", "host_name", "guest_name", "guest_timezone",
)  # fmt: skip
_I = (
    "id", "tenant_id", "booking_id", "role", "address", "name", "timezone", "plus_tag",
    "partstat", "last_method_sent", "last_reply_dtstamp", "delivery_state",
)  # fmt: skip
_BOOKING_BY_UID = (
    f"SELECT {', '.join('b.' + c for c in _B)}, p.timezone FROM bookings b"
    " JOIN providers p ON p.id = b.provider_id WHERE b.uid = :uid"
)
_INVITATIONS_BY_UID = (
    f"SELECT {', '.join(_I)} FROM invitations WHERE booking_id ="
    " (SELECT id FROM bookings WHERE uid = :uid) ORDER BY role"
)
_CANCELS_QUEUED = (
    "SELECT idempotency_key FROM outbound_messages WHERE uid = :uid AND method = 'CANCEL'"
)
_AUDIT = (
    "INSERT INTO audit_log (tenant_id, at, actor, action, subject_type, subject_id, data)"
    " VALUES (:tenant, :at, :actor, :action, 'booking', :booking, :data)"
)
_ANSWERED = (
    "UPDATE invitations SET partstat = :partstat, last_reply_dtstamp = :stamp,"
    " updated_at = :now WHERE id = :id"
)
_CANCELLED = (
    "UPDATE bookings SET status = 'cancelled', cancel_reason = :reason, sequence = :sequence,"
    " updated_at = :now WHERE id = :id"
)
_QUEUE = (
    "INSERT INTO outbound_messages (tenant_id, idempotency_key, kind, uid, sequence, attendee,"
    " method, booking_id, recipient, message_id, mime, status, attempts, next_attempt_at,"
    " created_at) VALUES (:tenant, :key, 'itip.cancellation', :uid, :sequence, :attendee,"
    " 'CANCEL', :booking, :recipient, :message_id, :mime, 'pending', 0, :now, :now)"
)
_CANCEL_SENT = (
    "UPDATE invitations SET last_method_sent = 'CANCEL', last_sequence_sent = :sequence,"
    " last_message_id = :message_id, updated_at = :now WHERE id = :id"
)


def apply_reply_hot(
    session: Session,
    mailer: Mailer,
    row: InboundMessage,
    itip: ItipMessage,
    *,
    recipients: tuple[str, ...],
    policy: Policy,
    now: datetime,
    actor: booking_service.Actor,
) -> Decision | None:
    """``apply_itip`` for the common REPLY: an invited attendee answers the current SEQUENCE.

    The ORM path costs far more Python time than the statements themselves, and a
    REPLY is what a busy organizer mailbox mostly receives. Here it is two batches on
    the driver's cursor (pipelined on PostgreSQL): read the booking (locked), its
    invitations and the CANCELs already queued; then write the answer, and under the
    strict policy a decline's cancellation, audit rows and the CANCEL to each attendee
    who has the event. Anything out of the ordinary (no such booking, an uninvited or
    mismatched sender, a stale SEQUENCE, an unknown PARTSTAT, an older answer) writes
    nothing and returns None, for ``apply_itip`` to decide and explain.
    """
    dialect = session.get_bind().dialect.name
    lock = " FOR UPDATE OF b" if dialect == "postgresql" else ""
    found, rows, queued = driver_batch(
        session,
        [
            (_BOOKING_BY_UID + lock, {"uid": itip.uid}),
            (_INVITATIONS_BY_UID, {"uid": itip.uid}),
            (_CANCELS_QUEUED, {"uid": itip.uid}),
        ],
    )
    if not found:
        return None
    *values, provider_zone = found[0]
    booking = Booking(**dict(zip(_B, values, strict=True)))
    booking.start_at, booking.end_at = as_utc(booking.start_at), as_utc(booking.end_at)
    invitations = [Invitation(**dict(zip(_I, r, strict=True))) for r in rows]
    for inv in invitations:
        stamp = inv.last_reply_dtstamp
        inv.last_reply_dtstamp = None if stamp is None else as_utc(stamp)
    invitation, _ = pick_invitation(
        invitations, itip, plus_tags(recipients, mailer.organizer_email)
    )
    if invitation is None or itip.sequence < booking.sequence:
        return None
    partstat, problem = reply_partstat(itip, invitation)
    if problem is not None:
        return None

    def at(moment: datetime) -> Any:
        return dialect_time(dialect, moment)

    def audit(actor_name: str, action: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body = Jsonb(data) if dialect == "postgresql" else json.dumps(data)
        return _AUDIT, {
            "tenant": booking.tenant_id, "at": at(now), "actor": actor_name, "action": action,
            "booking": booking.id, "data": body,
        }  # fmt: skip

    role = invitation.role
    record("imip.in", method="REPLY", booking_id=booking.id, role=role)
    stamp = itip.dtstamp or now
    writes = [
        audit(invitation.address, "imip.reply", {"message": row.id, "partstat": partstat.lower()}),
        (_ANSWERED, {"partstat": partstat.lower(), "stamp": at(stamp), "now": at(now),
                     "id": invitation.id}),
    ]  # fmt: skip
    cancels = partstat == "DECLINED" and policy == "strict" and booking.status in ACTIVE
    sent: list[tuple[Invitation, str]] = []
    if cancels:
        booking.sequence += 1
        booking.status = "cancelled"
        writes.append(
            (_CANCELLED, {"reason": f"declined by the {role}", "sequence": booking.sequence,
                          "now": at(now), "id": booking.id})
        )  # fmt: skip
        writes.append(
            audit(actor.named(role).name, "booking.cancelled", {
                "status": "cancelled", "sequence": booking.sequence,
                "start": booking.start_at.isoformat(), "end": booking.end_at.isoformat(),
            })
        )  # fmt: skip
        already = {key for (key,) in queued}
        for target in invitations:  # only those who were sent the event get its CANCEL
            key = f"{booking.uid}:{booking.sequence}:{target.address}:CANCEL"
            if target.last_method_sent != "REQUEST" or key in already:
                continue
            zone = target.timezone or (
                provider_zone if target.role == "host" else booking.guest_timezone
            )
            mime, message_id = compose_change(
                mailer, booking, target, "cancellation", now, key, zone, None
            )
            writes.append(
                (_QUEUE, {"tenant": booking.tenant_id, "key": key, "uid": booking.uid,
                          "sequence": booking.sequence, "attendee": target.address.lower(),
                          "booking": booking.id, "recipient": target.address,
                          "message_id": message_id, "mime": mime, "now": at(now)})
            )  # fmt: skip
            writes.append(
                (_CANCEL_SENT, {"sequence": booking.sequence, "message_id": message_id,
                                "now": at(now), "id": target.id})
            )  # fmt: skip
            sent.append((target, key))
    driver_batch(session, writes)
    if not cancels:
        return Decision("applied", f"{role} {partstat.lower()}", booking.id)
    record(
        "cal.event.cancelled",
        booking_id=booking.id,
        provider_id=booking.provider_id,
        sequence=booking.sequence,
    )
    for target, _ in sent:
        record("imip.out", method="CANCEL", booking_id=booking.id, role=target.role)
    if sent:
        deliver_soon(session, now)
    return Decision("applied", f"{role} declined: cancelled for both", booking.id)
