"""What an attendee's mail means for a booking: iTIP REPLY, COUNTER, REFRESH, and plain mail.

Each stored inbound message is matched to a booking by UID and to one of its invitations
by the attendee's address (plus-address tags must agree); forwarded copies answered by
someone never invited, stale SEQUENCEs and older DTSTAMPs change nothing. Every decision
is written to the audit log and returned as (outcome, reason) for the message row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.driver import as_utc, dialect_time, driver_batch, driver_rows, insert_of
from core.db.models import Booking, InboundMessage, Invitation
from core.events import record
from core.imip.compose import Mailbox, is_message_id
from core.imip.errors import BadAddress
from core.imip.mail import split_plus
from core.itip.read import ItipMessage, When
from core.services import bookings as booking_service
from core.services import dav_scheduling
from core.services.errors import InvalidInput, ServiceError
from core.services.mailboxes import Mailboxes
from core.services.notify import (
    Change,
    Mailer,
    attendee_locale,
    attendee_zone,
    invitations_of,
    itip_key,
    itip_row,
    mark_sent,
    provider_locale,
    reschedule_link,
    send_itip,
    send_notice,
)
from core.services.outbox import deliver_soon
from core.services.proposals import (
    approval_request,
    check_proposal,
    create_proposal,
    new_proposal,
    other_party,
    proposal_audit,
    proposal_event,
)

Policy = Literal["strict", "soft"]
PARTSTATS = {"ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION", "DELEGATED"}


@dataclass(frozen=True)
class Decision:
    outcome: str  # "applied" or "ignored"
    reason: str
    booking_id: str | None = None


def _audit(
    session: Session, booking: Booking, actor: str, action: str, now: datetime, **data: object
) -> None:
    session.add(booking_service.booking_audit(booking, actor, action, now, **data))


def plus_tags(
    addresses: tuple[str, ...] | list[str], mailboxes: Mailboxes, tenant_id: str
) -> list[str]:
    """The plus-address tags of the addresses that are tenant_id's organizer's, in order,
    each once."""
    tags: dict[str, None] = {}
    for address in addresses:
        try:
            local, tag, domain = split_plus(address)
        except BadAddress:
            continue
        if tag and mailboxes.tenant_of(f"{local}@{domain}") == tenant_id:
            tags[tag] = None
    return list(tags)


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

    hot: a common REPLY or COUNTER goes through ``apply_reply_hot`` or
    ``apply_counter_hot`` (False: the ORM path only).
    """
    method = itip.method.upper()
    done = None
    if hot and method == "REPLY":
        done = apply_reply_hot(
            session, mailer, row, itip, recipients=recipients, policy=policy, now=now, actor=actor
        )
    elif hot and method == "COUNTER":
        done = apply_counter_hot(session, mailer, row, itip, recipients=recipients, now=now)
    if done is not None:
        return done
    # Only the bookings of the tenant whose organizer the message was sent to.
    tenant_id = row.tenant_id
    booking = session.scalar(
        select(Booking).where(Booking.uid == itip.uid, Booking.tenant_id == tenant_id)
    )
    if booking is None:
        scheduled = dav_scheduling.apply_itip(
            session, mailer, row, itip, tags=plus_tags(recipients, mailer.mailboxes, tenant_id),
            now=now,
        )  # fmt: skip
        if scheduled is not None:  # an answer to an event a provider scheduled over CalDAV
            return Decision(scheduled.outcome, scheduled.reason)
        return Decision("ignored", f"no booking has UID {itip.uid!r}")
    tags = set(plus_tags(recipients, mailer.mailboxes, tenant_id))
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
    if declines_for_both(partstat, a.policy, a.booking):
        booking_service.cancel_for_decline(a.session, a.booking, role, now=a.now, actor=a.actor)
        return a.decided("applied", _replied(role, partstat, cancelled=True))
    return a.decided("applied", _replied(role, partstat, cancelled=False))


