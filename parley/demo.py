"""`parley demo`: a newcomer's first five minutes on the embedded defaults.

Creates (or reuses) a demo provider with weekday hours, books the first free slot
between two demo addresses through the same services the API uses, delivers the two
invitations into the Maildir, and says where to look and which link to try next: times
in the demo provider's zone, and how to sign in as that provider at /me.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy as email_policy
from pathlib import Path

from sqlalchemy import select

from core.db.models import OutboundMessage, Provider
from core.domain import AvailabilityPolicy, weekly_windows
from core.runtime import Runtime
from core.services.availability import find_slots, put_availability
from core.services.bookings import actor_of
from core.services.holds import HoldRequest, confirm_hold, create_hold
from core.services.providers import create_provider
from mailagent.outbox import deliver_outbox

DEMO_SLUG = "demo"
HOST = ("Dana Demo", "dana@demo.parley.localhost")
GUEST = ("Gus Guest", "gus@guest.parley.localhost")
ZONE = "Europe/Berlin"
_LINK = re.compile(r"https?://\S+/reschedule\?r=[A-Za-z0-9_\-%.~]+")


@dataclass(frozen=True)
class DemoResult:
    base_url: str
    booking_page: str
    sign_in_page: str
    host_email: str
    timezone: str
    booking_id: str
    start: datetime
    invitations: list[tuple[str, Path | None]]
    reschedule_link: str | None
    maildir: Path


def _provider(runtime: Runtime) -> tuple[str, str]:
    """The demo provider's id and zone, created with weekday hours on the first run."""
    now = runtime.clock()
    with runtime.sessions.begin() as session:
        existing = session.scalar(select(Provider).where(Provider.slug == DEMO_SLUG))
        if existing is not None:
            return existing.id, existing.timezone
        provider = create_provider(
            session, name=HOST[0], email=HOST[1], timezone=ZONE, slug=DEMO_SLUG, now=now
        )
        weekdays = weekly_windows(["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00")
        policy = AvailabilityPolicy(
            timezone=ZONE, weekly=weekdays, lead_time_hours=2, booking_window_days=30
        )
        put_availability(session, provider.id, policy, now, actor="demo")
        return provider.id, ZONE


def _book(runtime: Runtime, provider_id: str) -> tuple[str, datetime]:
    now = runtime.clock()
    actor = actor_of(runtime, "demo")
    with runtime.sessions.begin() as session:
        found = find_slots(
            session, provider_id, now, now + timedelta(days=30), timedelta(minutes=30), now
        )
        if not found.slots:
            raise RuntimeError("the demo provider has no free slot in the next 30 days")
        slot = found.slots[0]
        request = HoldRequest(
            provider_id=provider_id,
            start=slot.start,
            end=slot.end,
            guest_email=GUEST[1],
            guest_name=GUEST[0],
            guest_timezone=ZONE,
        )
        hold = create_hold(session, request, now, ttl_seconds=runtime.settings.hold_ttl_seconds)
        booking = confirm_hold(session, hold.hold.id, actor, now)
        return booking.id, slot.start


def _files(runtime: Runtime, booking_id: str) -> list[tuple[str, Path | None, bytes]]:
    maildir = runtime.settings.maildir
    with runtime.sessions() as session:
        rows = list(
            session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.booking_id == booking_id)
                .order_by(OutboundMessage.id)
            )
        )
    found = []
    for row in rows:
        needle = row.message_id.encode()
        path = next(
            (p for p in sorted((maildir / "new").glob("*")) if needle in p.read_bytes()[:4096]),
            None,
        )
        found.append((row.recipient, path, row.mime))
    return found


def _reschedule_link(mime: bytes) -> str | None:
    message = email.message_from_bytes(mime, policy=email_policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            match = _LINK.search(str(part.get_content()))
            if match:
                return match.group(0)
    return None


def run_demo(runtime: Runtime) -> DemoResult:
    """Create the demo booking and deliver its invitations; returns what to show."""
    provider_id, zone = _provider(runtime)
    booking_id, start = _book(runtime, provider_id)
    deliver_outbox(runtime.settings, runtime.sessions, runtime.clock)
    files = _files(runtime, booking_id)
    guest_mime = next((mime for to, _, mime in files if to == GUEST[1]), b"")
    base = runtime.settings.effective_base_url
    return DemoResult(
        base_url=base,
        booking_page=f"{base}/book/{DEMO_SLUG}",
        sign_in_page=f"{base}/me",
        host_email=HOST[1],
        timezone=zone,
        booking_id=booking_id,
        start=start,
        invitations=[(to, path) for to, path, _ in files],
        reschedule_link=_reschedule_link(guest_mime),
        maildir=runtime.settings.maildir,
    )
