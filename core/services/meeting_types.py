"""Meeting types: what a provider offers to book ("Planning call", "Dental check-up").

A type has a title, an optional description and place (an address or a video link), the
lengths a guest may choose (the first is the default), and, when set, its own buffers
and lead time over the provider's availability settings. Its slug gives it a booking
page of its own (``/book/{provider}/{type}``); a booking made through it copies its
title, place and description, so that later edits of the type do not rewrite invitations
already sent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import AuditEntry, MeetingType, Provider, new_id
from core.domain.availability import AvailabilityPolicy
from core.services.access import Caller, Grant, visible_provider
from core.services.errors import InvalidInput, NotFoundError, SlugTaken

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")
MAX_TYPES = 50
MAX_DURATIONS = 8
LIMITS = {
    "buffer_before_minutes": (0, 1440),
    "buffer_after_minutes": (0, 1440),
    "lead_time_hours": (0, 8760),
}


@dataclass(frozen=True, slots=True)
class TypeFields:
    """A meeting type as written by its provider (every field checked by ``checked``)."""

    slug: str
    title: str
    durations: tuple[int, ...]
    description: str | None = None
    location: str | None = None
    buffer_before_minutes: int | None = None
    buffer_after_minutes: int | None = None
    lead_time_hours: int | None = None
    active: bool = True


def checked(fields: TypeFields) -> TypeFields:
    """fields with its texts trimmed; InvalidInput naming the first bad one."""
    slug = fields.slug.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise InvalidInput(
            "slug must be 1–80 characters a-z, 0-9 and '-', not starting or ending with '-'",
            code="invalid_slug",
        )
    title = fields.title.strip()
    if not 0 < len(title) <= 200:
        raise InvalidInput("title must be 1–200 characters", code="invalid_title")
    if not 0 < len(fields.durations) <= MAX_DURATIONS:
        raise InvalidInput(
            f"durations must list 1–{MAX_DURATIONS} lengths", code="invalid_duration"
        )
    if any(not 5 <= d <= 1440 for d in fields.durations) or len(set(fields.durations)) < len(
        fields.durations
    ):
        raise InvalidInput(
            "durations must be different lengths of 5–1440 minutes", code="invalid_duration"
        )
    description = (fields.description or "").strip() or None
    if description is not None and len(description) > 5000:
        raise InvalidInput("description must be at most 5000 characters", code="invalid_text")
    location = (fields.location or "").strip() or None
    if location is not None and (len(location) > 500 or "\n" in location):
        raise InvalidInput(
            "location must be one line of at most 500 characters", code="invalid_text"
        )
    for name, (low, high) in LIMITS.items():
        value = getattr(fields, name)
        if value is not None and not low <= value <= high:
            raise InvalidInput(f"{name} must be {low}–{high}", code="invalid_input")
    return dataclasses.replace(
        fields, slug=slug, title=title, description=description, location=location
    )


def provider_caller(provider: Provider) -> Caller:
    """The provider itself (on /me), allowed to change its own meeting types."""
    return Caller(
        provider.tenant_id, "manager", frozenset({provider.id}), actor=f"provider:{provider.id}"
    )


def durations_of(row: MeetingType) -> list[int]:
    return [int(part) for part in row.durations.split(",") if part]


def list_types(
    session: Session, provider_id: str, *, active_only: bool = False
) -> list[MeetingType]:
    query = select(MeetingType).where(MeetingType.provider_id == provider_id)
    if active_only:
        query = query.where(MeetingType.active.is_(True))
    return list(session.scalars(query.order_by(MeetingType.position, MeetingType.created_at)))


def find_type(session: Session, provider_id: str, key: str) -> MeetingType:
    """The provider's type with this id or slug; NotFoundError otherwise."""
    row = session.scalar(
        select(MeetingType).where(
            MeetingType.provider_id == provider_id,
            (MeetingType.id == key) | (MeetingType.slug == key.lower()),
        )
    )
    if row is None:
        raise NotFoundError("meeting type", key)
    return row


