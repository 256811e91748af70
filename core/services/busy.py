"""Loading a provider's busy time from the database for the slot engine.

Busy = imported external events ∪ requested and confirmed bookings ∪ holds that are
active and not yet expired (``expires_at > now`` at read time, so a hold stops blocking
the moment it expires even before the expiry job runs) ∪ time inherited from related
units. One UNION ALL range query covers the provider and its related units and runs on
the driver's own cursor: slot queries read a thousand rows, and plain tuples are what
the engine's fast path takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.driver import as_utc, dialect_time, driver_rows
from core.db.models import UnitRelationship
from core.domain import Busy, BusyKind
from core.domain.intervals import intersect, normalize
from core.domain.slots import BusyRow


@dataclass(frozen=True, slots=True)
class Exclude:
    """Items to leave out, e.g. the booking being rescheduled does not block itself."""

    booking_id: str | None = None
    hold_id: str | None = None


@dataclass(frozen=True, slots=True)
class Related:
    """Units whose time blocks a provider: parents always, children only all together.

    ``names`` maps unit ids to display names when the caller already has them.
    """

    parents: tuple[str, ...] = ()
    children_all: tuple[str, ...] = ()
    names: Mapping[str, str] | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return self.parents + self.children_all


# --- related units ---------------------------------------------------------------------------


def related_units(session: Session, provider_id: str) -> Related:
    """Units above this one that block it (through links that block downwards, at any
    depth: apartment → room → bed), and children that block it only when all are busy."""
    link = UnitRelationship
    children = session.scalars(
        select(link.child_id).where(
            link.active.is_(True),
            link.parent_id == provider_id,
            link.block_parent_on_all_children.is_(True),
        )
    ).all()
    parents: set[str] = set()
    level = {provider_id}
    for _ in range(16):
        found = session.scalars(
            select(link.parent_id).where(
                link.active.is_(True),
                link.child_id.in_(level),
                link.block_child_on_parent.is_(True),
            )
        ).all()
        level = set(found) - parents - {provider_id}
        if not level:
            break
        parents |= level
    return Related(tuple(sorted(parents)), tuple(sorted(children)))


# --- busy rows -------------------------------------------------------------------------------

# Each branch is a range scan on its (provider_id, start_at, end_at) index.
_BUSY = """
    SELECT e.provider_id, e.start_at, e.end_at, 'external', e.source_id, COALESCE(s.name, '')
      FROM external_events e JOIN external_sources s ON s.id = e.source_id
     WHERE e.provider_id IN ({ids}) AND e.start_at < :high AND e.end_at > :low
       AND e.merged_into_id IS NULL
    UNION ALL
    SELECT b.provider_id, b.start_at, b.end_at, 'external', b.calendar_id, c.name
      FROM dav_busy b JOIN dav_calendars c ON c.id = b.calendar_id
     WHERE b.provider_id IN ({ids}) AND b.start_at < :high AND b.end_at > :low
       AND c.blocking
    UNION ALL
    SELECT provider_id, start_at, end_at, 'booking', id, status
      FROM bookings
     WHERE provider_id IN ({ids}) AND start_at < :high AND end_at > :low
       AND status IN ('requested', 'confirmed') AND id <> :skip_booking
    UNION ALL
    SELECT provider_id, start_at, end_at, 'hold', id, ''
      FROM holds
     WHERE provider_id IN ({ids}) AND start_at < :high AND end_at > :low
       AND status = 'active' AND expires_at > :now AND id <> :skip_hold
    ORDER BY 2
