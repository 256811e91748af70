"""Set-up shared by the service tests: providers with hours, related units, busy rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.db.models import Booking, ExternalEvent, ExternalSource, UnitRelationship, new_id
from core.domain import AvailabilityPolicy, weekly_windows
from core.services.availability import put_availability
from core.services.providers import create_provider

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1
MON = datetime(2027, 3, 8, tzinfo=UTC)


def provider(session: Session, slug: str, *, buffer_minutes: int = 0) -> str:
    """A Berlin provider open Mon–Fri 09:00–17:00, lead time 24 h, 30-minute step."""
    created = create_provider(
        session, name=slug.title(), email=f"{slug}@example.org", timezone="Europe/Berlin",
        slug=slug, now=NOW, kind="unit",
    )  # fmt: skip
    set_hours(session, created.id, buffer_minutes=buffer_minutes)
    return created.id


def set_hours(session: Session, provider_id: str, *, buffer_minutes: int = 0) -> None:
    """Mon–Fri 09:00–17:00 in Berlin, with ``buffer_minutes`` before and after each booking."""
    policy = AvailabilityPolicy(
        "Europe/Berlin",
        weekly=weekly_windows(["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00"),
        buffer_before_minutes=buffer_minutes,
        buffer_after_minutes=buffer_minutes,
    )
    put_availability(session, provider_id, policy, NOW, actor="test")


def relate(session: Session, parent: str, child: str, *, all_children: bool = False) -> None:
    session.add(
        UnitRelationship(
            id=new_id("rel"), parent_id=parent, child_id=child, created_at=NOW,
            block_child_on_parent=not all_children, block_parent_on_all_children=all_children,
        )
    )  # fmt: skip
    session.flush()


def booking(session: Session, provider_id: str, start: datetime, minutes: int = 60) -> str:
    row = Booking(
        id=new_id("bkg"), provider_id=provider_id, uid=f"{new_id('u')}@test", status="confirmed",
        start_at=start, end_at=start + timedelta(minutes=minutes), host_email="h@example.org",
        guest_email="g@example.net", created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id


def external(session: Session, provider_id: str, start: datetime, name: str = "Airbnb") -> str:
    source = ExternalSource(
        id=new_id("src"), provider_id=provider_id, name=name, url=f"https://example.org/{new_id('f')}.ics",
        kind="ics", next_poll_at=NOW, created_at=NOW,
    )  # fmt: skip
    session.add(source)
    session.flush()
    session.add(
        ExternalEvent(
            source_id=source.id, provider_id=provider_id, uid=new_id("e"), start_at=start,
            end_at=start + timedelta(hours=1), content_hash="x", first_seen_at=NOW,
            last_seen_at=NOW,
        )
    )  # fmt: skip
    session.flush()
    return source.id