def declines_for_both(partstat: str, policy: Policy, booking: Booking) -> bool:
    """Whether a REPLY cancels the booking for both: a decline, under the strict policy,
    of a booking still active."""
    active = booking.status in booking_service.ACTIVE_STATUSES
    return partstat == "DECLINED" and policy == "strict" and active


def _replied(role: str, partstat: str, *, cancelled: bool) -> str:
    """The reason a REPLY's decision gives."""
    if cancelled:
        return f"{role} declined: cancelled for both"
    return f"{role} {partstat.lower()}"


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


def counter_terms(
    itip: ItipMessage, booking: Booking, invitation: Invitation
) -> tuple[datetime, datetime, str | None] | None:
    """(start, end, note) a COUNTER proposes, or None when it carries no DTSTART.

    Floating times are read in the attendee's zone; a missing end keeps the duration.
    A TENTATIVE inside a COUNTER (Gmail) is part of the proposal, not an answer.
    """
    zone = invitation.timezone or booking.guest_timezone
    start = _as_utc(itip.event.dtstart, zone)
    end = _as_utc(itip.event.dtend, zone)
    if start is None:
        return None
    if end is None:
        end = start + (booking.end_at - booking.start_at)
    attendee = next((x for x in itip.attendees if x.address == invitation.address.lower()), None)
    note = (attendee.response_comment if attendee else None) or itip.event.comment
    return start, end, note


def _counter(a: _Answer) -> Decision:
    booking, invitation = a.booking, a.invitation
    terms = counter_terms(a.itip, booking, invitation)
    if terms is None:
        return a.decided("ignored", "the COUNTER carries no DTSTART")
    start, end, note = terms
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
    limit_per_day: int,
) -> Decision:
    """Mail without iTIP that answers an invitation gets the sender's reschedule link.

    At most limit_per_day such answers go to one invitation in 24 hours; more plain mail
    is recorded without one, so a mail loop or a flood is not answered mail for mail.
    in_reply_to is header text: it is referenced only when it is a well-formed Message-ID.
    """
    # Locked, so two plain mails processed side by side count each other's answers.
    booking = session.get(Booking, invitation.booking_id, with_for_update=True)
    if booking is None or booking.status != "confirmed" or booking.end_at <= now:
        return Decision("ignored", "the booking is no longer open to changes")
    if _auto_replies_since(session, booking, invitation, now - timedelta(days=1)) >= limit_per_day:
        _audit(session, booking, invitation.address, "mail.auto_reply.limited", now, message=row.id)
        return Decision("ignored", "auto-reply limit reached", booking.id)
    link = reschedule_link(session, mailer, booking, invitation, now)
    reference = f"<{in_reply_to}>" if in_reply_to else None
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
        locale=attendee_locale(booking, invitation, lambda: provider_locale(session, booking)),
        in_reply_to=reference if reference and is_message_id(reference) else None,
    )
    _audit(session, booking, invitation.address, "mail.auto_reply", now, message=row.id)
    return Decision("applied", "answered with a reschedule link", booking.id)


_AUTO_REPLIES = (
    "SELECT count(*) FROM outbound_messages WHERE booking_id = :booking"
    " AND kind = 'notice.auto_reply' AND recipient = :recipient AND created_at > :since"
)


def _auto_replies_since(
    session: Session, booking: Booking, invitation: Invitation, since: datetime
) -> int:
    dialect = session.get_bind().dialect.name
    params = {
        "booking": booking.id,
        "recipient": invitation.address,
        "since": dialect_time(dialect, since),
    }
    return int(driver_rows(session, _AUTO_REPLIES, params)[0][0])


# --- the common REPLY and COUNTER on the driver's cursor -------------------------------------

