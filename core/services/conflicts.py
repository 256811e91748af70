"""A person settles a conflict the priority rules left for review.

"Keep the first", "keep the second" or "both are real": the decision is recorded on the
conflict (resolution, winner, who and when) with an audit row, and later polls of the
calendars keep it (core.services.sync leaves conflicts a person resolved alone).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import AuditEntry, Conflict
from core.services.access import Caller, Grant
from core.services.errors import AlreadyResolved, InvalidInput, NotFoundError

KEEPS = ("first", "second", "both")
RESOLUTIONS = {"first": "keep_first", "second": "keep_second", "both": "keep_both"}


def resolve(
    session: Session, caller: Caller, conflict_id: int, keep: str, now: datetime
) -> Conflict:
    """Record which side of an open conflict stands (managers and owners)."""
    caller.require(Grant.WRITE)
    if keep not in KEEPS:
        raise InvalidInput(f"keep must be one of {', '.join(KEEPS)}", code="invalid_keep")
    query = select(Conflict).where(Conflict.id == conflict_id).with_for_update()
    row = session.scalar(query)
    if row is None or not caller.sees(row.tenant_id, row.provider_id):
        raise NotFoundError("conflict", str(conflict_id))
    if row.resolved_at is not None:
        raise AlreadyResolved(f"conflict {conflict_id} was resolved by {row.resolved_by}")
    winner = {"first": row.event_a_id, "second": row.event_b_id, "both": None}[keep]
    row.resolution, row.winner_id = RESOLUTIONS[keep], winner
    row.resolved_by, row.resolved_at = caller.name[:64], now
    session.add(
        AuditEntry(
            tenant_id=row.tenant_id, at=now, actor=caller.name, action="conflict.resolved",
            subject_type="conflict", subject_id=str(row.id),
            data={"keep": keep, "provider_id": row.provider_id, "winner_event_id": winner},
        )
    )  # fmt: skip
    session.flush()
    return row
