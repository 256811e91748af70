"""Bookings: creation from a hold, approve/decline, cancel, reschedule and its candidates.

Every change runs in the caller's transaction, serialized per provider (row lock on
PostgreSQL, BEGIN IMMEDIATE on SQLite), re-checks feasibility where time moves, and
ends in ``_after_booking_change`` — the one place where outbox writes (the iTIP
invitations to host and guest) hook in, inside the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import tokens
from core.db.models import AuditEntry, Booking, Hold, Invitation, MeetingType, Provider, new_id
from core.domain import AvailabilityPolicy, Slot
from core.events import record
from core.metrics import (
    BOOKINGS_CANCELLED,
    BOOKINGS_CONFIRMED,
    BOOKINGS_CREATED,
    BOOKINGS_DECLINED,
)
from core.runtime import Runtime
from core.services.availability import SlotList, check_bookable, find_slots, load_policy
from core.services.busy import Exclude, related_units
from core.services.errors import InvalidState, NotFoundError
from core.services.freshness import DEFAULT_STALE_AFTER, instant_book_allowed
from core.services.notify import (
    Mailer,
    invitations_of,
    request_expiry,
    send_booking_request,
    send_itip,
    send_request_declined,
    send_request_lapsed,
    send_request_received,
)
from core.services.providers import booking_url, get_provider, lock_providers

Change = Literal["confirmed", "requested", "approved", "declined", "cancelled", "rescheduled"]
ACTIVE_STATUSES = ("requested", "confirmed")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes bookings, what signs their tags, and who mails the attendees.

    Built once per request. ``mailer`` is None only where no mail may follow (tests of
    the bare state machine); every real entry point gets one from ``actor_of``.
    """

    name: str
    secret: bytes
    uid_domain: str
    mailer: Mailer | None = None
    # The freshness gate: instant book pauses while imported calendars are older than this.
    stale_after: timedelta = DEFAULT_STALE_AFTER

    def named(self, name: str) -> Actor:
        return replace(self, name=name)


def actor_of(runtime: Runtime, name: str) -> Actor:
    """An ``Actor`` named ``name`` ("admin", "guest", an address) with the runtime's secret."""
    return Actor(
        name,
        runtime.secrets.secret_key,
        runtime.settings.organizer_domain,
        Mailer.from_runtime(runtime),
        timedelta(minutes=runtime.settings.source_stale_minutes),
    )


@dataclass(frozen=True, slots=True)
class Party:
    """One attendee as the API shows it."""

    email: str
    name: str | None
    partstat: str


@dataclass(frozen=True, slots=True)
class BookingView:
    """A booking with its two attendees, ready to render."""

    booking: Booking
    host: Party
    guest: Party