_B = (
    "id", "tenant_id", "provider_id", "uid", "sequence", "status", "title", "start_at",
    "end_at", "host_name", "guest_name", "guest_timezone", "guest_locale",
)  # fmt: skip
_I = (
    "id", "tenant_id", "booking_id", "role", "address", "name", "timezone", "plus_tag",
    "partstat", "last_method_sent", "last_reply_dtstamp", "delivery_state",
)  # fmt: skip
_BOOKING_BY_UID = (
    f"SELECT {', '.join('b.' + c for c in _B)}, p.timezone, p.locale FROM bookings b"
    " JOIN providers p ON p.id = b.provider_id WHERE b.uid = :uid AND b.tenant_id = :tenant"
)
_INVITATIONS_BY_UID = (
    f"SELECT {', '.join(_I)} FROM invitations WHERE booking_id ="
    " (SELECT id FROM bookings WHERE uid = :uid AND tenant_id = :tenant) ORDER BY role"
)
_CANCELS_QUEUED = (
    "SELECT idempotency_key FROM outbound_messages WHERE uid = :uid AND method = 'CANCEL'"
    " AND tenant_id = :tenant"
)
_ANSWERED = (
    "UPDATE invitations SET partstat = :partstat, last_reply_dtstamp = :stamp,"
    " updated_at = :now WHERE id = :id"
)
_CANCELLED = (
    "UPDATE bookings SET status = :status, cancel_reason = :reason, sequence = :sequence,"
    " updated_at = :now WHERE id = :id"
)
_SENT = (
    "UPDATE invitations SET last_method_sent = :method, last_sequence_sent = :sequence,"
    " last_message_id = :message_id, updated_at = :now WHERE id = :id"
)
_SUPERSEDED = (
    "UPDATE proposals SET status = 'superseded', decided_at = :now"
    " WHERE booking_id = :booking AND status = 'pending'"
)


@dataclass(frozen=True)
class _Matched:
    """What the hot paths read in their first batch, with the answering invitation."""

    booking: Booking  # not in any session, like the invitations
    provider_zone: str | None
    provider_locale: str | None
    invitations: list[Invitation]
    invitation: Invitation
    queued_cancels: set[str]


def _match_hot(
    session: Session,
    mailer: Mailer,
    tenant_id: str,
    itip: ItipMessage,
    recipients: tuple[str, ...],
    *,
    cancels: bool,
) -> _Matched | None:
    """Read tenant_id's booking (locked), its invitations and (cancels) the CANCELs queued
    for it, in one batch; None unless an invited attendee answers the current SEQUENCE."""
    dialect = session.get_bind().dialect.name
    lock = " FOR UPDATE OF b" if dialect == "postgresql" else ""
    where = {"uid": itip.uid, "tenant": tenant_id}
    statements = [
        (_BOOKING_BY_UID + lock, where),
        (_INVITATIONS_BY_UID, where),
    ]
    if cancels:
        statements.append((_CANCELS_QUEUED, where))
    found, rows, *queued = driver_batch(session, statements)
    if not found:
        return None
    *values, provider_zone, provider_locale = found[0]
    booking = Booking(**dict(zip(_B, values, strict=True)))
    booking.start_at, booking.end_at = as_utc(booking.start_at), as_utc(booking.end_at)
    invitations = [Invitation(**dict(zip(_I, r, strict=True))) for r in rows]
    for inv in invitations:
        stamp = inv.last_reply_dtstamp
        inv.last_reply_dtstamp = None if stamp is None else as_utc(stamp)
    tags = set(plus_tags(recipients, mailer.mailboxes, tenant_id))
    invitation, _ = pick_invitation(invitations, itip, tags)
    if invitation is None or itip.sequence < booking.sequence:
        return None
    keys = {key for (key,) in queued[0]} if queued else set()
    return _Matched(booking, provider_zone, provider_locale, invitations, invitation, keys)


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
    matched = _match_hot(session, mailer, row.tenant_id, itip, recipients, cancels=True)
    if matched is None:
        return None
    booking, invitation = matched.booking, matched.invitation
    partstat, problem = reply_partstat(itip, invitation)
    if problem is not None:
        return None
    dialect = session.get_bind().dialect

    def at(moment: datetime) -> Any:
        return dialect_time(dialect.name, moment)

    role = invitation.role
    record("imip.in", method="REPLY", booking_id=booking.id, role=role)
    answered = booking_service.booking_audit(
        booking, invitation.address, "imip.reply", now, message=row.id, partstat=partstat.lower()
    )
    writes = [
        insert_of(answered, dialect),
        (_ANSWERED, {"partstat": partstat.lower(), "stamp": at(itip.dtstamp or now),
                     "now": at(now), "id": invitation.id}),
    ]  # fmt: skip
    cancels = declines_for_both(partstat, policy, booking)
    sent: list[Invitation] = []
    if cancels:
        booking_service.mark_cancelled(booking, booking_service.decline_reason(role), now)
        writes.append(
            (_CANCELLED, {"status": booking.status, "reason": booking.cancel_reason,
                          "sequence": booking.sequence, "now": at(now), "id": booking.id})
        )  # fmt: skip
        cancelled = booking_service.change_audit(booking, "cancelled", actor.named(role).name, now)
        writes.append(insert_of(cancelled, dialect))
        for target in matched.invitations:
            key = itip_key(booking, target, "CANCEL")
            if not booking_service.has_the_event(target) or key in matched.queued_cancels:
                continue
            zone = attendee_zone(booking, target, lambda: matched.provider_zone)
            language = attendee_locale(booking, target, lambda: matched.provider_locale)
            queued = itip_row(
                mailer, booking, target, "cancellation", now, key=key, zone_name=zone,
                reschedule_url=None, locale=language,
            )  # fmt: skip
            mark_sent(target, booking, "cancellation", queued.message_id, now)
            writes.append(insert_of(queued, dialect))
            writes.append(
                (_SENT, {"method": target.last_method_sent, "sequence": target.last_sequence_sent,
                         "message_id": target.last_message_id, "now": at(now), "id": target.id})
            )  # fmt: skip
            sent.append(target)
    driver_batch(session, writes)
    if not cancels:
        return Decision("applied", _replied(role, partstat, cancelled=False), booking.id)
    booking_service.record_change(booking, "cancelled")
    for target in sent:
        record("imip.out", method="CANCEL", booking_id=booking.id, role=target.role)
    if sent:
        deliver_soon(session, now)
    return Decision("applied", _replied(role, partstat, cancelled=True), booking.id)


