"""Conflicts between imported reservations, as people read them, who is told of them, and
how a person settles one the priority rules left for review.

A conflict is written by the sync's reconcile step (two platforms' events overlapping on
one unit). Here it is put in words ("Airbnb reservation HM3K… and Booking.com reservation
4412… overlap on 12–14 March at Casa Azul; Airbnb kept as higher priority"), and each one
that needs a person's decision is mailed once to the unit's provider and to the tenant's
reviewers (``conflicts.notify`` job, through the outbox, one mail per conflict and address).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import (
    AuditEntry,
    Conflict,
    ExternalEvent,
    ExternalSource,
    Operator,
    Provider,
)
from core.events import record
from core.imip.compose import Mailbox
from core.services.access import Caller, Grant
from core.services.errors import AlreadyResolved, InvalidInput, NotFoundError
from core.services.freshness import source_label
from core.services.notify import Mailer, send_notice

NOTIFY_JOB = "conflicts.notify"
# Conflicts older than this are not mailed any more (they were, or nobody was there).
NOTIFY_WITHIN = timedelta(days=7)

_RULES = {
    "rule:priority": "as higher priority",
    "rule:reservation_over_block": "as a reservation outranks a block",
    "rule:last_modified": "as the later change",
    "rule:order": "for now: the two rank equal, decide which stands",
}


@dataclass(frozen=True, slots=True)
class Side:
    """One of the two overlapping events, as the sentence names it."""

    event_id: int
    platform: str
    reservation: bool
    reservation_code: str | None


def describe(
    first: Side,
    second: Side,
    *,
    overlap: tuple[datetime, datetime],
    unit: str,
    zone: str,
    winner_id: int | None,
    rule: str | None,
    open_: bool,
    remaining: Sequence[tuple[datetime, datetime]] = (),
) -> str:
    """The conflict in one sentence, for lists, pages and mail.

    ``remaining`` are the loser's parts outside the winner (a block split around a stay):
    named as what of it still stands.
    """
    days = _days(overlap, ZoneInfo(zone))
    text = f"{_side(first)} and {_side(second)} overlap on {days} at {unit}"
    winner = next((s for s in (first, second) if s.event_id == winner_id), None)
    decided_by_person = bool(rule) and not (rule or "").startswith("rule:")
    if winner is not None:
        why = f"by {rule}" if decided_by_person else _RULES.get(rule or "", "by the rules")
        text += f"; {_platform(winner)} kept {why}"
        loser = second if winner is first else first
        if remaining:
            parts = " and ".join(_days(part, ZoneInfo(zone)) for part in remaining)
            text += f"; the rest of the {_side(loser)} stands on {parts}"
    elif rule == "rule:turnover":
        text += "; a same-day checkout and check-in, both stand"
    elif decided_by_person:
        text += f"; both stand, as {rule} decided"
    return text + ("; needs review." if open_ else ".")


def _platform(side: Side) -> str:
    return source_label(None, side.platform, "").removesuffix(" calendar") or "Imported"


def _side(side: Side) -> str:
    name = _platform(side)
    if not side.reservation:
        return f"{name} block"
    code = side.reservation_code or ""
    shown = f" {code[:4]}…" if len(code) > 4 else f" {code}" if code else ""
    return f"{name} reservation{shown}"


def _days(overlap: tuple[datetime, datetime], zone: ZoneInfo) -> str:
    first = overlap[0].astimezone(zone).date()
    last = max(first, (overlap[1] - timedelta(microseconds=1)).astimezone(zone).date())
    if first == last:
        return _day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{_day(last)}"
    return f"{_day(first)} – {_day(last)}"


def _day(day: date) -> str:
    return f"{day.day} {day:%B}"


def describe_row(session: Session, conflict: Conflict, unit: Provider) -> str:
    """``describe`` for a stored conflict of unit."""
    found = session.execute(
        select(ExternalEvent.id, ExternalSource.platform, ExternalEvent.kind,
               ExternalEvent.reservation_code)
        .join(ExternalSource, ExternalSource.id == ExternalEvent.source_id)
        .where(ExternalEvent.id.in_((conflict.event_a_id, conflict.event_b_id)))
    ).all()  # fmt: skip
    sides = {i: Side(i, platform, kind == "reservation", code) for i, platform, kind, code in found}
    first, second = sides.get(conflict.event_a_id), sides.get(conflict.event_b_id)
    if first is None or second is None:
        return f"Two imported events overlap at {unit.name}."
    return describe(
        first, second, overlap=(conflict.overlap_start, conflict.overlap_end), unit=unit.name,
        zone=unit.timezone, winner_id=conflict.winner_id, rule=conflict.resolved_by,
        open_=conflict.resolved_at is None, remaining=conflict.remaining_parts(),
    )  # fmt: skip


# --- telling people --------------------------------------------------------------------------

# Who else reviews a tenant's conflicts (the console's owners and managers), by tenant id.
Reviewers = Callable[[Session, str], Iterable[Mailbox]]


def no_reviewers(session: Session, tenant_id: str) -> list[Mailbox]:
    return []


def tenant_reviewers(session: Session, tenant_id: str) -> list[Mailbox]:
    """The tenant's console owners and managers: those who may resolve a conflict."""
    rows = session.scalars(
        select(Operator.email).where(
            Operator.tenant_id == tenant_id, Operator.role.in_(("owner", "manager"))
        )
    ).all()
    return [Mailbox(address, "") for address in rows]


def notify_open_conflicts(
    session: Session,
    mailer: Mailer,
    now: datetime,
    *,
    reviewers: Reviewers = tenant_reviewers,
) -> int:
    """Mail each open conflict of the last week to its unit's provider and the tenant's
    reviewers, once per address (the outbox key says so); returns how many mails."""
    rows = session.scalars(
        select(Conflict)
        .where(Conflict.resolved_at.is_(None), Conflict.created_at > now - NOTIFY_WITHIN)
        .order_by(Conflict.id)
        .limit(500)
    ).all()
    sent = 0
    for conflict in rows:
        unit = session.get(Provider, conflict.provider_id)
        if unit is None:
            continue
        sentence = describe_row(session, conflict, unit)
        people = {unit.email.lower(): Mailbox(unit.email, unit.name)}
        for box in reviewers(session, conflict.tenant_id):
            people.setdefault(box.address.lower(), box)
        for address, box in sorted(people.items()):
            queued = send_notice(
                session, mailer, template="conflict_review",
                key=f"conflict:{conflict.id}:{address}", booking=None, to=box,
                context={"recipient_name": box.name, "unit": unit.name, "sentence": sentence,
                         "conflicts_url": f"{mailer.site(conflict.tenant_id)}/admin/conflicts"},
                now=now, zone_name=unit.timezone, tenant_id=conflict.tenant_id,
                locale=unit.locale if address == unit.email.lower() else None,
            )  # fmt: skip
            sent += queued
    if sent:
        record("cal.ics.conflict.notified", mails=sent)
    return sent


# --- a person decides ------------------------------------------------------------------------
# "Keep the first", "keep the second" or "both are real": the decision is recorded on the
# conflict (resolution, winner, who and when) with an audit row, and later polls of the
# calendars keep it (core.services.sync leaves conflicts a person resolved alone).

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
    if winner is None or winner != row.winner_id:
        row.remaining = None  # the side the rules split now stands whole
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