"""


@lru_cache(maxsize=16)
def _busy_sql(count: int) -> str:
    return _BUSY.format(ids=", ".join(f":u{n}" for n in range(count)))


def unit_rows(
    session: Session,
    unit_ids: Sequence[str],
    low: datetime,
    high: datetime,
    now: datetime,
    exclude: Exclude = Exclude(),
) -> list[tuple[Any, ...]]:
    """(unit id, start, end, kind, ref, label) of every unit in ``unit_ids``, by start."""
    dialect = session.get_bind().dialect.name
    return driver_rows(session, *unit_rows_statement(dialect, unit_ids, low, high, now, exclude))


def unit_rows_statement(
    dialect: str,
    unit_ids: Sequence[str],
    low: datetime,
    high: datetime,
    now: datetime,
    exclude: Exclude = Exclude(),
) -> tuple[str, dict[str, Any]]:
    """The ``unit_rows`` statement (``:name`` placeholders) and its parameters for
    ``dialect``, to run alone or in a batch."""
    params: dict[str, Any] = {f"u{n}": unit for n, unit in enumerate(unit_ids)}
    params.update(
        low=dialect_time(dialect, low),
        high=dialect_time(dialect, high),
        now=dialect_time(dialect, now),
        skip_booking=exclude.booking_id or "",
        skip_hold=exclude.hold_id or "",
    )
    return _busy_sql(len(unit_ids)), params


def busy_rows(
    session: Session,
    provider_id: str,
    low: datetime,
    high: datetime,
    now: datetime,
    *,
    exclude: Exclude = Exclude(),
    related: Related | None = None,
) -> list[BusyRow]:
    """Everything that blocks ``provider_id`` in [low, high) as engine rows, sorted by start.

    Rows are (start, end, kind, ref, label) with aware UTC datetimes; time inherited from
    related units comes as kind ``related``, ref the unit id (``children`` for the
    all-children rule).
    """
    if related is None:
        related = related_units(session, provider_id)
    rows = unit_rows(session, (provider_id, *related.ids), low, high, now, exclude)
    return busy_from_unit_rows(session, provider_id, rows, related)


def busy_from_unit_rows(
    session: Session, provider_id: str, rows: list[tuple[Any, ...]], related: Related
) -> list[BusyRow]:
    """``busy_rows`` from the rows of ``unit_rows`` over the provider and ``related.ids``."""
    if isinstance(rows[0][1] if rows else None, str):
        rows = [(u, as_utc(s), as_utc(e), k, r, lb) for u, s, e, k, r, lb in rows]
    if not related.ids:
        return own_busy_rows(rows)
    return _with_related(session, provider_id, rows, related)


def own_busy_rows(rows: list[tuple[Any, ...]]) -> list[BusyRow]:
    """``busy_from_unit_rows`` for a unit with no related units (PostgreSQL's row types)."""
    return [(s, e, k, r, lb or "") for _, s, e, k, r, lb in rows]


def _with_related(
    session: Session, provider_id: str, rows: list[tuple[Any, ...]], related: Related
) -> list[BusyRow]:
    parents = set(related.parents)
    found: list[BusyRow] = []
    by_child: dict[str, list[tuple[datetime, datetime]]] = {c: [] for c in related.children_all}
    for unit, start, end, kind, ref, label in rows:
        if unit == provider_id:
            found.append((start, end, kind, ref, label or ""))
        if unit in parents:
            found.append((start, end, BusyKind.RELATED.value, unit, f"{kind} on {unit}"))
        if unit in by_child:
            by_child[unit].append((start, end))
    found += _all_children(session, by_child, related)
    found.sort(key=_start)
    return found


def _all_children(
    session: Session, by_child: dict[str, list[tuple[datetime, datetime]]], related: Related
) -> list[BusyRow]:
    """Time when every child is busy (a parent blocked by all its rooms)."""
    if not by_child:
        return []
    common: list[tuple[datetime, datetime]] | None = None
    for spans in by_child.values():
        merged = normalize(spans)
        common = merged if common is None else intersect(common, merged)
        if not common:
            return []
    names = related.names or _names(session, related.children_all)
    label = ", ".join(sorted(names.get(c, c) for c in related.children_all))
    kind = BusyKind.RELATED.value
    return [(start, end, kind, "children", label) for start, end in common or []]


def _names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    ids = list(ids)
    marks = ", ".join(f":n{n}" for n in range(len(ids)))
    sql = f"SELECT id, name FROM providers WHERE id IN ({marks})"
    return dict(driver_rows(session, sql, {f"n{n}": unit for n, unit in enumerate(ids)}))


def _start(row: BusyRow) -> datetime:
    return row[0]


def as_busy(rows: Iterable[BusyRow]) -> list[Busy]:
    """Engine rows as ``Busy`` values (for explanations and previews, where labels show)."""
    return [Busy(s, e, BusyKind(k), r, lb) for s, e, k, r, lb in rows if e > s]


def load_busy(
    session: Session,
    provider_id: str,
    low: datetime,
    high: datetime,
    now: datetime,
    *,
    exclude: Exclude = Exclude(),
    related: Related | None = None,
) -> list[Busy]:
    """Everything that blocks ``provider_id`` and overlaps [low, high), sorted by start."""
    rows = busy_rows(session, provider_id, low, high, now, exclude=exclude, related=related)
    return as_busy(rows)


def own_busy(
    session: Session,
    provider_id: str,
    low: datetime,
    high: datetime,
    now: datetime,
    *,
    exclude: Exclude = Exclude(),
) -> list[Busy]:
    """The provider's own external events, blocking bookings and live holds in [low, high)."""
    return load_busy(session, provider_id, low, high, now, exclude=exclude, related=Related())
