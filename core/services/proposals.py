"""Requests for a new time: from a "Request a new time" link or an iTIP COUNTER.

A proposal is routed to the counterparty as one-click approve / decline links. Approval
applies the new time only if the booking's SEQUENCE has not moved since the proposal was
made, so a second approval, or approval of a superseded proposal, changes nothing and
says why. Links are single-use: the magic_links row is marked used in the same
transaction that acts on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import tokens
from core.db.models import (
    AuditEntry,
    Booking,
    Invitation,
    MagicLink,
    OutboundMessage,
    Proposal,
    new_id,
)
from core.errors import TokenError, TokenExpired
from core.events import record
from core.imip.compose import Mailbox
from core.metrics import PROPOSALS, RESCHEDULE_SECONDS
from core.services import bookings as booking_service
from core.services.errors import InvalidInput, LinkProblem
from core.services.notify import (
    Mailer,
    attendee_locale,
    invitations_of,
    new_link,
    notice_row,
    provider_locale,
    reschedule_link,
    send_declinecounter,
    send_notice,
)
from core.services.outbox import deliver_soon


@dataclass(frozen=True)
class LinkUse:
    """A verified, still unused link and what it points at."""

    link: MagicLink
    booking: Booking
    proposal: Proposal | None
    claims: tokens.TokenClaims


def proposal_event(event: str, proposal: Proposal, **fields: object) -> None:
    """``cal.proposal.<event>`` in the log and the proposals counter."""
    PROPOSALS.labels(event=event).inc()
    record(
        f"cal.proposal.{event}",
        booking_id=proposal.booking_id,
        proposal_id=proposal.id,
        **fields,
    )


def open_link(
    session: Session, mailer: Mailer, token: str, *, now: datetime, lock: bool
) -> LinkUse:
    """Verify token against its stored hash; raise LinkProblem saying what is wrong."""
    query = select(MagicLink).where(MagicLink.token_hash == tokens.token_hash(token))
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    link = session.scalar(query)
    if link is None:
        raise LinkProblem("invalid", "This link is not valid. It may have been mistyped.")
    booking = session.get(Booking, link.booking_id) if link.booking_id else None
    if booking is None:
        raise LinkProblem("invalid", "This link no longer points at a booking.")
    try:
        claims = tokens.verify(mailer.secret, token, now=now, purpose=link.purpose)
    except TokenExpired:
        raise LinkProblem("expired", "This link has expired.", booking) from None
    except TokenError:
        raise LinkProblem("invalid", "This link is not valid.", booking) from None
    if claims.booking_id != booking.id or not tokens.claims_match_address(
        mailer.secret, claims, link.actor_address
    ):
        raise LinkProblem("invalid", "This link is not valid.", booking)
    if link.used_at is not None:
        raise LinkProblem("used", "This link has already been used.", booking)
    proposal = session.get(Proposal, link.proposal_id) if link.proposal_id else None
    return LinkUse(link, booking, proposal, claims)


def _audit(session: Session, booking: Booking, actor: str, action: str, **data: object) -> None:
    now: datetime = data.pop("now")  # type: ignore[assignment]
    facts = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}
    session.add(booking_service.booking_audit(booking, actor, action, now, **facts))


def counterparty(session: Session, booking: Booking, role: str) -> Invitation | None:
    return other_party(invitations_of(session, booking), role)


def other_party(invitations: Sequence[Invitation], role: str) -> Invitation | None:
    """Among the booking's invitations, the one a proposal by ``role`` is routed to."""
    other = "guest" if role == "host" else "host"
    return next((i for i in invitations if i.role == other), None)


def create_proposal(
    session: Session,
    mailer: Mailer,
    booking: Booking,
    *,
    role: str,
    address: str,
    start: datetime,
    end: datetime,
    note: str | None,
    via: str,
    now: datetime,
    inbound_message_id: int | None = None,
) -> Proposal:
    """Store a pending proposal, supersede older ones, and mail the counterparty links."""
    check_proposal(booking, start, end, now)
    other = counterparty(session, booking, role)
    if other is None:
        raise InvalidInput("this booking has no counterparty to ask")
    session.execute(
        update(Proposal)
        .where(Proposal.booking_id == booking.id, Proposal.status == "pending")
        .values(status="superseded", decided_at=now)
    )
    proposal = new_proposal(
        mailer, booking, role=role, address=address, start=start, end=end, note=note, via=via,
        now=now, inbound_message_id=inbound_message_id,
    )  # fmt: skip
    session.add(proposal)
    session.flush()
    language = attendee_locale(booking, other, lambda: provider_locale(session, booking))
    links, request = approval_request(mailer, booking, proposal, other, now, locale=language)
    session.add_all([*links, request, proposal_audit(booking, proposal, now)])
    deliver_soon(session, now)
    proposal_event("created", proposal, via=via)
    return proposal


