"""What the operator console reads beyond the lists: the overview's figures, one booking's
whole story, a booking by UID, one inbound message's raw bytes, the stale calendars.

Every query goes through the lists' one tenant filter (``lists._scoped``), so the console
sees exactly what the operator's caller may see, and another tenant's ids are not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.db.models import (
    AuditEntry,
    Booking,
    Conflict,
    ExternalSource,
    InboundMessage,
    Invitation,
    OutboundMessage,
    Proposal,
)
from core.services.access import Caller, visible_booking
from core.services.bookings import BookingView, view_booking
from core.services.errors import NotFoundError
from core.services.lists import _scoped as scoped
from core.services.sources import SourceView, source_views

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Overview:
    """The overview's figures; each links to the list it counts."""

    today_start: datetime
    bookings_today: int
    requests_waiting: int
    answers_processed_today: int
    mail_waiting: int
    mail_failing: int
    stale_calendars: int
    open_conflicts: int


def _count(session: Session, caller: Caller, model: Any, *where: Any) -> int:
    query = scoped(select(func.count()).select_from(model), model, caller).where(*where)
    return int(session.scalar(query) or 0)


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: "today" on the console is the UTC day."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def overview(session: Session, caller: Caller, now: datetime, stale_after: timedelta) -> Overview:
    start = day_start(now)
    return Overview(
        today_start=start,
        bookings_today=_count(
            session, caller, Booking, Booking.start_at >= start, Booking.start_at < start + DAY,
            Booking.status.in_(("confirmed", "requested")),
        ),
        requests_waiting=_count(
            session, caller, Booking, Booking.status == "requested", Booking.end_at > now
        ),
        answers_processed_today=_count(
            session, caller, InboundMessage, InboundMessage.processed_at >= start,
            InboundMessage.outcome != "pending",
        ),
        mail_waiting=_count(
            session, caller, OutboundMessage, OutboundMessage.status.in_(("pending", "sending"))
        ),
        mail_failing=_count(session, caller, OutboundMessage, OutboundMessage.status == "failed"),
        stale_calendars=_count(session, caller, ExternalSource, _stale(now, stale_after)),
        open_conflicts=_count(session, caller, Conflict, Conflict.resolved_at.is_(None)),
    )  # fmt: skip


def _stale(now: datetime, stale_after: timedelta) -> Any:
    """A calendar never synced, failing, or not synced within ``stale_after``."""
    return or_(
        ExternalSource.last_success_at.is_(None),
        ExternalSource.last_success_at < now - stale_after,
        ExternalSource.status.in_(("error", "held")),
    )


def stale_sources(
    session: Session, caller: Caller, now: datetime, stale_after: timedelta, limit: int = 200
) -> list[SourceView]:
    """The calendars the overview counts as stale, the longest unsynced first."""
    query = scoped(select(ExternalSource), ExternalSource, caller).where(_stale(now, stale_after))
    order = (ExternalSource.last_success_at.is_not(None), ExternalSource.last_success_at)
    rows = list(session.scalars(query.order_by(*order, ExternalSource.id).limit(limit)))
    return source_views(session, rows)


def booking_by_uid(session: Session, caller: Caller, uid: str) -> Booking | None:
    """The caller's booking with this iCalendar UID, or None."""
    query = scoped(select(Booking), Booking, caller).where(Booking.uid == uid.strip()[:255])
    found: Booking | None = session.scalar(query)
    return found


@dataclass(frozen=True, slots=True)
class Story:
    """Everything that happened to one booking, each part oldest first."""

    view: BookingView
    invitations: list[Invitation]
    inbound: list[InboundMessage]
    proposals: list[Proposal]
    outbound: list[OutboundMessage]
    audit: list[AuditEntry]


def booking_story(session: Session, caller: Caller, booking_id: str) -> Story:
    """The booking with its invitations, answers, proposals, mails and audit entries."""
    booking = visible_booking(session, caller, booking_id)
    mine = booking.tenant_id

    def rows(model: Any, *where: Any, order: Any) -> list[Any]:
        query = select(model).where(model.tenant_id == mine, *where).order_by(order)
        return list(session.scalars(query.limit(500)))

    return Story(
        view=view_booking(session, booking),
        invitations=rows(Invitation, Invitation.booking_id == booking.id, order=Invitation.role),
        inbound=rows(
            InboundMessage,
            or_(InboundMessage.booking_id == booking.id, InboundMessage.uid == booking.uid),
            order=InboundMessage.received_at,
        ),
        proposals=rows(Proposal, Proposal.booking_id == booking.id, order=Proposal.created_at),
        outbound=rows(
            OutboundMessage, OutboundMessage.booking_id == booking.id, order=OutboundMessage.id
        ),
        audit=rows(
            AuditEntry, AuditEntry.subject_type == "booking", AuditEntry.subject_id == booking.id,
            order=AuditEntry.at,
        ),
    )  # fmt: skip


def inbound_message(session: Session, caller: Caller, message_id: int) -> InboundMessage:
    """One received message the caller may see (for its raw download), else not found."""
    query = scoped(select(InboundMessage), InboundMessage, caller)
    found: InboundMessage | None = session.scalar(query.where(InboundMessage.id == message_id))
    if found is None:
        raise NotFoundError("inbound message", str(message_id))
    return found