def apply_counter_hot(
    session: Session,
    mailer: Mailer,
    row: InboundMessage,
    itip: ItipMessage,
    *,
    recipients: tuple[str, ...],
    now: datetime,
) -> Decision | None:
    """``apply_itip`` for the common COUNTER: a new time the counterparty is asked about.

    Two batches, like ``apply_reply_hot``: read the booking (locked) and its
    invitations; then supersede older pending proposals and insert the proposal, its
    approve and decline links, the approval request to the counterparty and the audit
    row. A COUNTER that ``create_proposal`` would refuse, or that needs explaining,
    writes nothing and returns None.
    """
    matched = _match_hot(session, mailer, row.tenant_id, itip, recipients, cancels=False)
    if matched is None:
        return None
    booking, invitation = matched.booking, matched.invitation
    terms = counter_terms(itip, booking, invitation)
    other = other_party(matched.invitations, invitation.role)
    if terms is None or other is None:
        return None
    start, end, note = terms
    try:
        check_proposal(booking, start, end, now)
    except InvalidInput:
        return None
    proposal = new_proposal(
        mailer, booking, role=invitation.role, address=invitation.address, start=start,
        end=end, note=note, via="counter", now=now, inbound_message_id=row.id,
    )  # fmt: skip
    language = attendee_locale(booking, other, lambda: matched.provider_locale)
    links, request = approval_request(mailer, booking, proposal, other, now, locale=language)
    dialect = session.get_bind().dialect
    news = (proposal, *links, request, proposal_audit(booking, proposal, now))
    superseded = (_SUPERSEDED, {"now": dialect_time(dialect.name, now), "booking": booking.id})
    driver_batch(session, [superseded, *(insert_of(new, dialect) for new in news)])
    record("imip.in", method="COUNTER", booking_id=booking.id, role=invitation.role)
    proposal_event("created", proposal, via="counter")
    deliver_soon(session, now)
    return Decision("applied", f"COUNTER became proposal {proposal.id}", booking.id)
