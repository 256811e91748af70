"""Periodic clean-up of time-limited things: holds past their TTL.

A hold stops blocking the moment it expires (readers compare expires_at with now);
this job only records the fact, so the audit log and metrics see each expiry once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Hold
from core.metrics import HOLDS_EXPIRED
from core.services.holds import hold_event


def expire_holds(sessions: sessionmaker[Session], now: datetime, *, batch: int = 500) -> int:
    """Mark active holds whose TTL has passed as expired; returns how many."""
    with sessions.begin() as session:
        query = (
            select(Hold)
            .where(Hold.status == "active", Hold.expires_at <= now)
            .order_by(Hold.expires_at)
            .limit(batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        holds = list(session.scalars(query))
        for hold in holds:
            hold.status = "expired"
            hold_event("cal.hold.expired", hold)
        HOLDS_EXPIRED.inc(len(holds))
        return len(holds)