def bookable_type(session: Session, provider_id: str, key: str) -> MeetingType:
    """The active type a guest may book by id or slug; NotFoundError otherwise."""
    row = find_type(session, provider_id, key)
    if not row.active:
        raise NotFoundError("meeting type", key)
    return row


def create_type(
    session: Session, caller: Caller, provider_id: str, fields: TypeFields, now: datetime
) -> MeetingType:
    caller.require(Grant.WRITE)
    provider = visible_provider(session, caller, provider_id)
    fields = checked(fields)
    existing = list_types(session, provider.id)
    if len(existing) >= MAX_TYPES:
        raise InvalidInput(f"a provider offers at most {MAX_TYPES} meeting types", code="too_many")
    if any(row.slug == fields.slug for row in existing):
        raise SlugTaken(fields.slug)
    row = MeetingType(
        id=new_id("mtt"), tenant_id=provider.tenant_id, provider_id=provider.id,
        position=len(existing), created_at=now, updated_at=now,
    )  # fmt: skip
    _write(row, fields)
    session.add(row)
    session.add(_audit(row, caller, "meeting_type.created", now))
    session.flush()
    return row


def update_type(
    session: Session,
    caller: Caller,
    provider_id: str,
    key: str,
    changes: Mapping[str, Any],
    now: datetime,
) -> MeetingType:
    """Change the given fields (None clears an optional one) of the provider's type."""
    caller.require(Grant.WRITE)
    provider = visible_provider(session, caller, provider_id)
    row = find_type(session, provider.id, key)
    current = _fields_of(row)
    fields = checked(dataclasses.replace(current, **changes))
    if fields.slug != row.slug and any(
        other.slug == fields.slug for other in list_types(session, provider.id)
    ):
        raise SlugTaken(fields.slug)
    _write(row, fields)
    row.updated_at = now
    session.add(_audit(row, caller, "meeting_type.updated", now))
    return row


def delete_type(
    session: Session, caller: Caller, provider_id: str, key: str, now: datetime
) -> None:
    """Remove the type; bookings made through it keep their copied title and place."""
    caller.require(Grant.WRITE)
    provider = visible_provider(session, caller, provider_id)
    row = find_type(session, provider.id, key)
    session.add(_audit(row, caller, "meeting_type.deleted", now))
    session.delete(row)


def policy_for(policy: AvailabilityPolicy, row: MeetingType | None) -> AvailabilityPolicy:
    """The provider's policy with the type's own buffers and lead time where it sets them;
    the shortest length the type offers is the shortest slot."""
    if row is None:
        return policy
    changes: dict[str, Any] = {"min_duration_minutes": min(durations_of(row))}
    for name in LIMITS:
        value = getattr(row, name)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(policy, **changes)


def check_length(row: MeetingType, length: timedelta) -> None:
    """InvalidInput unless ``length`` is one the type offers."""
    minutes = length.total_seconds() / 60
    offered = durations_of(row)
    if minutes not in offered:
        lengths = ", ".join(f"{d}" for d in offered)
        raise InvalidInput(
            f"{row.title} lasts {lengths} minutes, not {minutes:g}", code="invalid_duration"
        )


def _fields_of(row: MeetingType) -> TypeFields:
    return TypeFields(
        slug=row.slug, title=row.title, durations=tuple(durations_of(row)),
        description=row.description, location=row.location,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes, lead_time_hours=row.lead_time_hours,
        active=row.active,
    )  # fmt: skip


def _write(row: MeetingType, fields: TypeFields) -> None:
    row.slug, row.title = fields.slug, fields.title
    row.durations = ",".join(str(d) for d in fields.durations)
    row.description, row.location = fields.description, fields.location
    row.buffer_before_minutes = fields.buffer_before_minutes
    row.buffer_after_minutes = fields.buffer_after_minutes
    row.lead_time_hours, row.active = fields.lead_time_hours, fields.active


def _audit(row: MeetingType, caller: Caller, action: str, now: datetime) -> AuditEntry:
    return AuditEntry(
        tenant_id=row.tenant_id, at=now, actor=caller.name, action=action,
        subject_type="provider", subject_id=row.provider_id,
        data={"meeting_type": row.id, "slug": row.slug, "title": row.title},
    )  # fmt: skip