def get_booking(session: Session, booking_id: str) -> Booking:
    """The booking with ``booking_id`` or ``NotFoundError``."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise NotFoundError("booking", booking_id)
    return booking


def view_booking(session: Session, booking: Booking) -> BookingView:
    """The booking with its host and guest invitations."""
    return view_bookings(session, [booking])[0]


def view_bookings(session: Session, bookings: Sequence[Booking]) -> list[BookingView]:
    """``view_booking`` for many bookings, their invitations read in one query."""
    ids = [booking.id for booking in bookings]
    partstats = {
        (i.booking_id, i.role): i.partstat
        for i in session.scalars(select(Invitation).where(Invitation.booking_id.in_(ids)))
    }

    def party(booking: Booking, role: str, email: str, name: str | None) -> Party:
        return Party(email, name, partstats.get((booking.id, role), "needs-action"))

    return [
        BookingView(
            booking,
            party(booking, "host", booking.host_email, booking.host_name),
            party(booking, "guest", booking.guest_email, booking.guest_name),
        )
        for booking in bookings
    ]


def lock_booking(session: Session, booking_id: str) -> Booking:
    """The booking, with its provider (and related units) locked for a change.

    The booking row is locked too (after the providers), so a change that locks only
    the booking (``lock_booking_alone``) and one that moves it never interleave.
    """
    booking = get_booking(session, booking_id)
    lock_providers(session, [booking.provider_id, *related_units(session, booking.provider_id).ids])
    session.refresh(booking, with_for_update=True)
    return booking


def lock_booking_alone(session: Session, booking_id: str) -> Booking:
    """The booking, locked for a change that only frees time (cancel, decline).

    Freeing time cannot make two claims overlap, so the provider stays unlocked and
    answers about different bookings of one busy provider are applied side by side.
    """
    booking = session.scalar(
        select(Booking)
        .where(Booking.id == booking_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if booking is None:
        raise NotFoundError("booking", booking_id)
    return booking


def book_hold(
    session: Session,
    hold: Hold,
    provider: Provider,
    policy: AvailabilityPolicy,
    actor: Actor,
    now: datetime,
    *,
    guest_locale: str | None = None,
) -> Booking:
    """A booking for an active, re-checked hold (called by ``holds.confirm_hold``)."""
    instant = policy.instant_book and _sources_fresh(session, provider.id, actor, now)
    kind = session.get(MeetingType, hold.meeting_type_id) if hold.meeting_type_id else None
    booking = Booking(
        id=new_id("bkg"),
        tenant_id=provider.tenant_id,
        provider_id=provider.id,
        uid=f"{uuid.uuid4()}@{actor.uid_domain}",
        sequence=0,
        status="confirmed" if instant else "requested",
        mode="instant" if instant else "request",
        start_at=hold.start_at,
        end_at=hold.end_at,
        host_name=provider.name,
        host_email=provider.email,
        guest_name=hold.guest_name,
        guest_email=hold.guest_email or "",
        guest_timezone=hold.guest_timezone,
        guest_locale=guest_locale,
        hold_id=hold.id,
        created_at=now,
        updated_at=now,
    )
    if kind is not None:  # copied: a later edit of the type does not rewrite what was sent
        booking.title, booking.meeting_type_id = kind.title, kind.id
        booking.location, booking.description = kind.location, kind.description
    session.add(booking)
    session.flush()
    host_partstat = "accepted" if instant else "needs-action"
    _invite(
        session,
        booking,
        "host",
        provider.email,
        provider.name,
        provider.timezone,
        host_partstat,
        actor,
        now,
    )
    _invite(
        session,
        booking,
        "guest",
        booking.guest_email,
        hold.guest_name,
        hold.guest_timezone,
        "accepted",
        actor,
        now,
    )
    _after_booking_change(session, booking, "confirmed" if instant else "requested", actor, now)
    return booking


def _sources_fresh(session: Session, provider_id: str, actor: Actor, now: datetime) -> bool:
    """The freshness gate: False (request-to-book only) while a source is stale."""
    allowed, reason = instant_book_allowed(session, provider_id, now, stale_after=actor.stale_after)
    if not allowed:
        record("cal.instant_book.paused", provider_id=provider_id, reason=reason)
    return allowed


def _invite(
    session: Session,
    booking: Booking,
    role: str,
    address: str,
    name: str | None,
    timezone: str | None,
    partstat: str,
    actor: Actor,
    now: datetime,
) -> None:
    invitation_id = new_id("inv")
    session.add(
        Invitation(
            id=invitation_id,
            tenant_id=booking.tenant_id,
            booking_id=booking.id,
            role=role,
            address=address,
            name=name,
            timezone=timezone,
            plus_tag=tokens.plus_tag(actor.secret, invitation_id),
            partstat=partstat,
            updated_at=now,
        )
    )


def approve_booking(session: Session, booking_id: str, actor: Actor, now: datetime) -> Booking:
    """Confirm a ``requested`` booking; the host's answer becomes accepted."""
    booking = lock_booking(session, booking_id)
    _require(booking, ("requested",), "approve")
    booking.status = "confirmed"
    booking.updated_at = now
    _set_partstat(session, booking, "host", "accepted", now)
    _after_booking_change(session, booking, "approved", actor, now)
    return booking


def decline_booking(session: Session, booking_id: str, actor: Actor, now: datetime) -> Booking:
    """Turn down a ``requested`` booking: it is cancelled and frees its slot."""
    booking = lock_booking_alone(session, booking_id)
    _require(booking, ("requested",), "decline")
    mark_cancelled(booking, "declined by the provider", now)
    _set_partstat(session, booking, "host", "declined", now)
    _after_booking_change(session, booking, "declined", actor, now)
    return booking


LAPSED = "nobody answered the request in time"