def check_proposal(booking: Booking, start: datetime, end: datetime, now: datetime) -> None:
    """Raise InvalidInput when [start, end) cannot be proposed for the booking."""
    if booking.status not in ("confirmed", "requested"):
        raise InvalidInput(f"this booking is {booking.status}; no new time can be proposed")
    if end <= start:
        raise InvalidInput("the proposed end must be after its start", code="invalid_range")
    if start < now:
        raise InvalidInput("the proposed time is in the past", code="in_the_past")
    if start == booking.start_at and end == booking.end_at:
        raise InvalidInput("that is the current time of the booking", code="unchanged")


def new_proposal(
    mailer: Mailer,
    booking: Booking,
    *,
    role: str,
    address: str,
    start: datetime,
    end: datetime,
    note: str | None,
    via: str,
    now: datetime,
    inbound_message_id: int | None,
) -> Proposal:
    """A pending proposal row, not yet in any session."""
    return Proposal(
        id=new_id("prp"),
        tenant_id=booking.tenant_id,
        booking_id=booking.id,
        proposed_by=role,
        proposer_address=address,
        start_at=start,
        end_at=end,
        note=(note or "").strip()[:2000] or None,
        status="pending",
        via=via,
        base_sequence=booking.sequence,
        inbound_message_id=inbound_message_id,
        created_at=now,
        expires_at=now + mailer.approve_ttl,
    )


def proposal_audit(booking: Booking, proposal: Proposal, now: datetime) -> AuditEntry:
    """The audit row of a new proposal."""
    return booking_service.booking_audit(
        booking, proposal.proposer_address, "proposal.created", now, proposal=proposal.id,
        via=proposal.via,
    )  # fmt: skip


def approval_request(
    mailer: Mailer,
    booking: Booking,
    proposal: Proposal,
    other: Invitation,
    now: datetime,
    *,
    locale: str | None = None,
) -> tuple[list[MagicLink], OutboundMessage]:
    """The counterparty's approve and decline links and the notice carrying them (new rows).

    The notice's key names the new proposal, so it cannot have been queued before.
    """
    urls, links = {}, []
    for verb in ("approve", "decline"):
        token, link = new_link(
            mailer, purpose=verb, booking=booking, role=other.role, address=other.address,
            expires_at=proposal.expires_at, now=now, proposal_id=proposal.id,
        )  # fmt: skip
        links.append(link)
        urls[f"{verb}_url"] = mailer.url(f"/{verb}?t=", token, booking.tenant_id)
    proposer_name = booking.guest_name if proposal.proposed_by == "guest" else booking.host_name
    request = notice_row(
        mailer,
        template="approval_request",
        key=f"proposal:{proposal.id}:{other.address}",
        booking=booking,
        to=Mailbox(other.address, other.name or ""),
        context={
            **_times(booking, proposal),
            "note": proposal.note,
            "proposer_label": proposer_name or "The other participant",
            "expires_at": proposal.expires_at,
            **urls,
        },
        now=now,
        zone_name=other.timezone,
        locale=locale,
    )
    return links, request


def _use(session: Session, use: LinkUse, now: datetime) -> None:
    use.link.used_at = now
    if use.proposal is not None:
        # The sibling link (approve ↔ decline) dies with this one.
        session.execute(
            update(MagicLink)
            .where(MagicLink.proposal_id == use.proposal.id, MagicLink.used_at.is_(None))
            .values(used_at=now)
        )


def _pending_or_explain(use: LinkUse) -> Proposal:
    proposal = use.proposal
    if proposal is None:
        raise LinkProblem("invalid", "This link is not for a proposed time.", use.booking)
    if proposal.status != "pending":
        words = {
            "approved": "was already approved",
            "declined": "was already declined",
            "superseded": "was replaced by a newer proposal",
            "expired": "has expired",
        }.get(proposal.status, f"is {proposal.status}")
        raise LinkProblem("not_pending", f"This proposed time {words}.", use.booking)
    return proposal


def approve(
    session: Session, mailer: Mailer, token: str, *, now: datetime, actor: booking_service.Actor
) -> Proposal:
    """Apply the proposal behind an approve link (one transaction, serialized per provider)."""
    use = open_link(session, mailer, token, now=now, lock=True)
    if use.link.purpose != "approve":
        raise LinkProblem("invalid", "This is not an approval link.", use.booking)
    proposal = _pending_or_explain(use)
    booking = booking_service.lock_booking(session, use.booking.id)
    if booking.status not in ("confirmed", "requested"):
        raise LinkProblem("cancelled", f"This booking is {booking.status}.", booking)
    if booking.sequence != proposal.base_sequence or proposal.expires_at <= now:
        proposal.status = "superseded" if proposal.expires_at > now else "expired"
        proposal.decided_at = now
        _use(session, use, now)
        raise LinkProblem(
            "moved",
            "The booking has changed since this time was proposed, so it was not applied.",
            booking,
        )
    booking_service.move_booking(
        session, booking, proposal.start_at, proposal.end_at, now=now, actor=actor
    )
    proposal.status = "approved"
    proposal.decided_at = now
    proposal.decided_by = use.link.actor_address
    _use(session, use, now)
    _audit(
        session, booking, use.link.actor_address, "proposal.approved", now=now, proposal=proposal.id
    )
    RESCHEDULE_SECONDS.observe(max((now - proposal.created_at).total_seconds(), 0.0))
    proposal_event("approved", proposal)
    return proposal


