"""Private per-provider ICS feed URLs: tokens (256 random bits, only the hash stored) and
what a feed holds (confirmed bookings, active holds when asked, and for booking-platform
exports the busy time from other platforms, from the provider's own blocking calendars and
from related units: an apartment's stay blocks its rooms' listings).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import (
    Booking,
    ExternalEvent,
    ExternalSource,
    FeedToken,
    Hold,
    Provider,
    new_id,
)
from core.domain import BusyKind
from core.events import record
from core.metrics import FEED_TOKEN_REGENERATIONS
from core.services import busy, dav
from core.services.errors import InvalidInput, NotFoundError
from core.tokens import token_hash

FORMATS = ("standard", "airbnb", "booking.com", "vrbo", "generic")
# Whole-day forms for booking platforms and channel managers: units only. "generic" is
# for a channel that is none of the named platforms (every imported calendar is in it).
PLATFORM_FORMATS = FORMATS[1:]
PAST = timedelta(days=30)
HORIZON = timedelta(days=540)


@dataclass(frozen=True, slots=True)
class OtherBusy:
    """Busy time that is neither a booking nor a hold, as exported to a platform."""

    uid: str
    start: datetime
    end: datetime
    reservation: bool


@dataclass(frozen=True)
class FeedContent:
    provider: Provider
    format: str
    bookings: list[Booking]
    holds: list[Hold] = field(default_factory=list)
    others: list[OtherBusy] = field(default_factory=list)
    include_holds: bool = False


def issue_token(
    session: Session, provider_id: str, now: datetime, *, include_holds: bool, fmt: str
) -> str:
    """A new feed token; earlier tokens of the same format stop working at once."""
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFoundError("provider", provider_id)
    check_format(provider, fmt)
    revoked = session.execute(
        update(FeedToken)
        .where(
            FeedToken.provider_id == provider_id,
            FeedToken.format == fmt,
            FeedToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        FeedToken(
            id=new_id("fdt"),
            tenant_id=provider.tenant_id,
            provider_id=provider_id,
            token_hash=token_hash(token),
            include_holds=include_holds,
            format=fmt,
            created_at=now,
        )
    )
    FEED_TOKEN_REGENERATIONS.inc()
    record(
        "cal.ics.feed.token_issued",
        provider_id=provider_id,
        format=fmt,
        include_holds=include_holds,
        regenerated=bool(getattr(revoked, "rowcount", 0)),
    )
    return token


def feed_for_token(session: Session, token: str, now: datetime) -> FeedContent:
    """What the feed behind token shows now; NotFoundError for unknown or revoked tokens."""
    row = session.scalars(
        select(FeedToken).where(
            FeedToken.token_hash == token_hash(token), FeedToken.revoked_at.is_(None)
        )
    ).first()
    provider = session.get(Provider, row.provider_id) if row else None
    if row is None or provider is None:
        raise NotFoundError("feed", "…")
    return feed_content(session, provider, row.format, now, include_holds=row.include_holds)


def feed_content(
    session: Session, provider: Provider, fmt: str, now: datetime, *, include_holds: bool = False
) -> FeedContent:
    """What a feed of provider in format fmt shows now: its confirmed bookings (and
    active holds when asked); for a platform export also the busy time from every other
    platform and from the provider's own blocking calendars, never the events imported
    from that platform itself (they would echo back)."""
    check_format(provider, fmt)
    bookings = [
        b
        for b in dav.bookings_in_range(session, provider.id, now - PAST, now + HORIZON)
        if b.status == "confirmed"
    ]
    holds = dav.active_holds(session, provider.id, now) if include_holds else []
    others = []
    if fmt != "standard":
        others = _other_busy(session, provider.id, fmt, now)
        others += _inherited_busy(session, provider.id, now, include_holds=include_holds)
    return FeedContent(provider, fmt, bookings, holds, others, include_holds)


def known_format(fmt: str) -> str:
    """fmt when it is one of FORMATS; else InvalidInput naming them."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", code="invalid_format")
    return fmt


def check_format(provider: Provider, fmt: str) -> None:
    known_format(fmt)
    if fmt != "standard" and provider.kind != "unit":
        raise InvalidInput(
            "platform exports are for units only (PATCH the provider with kind 'unit')",
            code="invalid_format",
        )


def _other_busy(
    session: Session, provider_id: str, platform: str, now: datetime
) -> list[OtherBusy]:
    """Busy time a platform must also block: other platforms' events (never its own, which
    would echo back) and the provider's own blocking CalDAV calendars."""
    query = (
        select(ExternalEvent)
        .join(ExternalSource, ExternalSource.id == ExternalEvent.source_id)
        .where(
            ExternalEvent.provider_id == provider_id,
            ExternalSource.platform != platform,
            ExternalEvent.merged_into_id.is_(None),
            ExternalEvent.end_at > now - PAST,
        )
    )
    out = [
        OtherBusy(f"{e.id}-{e.uid}", e.start_at, e.end_at, e.kind == "reservation")
        for e in session.scalars(query)
    ]
    for block in dav.dav_busy(session, provider_id, now - PAST, now + HORIZON):
        uid = f"{block.ref}-{int(block.start.timestamp())}@parley-block"
        out.append(OtherBusy(uid, block.start, block.end, False))
    return out


def _inherited_busy(
    session: Session, unit_id: str, now: datetime, *, include_holds: bool
) -> list[OtherBusy]:
    """Time a unit's listing must block because a related unit is taken: the apartment's
    stays on a room's listing (any platform's, since each listing is its own calendar
    there), and a parent's days when all its rooms are booked. Exported as "Not available".
    """
    related = busy.related_units(session, unit_id)
    if not related.ids:
        return []
    rows = busy.unit_rows(session, (unit_id, *related.ids), now - PAST, now + HORIZON, now)
    rows = [row for row in rows if include_holds or row[3] != "hold"]
    inherited = busy.busy_from_unit_rows(session, unit_id, rows, related)
    return [
        OtherBusy(f"{ref}-{int(start.timestamp())}@parley-related", start, end, False)
        for start, end, kind, ref, _ in inherited
        if kind == BusyKind.RELATED.value
    ]
