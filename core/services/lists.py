"""The operator's lists: providers, bookings, sources, conflicts, mail both ways, the audit log.

Every list is newest first and paged by an opaque cursor (keyset pagination on the row's
time and id, so a page costs the same at the millionth row as at the first, and rows
written meanwhile neither repeat nor go missing). Every query is scoped to one tenant,
here and nowhere else in this module (``_scoped``), and to the providers a limited key
may see.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from core.db.driver import as_utc
from core.db.models import (
    AuditEntry,
    Booking,
    Conflict,
    ExternalEvent,
    ExternalSource,
    InboundMessage,
    OutboundMessage,
    Provider,
)
from core.services import conflicts
from core.services.access import Caller
from core.services.bookings import BookingView, view_bookings
from core.services.errors import InvalidInput, NotFoundError, NotRetryable
from core.services.outbox import deliver_soon
from core.services.sources import SourceView, source_views

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
T = TypeVar("T")
R = TypeVar("R")

BOOKING_STATUSES = ("requested", "confirmed", "cancelled")
SOURCE_STATUSES = ("pending", "ok", "error", "held")
CONFLICT_STATUSES = ("open", "resolved")
INBOUND_OUTCOMES = (
    "pending", "itip", "plain_reply", "ignored", "unparseable", "auto_reply", "bounce",
    "unauthenticated", "failed",
)  # fmt: skip
OUTBOUND_STATUSES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page: at most ``limit`` rows after ``cursor`` (None: the newest)."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1–{MAX_LIMIT}", code="invalid_limit")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None


# --- the cursor and the one tenant filter -------------------------------------------------


def _encode(moment: datetime, ident: object) -> str:
    raw = json.dumps([as_utc(moment).isoformat(), ident]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(moment)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API gave out", code="invalid_cursor") from None
    if when.tzinfo is None or not isinstance(ident, (str, int)):
        raise InvalidInput("cursor is not one this API gave out", code="invalid_cursor")
    return when, ident


def _scoped(query: Select[Any], model: Any, caller: Caller) -> Select[Any]:
    """The filter every list applies to its main table: the caller's tenant, and for a key
    limited to some providers, their rows (mail and audit entries through their bookings)."""
    query = query.where(model.tenant_id == caller.tenant_id)
    if caller.providers is None:
        return query
    limited = sorted(caller.providers)
    if model is Provider:
        return query.where(Provider.id.in_(limited))
    if hasattr(model, "provider_id"):
        return query.where(model.provider_id.in_(limited))
    theirs = select(Booking.id).where(Booking.provider_id.in_(limited))
    if model is AuditEntry:
        return query.where(
            or_(AuditEntry.subject_id.in_(theirs), AuditEntry.subject_id.in_(limited))
        )
    return query.where(model.booking_id.in_(theirs))


def _paged(
    session: Session,
    query: Select[Any],
    when: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    page: PageRequest,
) -> tuple[list[Any], str | None]:
    """Rows of ``query`` newest first by (when, ident) after the cursor; and the next cursor."""
    if page.cursor is not None:
        moment, last = _decode(page.cursor)
        query = query.where(or_(when < moment, and_(when == moment, ident < last)))
    rows = list(session.scalars(query.order_by(when.desc(), ident.desc()).limit(page.limit + 1)))
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last_row = rows[-1]
    return rows, _encode(getattr(last_row, when.key), getattr(last_row, ident.key))


def _page(
    session: Session,
    query: Select[Any],
    order: tuple[InstrumentedAttribute[Any], InstrumentedAttribute[Any]],
    page: PageRequest,
    shape: Callable[[Sequence[Any]], list[R]],
) -> Page[R]:
    rows, cursor = _paged(session, query, *order, page)
    return Page(shape(rows), cursor)


def _one_of(value: str | None, allowed: Sequence[str], name: str) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", code=f"invalid_{name}")
    return value


# --- the lists ----------------------------------------------------------------------------


def list_providers(session: Session, caller: Caller, page: PageRequest) -> Page[Provider]:
    query = _scoped(select(Provider), Provider, caller)
    return _page(session, query, (Provider.created_at, Provider.id), page, list)


@dataclass(frozen=True, slots=True)
class BookingFilter:
    status: str | None = None
    provider_id: str | None = None
    email: str | None = None  # the host's or the guest's address
    start_from: datetime | None = None  # bookings ending after this
    start_to: datetime | None = None  # bookings starting before this


def list_bookings(
    session: Session, caller: Caller, wanted: BookingFilter, page: PageRequest
) -> Page[BookingView]:
    query = _scoped(select(Booking), Booking, caller)
    status = _one_of(wanted.status, BOOKING_STATUSES, "status")
    if status == "cancelled":  # the API speaks of declined requests as cancelled
        query = query.where(Booking.status.in_(("cancelled", "declined")))
    elif status is not None:
        query = query.where(Booking.status == status)
    if wanted.provider_id:
        query = query.where(Booking.provider_id == wanted.provider_id)
    if wanted.email:
        address = wanted.email.strip().lower()
        query = query.where(
            or_(
                func.lower(Booking.guest_email) == address,
                func.lower(Booking.host_email) == address,
            )
        )
    if wanted.start_from is not None:
        query = query.where(Booking.end_at > wanted.start_from)
    if wanted.start_to is not None:
        query = query.where(Booking.start_at < wanted.start_to)
    order = (Booking.created_at, Booking.id)
    return _page(session, query, order, page, lambda rows: view_bookings(session, rows))


def list_sources(
    session: Session, caller: Caller, status: str | None, page: PageRequest
) -> Page[SourceView]:
    src = ExternalSource
    wanted = _Filter(src.status, status, SOURCE_STATUSES, "status")
    return _listed(session, caller, src, wanted, (src.created_at, src.id), page,
                   lambda rows: source_views(session, rows))  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Filter:
    """One optional equality filter of a list, checked against its allowed values."""

    column: InstrumentedAttribute[Any]
    value: str | None
    allowed: Sequence[str]
    name: str


def _listed(
    session: Session,
    caller: Caller,
    model: Any,
    wanted: _Filter,
    order: tuple[InstrumentedAttribute[Any], InstrumentedAttribute[Any]],
    page: PageRequest,
    shape: Callable[[Sequence[Any]], list[R]],
) -> Page[R]:
    """A list of ``model`` rows the caller may see, filtered by ``wanted`` when given."""
    query = _scoped(select(model), model, caller)
    if _one_of(wanted.value, wanted.allowed, wanted.name) is not None:
        query = query.where(wanted.column == wanted.value)
    return _page(session, query, order, page, shape)


@dataclass(frozen=True, slots=True)
class ConflictSide:
    """One of the two overlapping reservations."""

    event_id: int
    source_id: str
    platform: str
    summary: str | None
    reservation_code: str | None
    start: datetime
    end: datetime
    kind: str = "reservation"  # or "block"


@dataclass(frozen=True, slots=True)
class ConflictView:
    id: int
    provider_id: str
    conflict_type: str
    overlap_start: datetime
    overlap_end: datetime
    resolution: str | None
    winner_event_id: int | None
    warning: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime
    first: ConflictSide
    second: ConflictSide
    unit_name: str = ""
    description: str = ""  # the conflict in one sentence
    remaining: tuple[tuple[datetime, datetime], ...] = ()  # a split loser's parts that stand


def list_conflicts(
    session: Session, caller: Caller, status: str | None, page: PageRequest
) -> Page[ConflictView]:
    query = _scoped(select(Conflict), Conflict, caller)
    wanted = _one_of(status, CONFLICT_STATUSES, "status")
    if wanted == "open":
        query = query.where(Conflict.resolved_at.is_(None))
    elif wanted == "resolved":
        query = query.where(Conflict.resolved_at.is_not(None))
    order = (Conflict.created_at, Conflict.id)
    return _page(session, query, order, page, lambda rows: _conflict_views(session, rows))


def _conflict_views(session: Session, rows: Sequence[Conflict]) -> list[ConflictView]:
    ids = {c.event_a_id for c in rows} | {c.event_b_id for c in rows}
    event, source = aliased(ExternalEvent), aliased(ExternalSource)
    found = session.execute(
        select(event, source.platform)
        .join(source, source.id == event.source_id)
        .where(event.id.in_(ids))
    ).all()
    sides = {
        row.id: ConflictSide(
            row.id,
            row.source_id,
            platform,
            row.summary,
            row.reservation_code,
            row.start_at,
            row.end_at,
            row.kind,
        )
        for row, platform in found
    }
    units = {
        p.id: p
        for p in session.scalars(
            select(Provider).where(Provider.id.in_({c.provider_id for c in rows}))
        )
    }

    def sentence(c: Conflict) -> str:
        a, b, unit = sides[c.event_a_id], sides[c.event_b_id], units.get(c.provider_id)
        return conflicts.describe(
            conflicts.Side(a.event_id, a.platform, a.kind == "reservation", a.reservation_code),
            conflicts.Side(b.event_id, b.platform, b.kind == "reservation", b.reservation_code),
            overlap=(c.overlap_start, c.overlap_end), unit=unit.name if unit else "",
            zone=unit.timezone if unit else "UTC", winner_id=c.winner_id, rule=c.resolved_by,
            open_=c.resolved_at is None, remaining=c.remaining_parts(),
        )  # fmt: skip

    return [
        ConflictView(
            id=c.id,
            provider_id=c.provider_id,
            conflict_type=c.conflict_type,
            overlap_start=c.overlap_start,
            overlap_end=c.overlap_end,
            resolution=c.resolution,
            winner_event_id=c.winner_id,
            warning=c.warning,
            resolved_by=c.resolved_by,
            resolved_at=c.resolved_at,
            created_at=c.created_at,
            first=sides[c.event_a_id],
            second=sides[c.event_b_id],
            unit_name=units[c.provider_id].name if c.provider_id in units else "",
            description=sentence(c),
            remaining=c.remaining_parts(),
        )
        for c in rows
        if c.event_a_id in sides and c.event_b_id in sides
    ]


def list_inbound(
    session: Session, caller: Caller, outcome: str | None, page: PageRequest
) -> Page[InboundMessage]:
    msg = InboundMessage
    wanted = _Filter(msg.outcome, outcome, INBOUND_OUTCOMES, "outcome")
    return _listed(session, caller, msg, wanted, (msg.received_at, msg.id), page, list)


def list_outbound(
    session: Session, caller: Caller, status: str | None, page: PageRequest
) -> Page[OutboundMessage]:
    msg = OutboundMessage
    wanted = _Filter(msg.status, status, OUTBOUND_STATUSES, "status")
    return _listed(session, caller, msg, wanted, (msg.created_at, msg.id), page, list)


def list_audit(
    session: Session, caller: Caller, booking_id: str | None, page: PageRequest
) -> Page[AuditEntry]:
    query = _scoped(select(AuditEntry), AuditEntry, caller)
    if booking_id:
        query = query.where(
            AuditEntry.subject_type == "booking", AuditEntry.subject_id == booking_id
        )
    return _page(session, query, (AuditEntry.at, AuditEntry.id), page, list)


def retry_outbound(
    session: Session, caller: Caller, message_id: int, now: datetime
) -> OutboundMessage:
    """Send a failed outbound message again at once (its attempts start over)."""
    message: OutboundMessage | None = session.scalar(
        _scoped(select(OutboundMessage), OutboundMessage, caller)
        .where(OutboundMessage.id == message_id)
        .with_for_update()
    )
    if message is None:
        raise NotFoundError("outbound message", str(message_id))
    if message.status != "failed":
        raise NotRetryable(f"outbound message {message_id} is {message.status}, not failed")
    message.status = "pending"
    message.attempts = 0
    message.next_attempt_at = now
    message.locked_until = message.locked_by = None
    deliver_soon(session, now)
    return message
