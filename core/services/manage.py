"""A guest's own booking page: a signed link to see the booking, add it to a calendar,
cancel it with a reason, or ask for a new time (again, while a proposal is pending).

The link (purpose "manage") is issued when the booking is made and works until a day
after the booking ends; unlike the single-use approve and decline links it may be used
any number of times. Opening it changes nothing: cancelling and asking for a new time are
separate POSTs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Booking, Invitation, Proposal, Provider
from core.services import bookings as booking_service
from core.services.errors import InvalidInput, LinkProblem
from core.services.notify import MANAGE, Mailer, invitations_of, manage_token, reschedule_link
from core.services.proposals import open_link

MAX_REASON = 500


@dataclass(frozen=True)
class Managed:
    """What the guest's page shows."""

    booking: Booking
    invitation: Invitation
    provider: Provider
    pending: Proposal | None  # a proposal of a new time that waits for an answer


def guest_manage_token(session: Session, mailer: Mailer, booking: Booking, now: datetime) -> str:
    guest = next(i for i in invitations_of(session, booking) if i.role == "guest")
    return manage_token(session, mailer, booking, guest, now)


def open_manage(session: Session, mailer: Mailer, token: str, now: datetime) -> Managed:
    """The booking behind a manage link, or ``LinkProblem`` saying why not."""
    use = open_link(session, mailer, token, now=now, lock=False)
    if use.link.purpose != MANAGE:
        raise LinkProblem("invalid", "This link is for something else.", use.booking)
    booking = use.booking
    invitation = next(
        (i for i in invitations_of(session, booking) if i.role == use.link.actor_role), None
    )
    provider = session.get(Provider, booking.provider_id)
    if invitation is None or provider is None:
        raise LinkProblem("invalid", "This link no longer points at a booking.", booking)
    pending = session.scalar(
        select(Proposal)
        .where(Proposal.booking_id == booking.id, Proposal.status == "pending")
        .order_by(Proposal.created_at.desc())
        .limit(1)
    )
    return Managed(booking, invitation, provider, pending)


def cancel_managed(
    session: Session,
    mailer: Mailer,
    token: str,
    *,
    reason: str,
    actor: booking_service.Actor,
    now: datetime,
) -> Managed:
    """Cancel the booking for both (CANCEL to each), with the attendee's reason."""
    managed = open_manage(session, mailer, token, now)
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"the reason must be at most {MAX_REASON} characters", code="invalid")
    role = managed.invitation.role
    who = managed.booking.guest_name if role == "guest" else managed.booking.host_name
    said = f"cancelled by {who or 'the ' + role}" + (f": {reason}" if reason else "")
    booking_service.cancel_booking(session, managed.booking.id, actor.named(role), now, reason=said)
    return open_manage(session, mailer, token, now)


def new_time_url(session: Session, mailer: Mailer, token: str, now: datetime) -> str:
    """A fresh "request a new time" link for the attendee (also while one is pending)."""
    managed = open_manage(session, mailer, token, now)
    if managed.booking.status not in booking_service.ACTIVE_STATUSES:
        raise InvalidInput("this booking is cancelled", code="cancelled")
    return reschedule_link(session, mailer, managed.booking, managed.invitation, now)