def decline(session: Session, mailer: Mailer, token: str, *, now: datetime) -> Proposal:
    """Decline the proposal behind a decline link: the booking stays, the proposer is told."""
    use = open_link(session, mailer, token, now=now, lock=True)
    if use.link.purpose != "decline":
        raise LinkProblem("invalid", "This is not a decline link.", use.booking)
    proposal = _pending_or_explain(use)
    booking = use.booking
    proposal.status = "declined"
    proposal.decided_at = now
    proposal.decided_by = use.link.actor_address
    _use(session, use, now)
    proposer = next(
        (i for i in invitations_of(session, booking) if i.role == proposal.proposed_by), None
    )
    if proposer is not None:
        _tell_proposer(session, mailer, booking, proposal, proposer, now)
    _audit(
        session, booking, use.link.actor_address, "proposal.declined", now=now, proposal=proposal.id
    )
    proposal_event("declined", proposal)
    return proposal


def _tell_proposer(
    session: Session,
    mailer: Mailer,
    booking: Booking,
    proposal: Proposal,
    proposer: Invitation,
    now: datetime,
) -> None:
    if proposal.via == "counter":
        send_declinecounter(session, mailer, booking, proposer, now, proposal_id=proposal.id)
    link = None
    if booking.status == "confirmed" and booking.end_at > now:
        link = reschedule_link(session, mailer, booking, proposer, now)
    send_notice(
        session,
        mailer,
        template="proposal_declined",
        key=f"proposal-declined:{proposal.id}",
        booking=booking,
        to=Mailbox(proposer.address, proposer.name or ""),
        context={**_times(booking, proposal), "reschedule_url": link},
        now=now,
        zone_name=proposer.timezone,
        locale=attendee_locale(booking, proposer, lambda: provider_locale(session, booking)),
    )


def _times(booking: Booking, proposal: Proposal) -> dict[str, Any]:
    """What every proposal notice shows: the title, the current time and the proposed one."""
    return {
        "title": booking.title,
        "current_start": booking.start_at,
        "current_end": booking.end_at,
        "proposed_start": proposal.start_at,
        "proposed_end": proposal.end_at,
    }


def propose_with_link(
    session: Session,
    mailer: Mailer,
    token: str,
    *,
    start: datetime,
    end: datetime,
    note: str | None,
    now: datetime,
) -> Proposal:
    """Create a proposal from a "Request a new time" link (the link is then used up)."""
    use = open_link(session, mailer, token, now=now, lock=True)
    if use.link.purpose != "propose":
        raise LinkProblem("invalid", "This is not a reschedule link.", use.booking)
    proposal = create_proposal(
        session,
        mailer,
        use.booking,
        role=use.link.actor_role or use.claims.role,
        address=use.link.actor_address,
        start=start,
        end=end,
        note=note,
        via="link",
        now=now,
    )
    use.link.used_at = now
    return proposal


def expire_proposals(session: Session, now: datetime) -> int:
    """Mark pending proposals past their expiry; returns how many."""
    rows = list(
        session.scalars(
            select(Proposal).where(Proposal.status == "pending", Proposal.expires_at <= now)
        )
    )
    for proposal in rows:
        proposal.status = "expired"
        proposal.decided_at = now
        proposal_event("expired", proposal)
    return len(rows)


def fresh_link_for_token(
    session: Session, mailer: Mailer, token: str, booking_id: str, now: datetime
) -> str | None:
    """A fresh link for whoever held token (expired, used), or None if it names no link."""
    link = session.scalar(select(MagicLink).where(MagicLink.token_hash == tokens.token_hash(token)))
    booking = session.get(Booking, booking_id) if link is not None else None
    if link is None or booking is None:
        return None
    return fresh_link_for(session, mailer, booking, link.actor_address, now)


def fresh_link_for(
    session: Session, mailer: Mailer, booking: Booking, address: str, now: datetime
) -> str | None:
    """A new "Request a new time" URL for whoever held a dead link, when one makes sense."""
    if booking.status != "confirmed" or booking.end_at <= now:
        return None
    invitation = next(
        (i for i in invitations_of(session, booking) if i.address == address.lower()), None
    )
    if invitation is None:
        return None
    return reschedule_link(session, mailer, booking, invitation, now)