def expire_requests(session: Session, actor: Actor, now: datetime, *, limit: int = 200) -> int:
    """Lapse requests to book nobody answered (``request_expiry``): each is declined, its
    slot freed, the guest told; the host is told too. Returns how many."""
    if actor.mailer is None:
        return 0
    mailer = actor.mailer
    oldest = now - mailer.request_ttl
    candidates = session.scalars(
        select(Booking)
        .where(
            Booking.status == "requested",
            (Booking.created_at <= oldest) | (Booking.start_at <= now),
        )
        .order_by(Booking.created_at)
        .limit(limit)
    ).all()
    lapsed = 0
    for found in candidates:
        if request_expiry(mailer, found, found.created_at) > now:
            continue
        booking = lock_booking_alone(session, found.id)
        if booking.status != "requested":
            continue
        mark_cancelled(booking, LAPSED, now)
        _set_partstat(session, booking, "host", "declined", now)
        _after_booking_change(session, booking, "declined", actor.named("expiry"), now)
        send_request_lapsed(session, mailer, booking, now)
        lapsed += 1
    return lapsed


def cancel_booking(
    session: Session, booking_id: str, actor: Actor, now: datetime, *, reason: str | None = None
) -> Booking:
    """Cancel a requested or confirmed booking (SEQUENCE + 1); cancelling twice changes nothing."""
    booking = lock_booking_alone(session, booking_id)
    if booking.status == "cancelled":
        return booking
    _require(booking, ACTIVE_STATUSES, "cancel")
    mark_cancelled(booking, reason, now)
    _after_booking_change(session, booking, "cancelled", actor, now)
    return booking


def cancel_for_decline(
    session: Session, booking: Booking, role: str, *, now: datetime, actor: Actor
) -> Booking:
    """Cancel for both because attendee ``role`` declined (iTIP REPLY under the strict policy)."""
    booking = lock_booking_alone(session, booking.id)
    if booking.status not in ACTIVE_STATUSES:
        return booking
    mark_cancelled(booking, decline_reason(role), now)
    _set_partstat(session, booking, role, "declined", now)
    _after_booking_change(session, booking, "cancelled", actor.named(role), now)
    return booking


def reschedule_booking(
    session: Session, booking_id: str, start: datetime, end: datetime, actor: Actor, now: datetime
) -> Booking:
    """Move a booking to [start, end): same UID, SEQUENCE + 1, feasibility re-checked."""
    booking = lock_booking(session, booking_id)
    return move_booking(session, booking, start, end, now=now, actor=actor)


def move_booking(
    session: Session,
    booking: Booking,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    actor: Actor,
) -> Booking:
    """Move an already locked booking (see ``lock_booking``); raises ``SlotTaken`` if blocked."""
    _require(booking, ACTIVE_STATUSES, "reschedule")
    policy = load_policy(session, get_provider(session, booking.provider_id))
    check_bookable(
        session,
        booking.provider_id,
        policy,
        start,
        end,
        now,
        exclude=Exclude(booking_id=booking.id),
    )
    booking.start_at, booking.end_at = start, end
    booking.sequence += 1
    booking.updated_at = now
    for role in ("host", "guest"):
        _set_partstat(session, booking, role, "needs-action", now)
    _after_booking_change(session, booking, "rescheduled", actor, now)
    return booking


def reschedule_candidates(
    session: Session, booking_id: str, start: datetime, end: datetime, now: datetime
) -> SlotList:
    """Free slots of the booking's duration in [start, end), ignoring the booking itself."""
    booking = get_booking(session, booking_id)
    _require(booking, ACTIVE_STATUSES, "reschedule")
    duration = booking.end_at - booking.start_at
    found = find_slots(
        session,
        booking.provider_id,
        start,
        end,
        duration,
        now,
        exclude=Exclude(booking_id=booking.id),
        surface="proposal",
    )
    current = Slot(booking.start_at, booking.end_at)
    return SlotList(found.timezone, [slot for slot in found.slots if slot != current])


def _require(booking: Booking, statuses: tuple[str, ...], action: str) -> None:
    if booking.status not in statuses:
        raise InvalidState(booking.id, booking.status, action)


def mark_cancelled(booking: Booking, reason: str | None, now: datetime) -> None:
    """What cancelling changes on the booking row (in a session or not: the REPLY fast
    path writes the same columns itself)."""
    booking.status = "cancelled"
    booking.cancel_reason = reason
    booking.sequence += 1  # RFC 5546: the organizer's CANCEL carries a higher SEQUENCE
    booking.updated_at = now


