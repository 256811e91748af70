"""The freshness gate: instant book pauses while a provider's imported calendars are stale.

Checked when a hold is confirmed; it needs no state of its own, so instant book turns
back on by itself as soon as every source has synced again within the limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import ExternalSource

DEFAULT_STALE_AFTER = timedelta(minutes=180)
_PLATFORM_NAMES = {
    "airbnb": "Airbnb",
    "booking.com": "Booking.com",
    "vrbo": "VRBO",
    "motopress_ics": "MotoPress",
    "motopress_api": "MotoPress",
    "google": "Google",
    "outlook": "Outlook",
    "apple": "Apple",
}


def instant_book_allowed(
    session: Session,
    provider_id: str,
    now: datetime,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[bool, str | None]:
    """(True, None) when every source synced within stale_after; else False and why.

    A source that never synced counts as stale at once: until then Parley does not know
    that calendar's busy time. Pass stale_after=timedelta(minutes=settings.source_stale_minutes).
    """
    rows = session.execute(
        select(
            ExternalSource.name,
            ExternalSource.platform,
            ExternalSource.url,
            ExternalSource.last_success_at,
        ).where(ExternalSource.provider_id == provider_id)
    ).all()
    never = [r for r in rows if r.last_success_at is None]
    if never:
        label = source_label(never[0].name, never[0].platform, never[0].url)
        return False, f"instant book paused: {label} not synced yet"
    stale = [
        r for r in rows if r.last_success_at is not None and now - r.last_success_at > stale_after
    ]
    if not stale:
        return True, None
    worst = min(stale, key=lambda r: r.last_success_at)
    age = now - worst.last_success_at
    label = source_label(worst.name, worst.platform, worst.url)
    return False, f"instant book paused: {label} not synced for {format_age(age)}"


def source_label(name: str | None, platform: str, url: str) -> str:
    """ "Airbnb calendar", or the source's own name, or the feed's host."""
    if name:
        return name
    known = _PLATFORM_NAMES.get(platform)
    if known:
        return f"{known} calendar"
    return f"calendar at {urlsplit(url).hostname or url}"


def format_age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"