def decline_reason(role: str) -> str:
    """The cancel reason stored when attendee ``role`` declines for both."""
    return f"declined by the {role}"


def has_the_event(invitation: Invitation) -> bool:
    """Whether the attendee was sent the event, so that a cancellation owes them a CANCEL.

    A declined request-to-book was never on anybody's calendar.
    """
    return invitation.last_method_sent == "REQUEST"


def booking_audit(
    booking: Booking, actor: str, action: str, now: datetime, **data: object
) -> AuditEntry:
    """An audit row about the booking, not yet in any session."""
    return AuditEntry(
        tenant_id=booking.tenant_id, at=now, actor=actor, action=action,
        subject_type="booking", subject_id=booking.id, data=dict(data),
    )  # fmt: skip


def change_audit(booking: Booking, change: Change, actor: str, now: datetime) -> AuditEntry:
    """The audit row of a booking change: its status, SEQUENCE and times after it."""
    return booking_audit(
        booking, actor, f"booking.{change}", now, status=booking.status,
        sequence=booking.sequence, start=booking.start_at.isoformat(),
        end=booking.end_at.isoformat(),
    )  # fmt: skip


_EVENTS = {
    "confirmed": "cal.event.confirmed",
    "approved": "cal.event.confirmed",
    "requested": "cal.event.requested",
    "rescheduled": "cal.event.rescheduled",
    "cancelled": "cal.event.cancelled",
    "declined": "cal.event.cancelled",
}


def record_change(booking: Booking, change: Change) -> None:
    """The business event of a booking change, and the booking counters it moves."""
    mode = booking.mode
    if change in ("confirmed", "requested"):
        BOOKINGS_CREATED.labels(mode=mode).inc()
    if change in ("confirmed", "approved"):
        BOOKINGS_CONFIRMED.labels(mode=mode).inc()
    elif change == "cancelled":
        BOOKINGS_CANCELLED.inc()
    elif change == "declined":
        BOOKINGS_DECLINED.inc()
    record(
        _EVENTS[change],
        booking_id=booking.id,
        provider_id=booking.provider_id,
        sequence=booking.sequence,
        mode=mode,
        change=change,
    )


def _set_partstat(
    session: Session, booking: Booking, role: str, partstat: str, now: datetime
) -> None:
    # One UPDATE; an invitation already loaded in the session is updated with it.
    session.execute(
        update(Invitation)
        .where(Invitation.booking_id == booking.id, Invitation.role == role)
        .values(partstat=partstat, updated_at=now)
    )


def _after_booking_change(
    session: Session, booking: Booking, change: Change, actor: Actor, now: datetime
) -> None:
    """Everything that follows a booking change, in the same transaction.

    Today: the audit row and the business event. The invitation mail (REQUEST to host
    and guest on confirmed/requested/approved/rescheduled, CANCEL on cancelled/declined)
    is to be written to the outbox here, so it commits or rolls back with the change.
    """
    session.flush()
    session.add(change_audit(booking, change, actor.name, now))
    record_change(booking, change)
    if actor.mailer is not None:
        _mail_change(session, booking, change, actor.mailer, now)


def _mail_change(
    session: Session, booking: Booking, change: Change, mailer: Mailer, now: datetime
) -> None:
    """The outbox side of a change: REQUEST, update or CANCEL to each attendee privately."""
    if change in ("confirmed", "approved"):
        send_itip(session, mailer, booking, "invitation", now)
    elif change == "requested":
        send_booking_request(session, mailer, booking, now)
        expires = request_expiry(mailer, booking, booking.created_at)
        send_request_received(session, mailer, booking, now, expires_at=expires)
    elif change == "rescheduled":
        send_itip(session, mailer, booking, "update", now)
    elif change in ("cancelled", "declined"):
        among = [i for i in invitations_of(session, booking) if has_the_event(i)]
        send_itip(session, mailer, booking, "cancellation", now, among=among)
        guest = next((i for i in invitations_of(session, booking) if i.role == "guest"), None)
        if change == "declined" and guest is not None and not has_the_event(guest):
            provider = session.get(Provider, booking.provider_id)
            page = booking_url(session, provider, mailer.base_url) if provider else None
            send_request_declined(session, mailer, booking, now, book_url=page)
