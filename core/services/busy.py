"""Loading a provider's busy time from the database for the slot engine.

Busy = imported external events ∪ requested and confirmed bookings ∪ holds that are
active and not yet expired (``expires_at > now`` at read time, so a hold stops blocking
the moment it expires even before the expiry job runs) ∪ time inherited from related
units. One UNION ALL range query covers the provider and its related units and runs on
the driver's own cursor: slot queries read a thousand rows, and plain tuples are what
the engine's fast path takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Column, Connection, Dialect, Engine, Table, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from core.db.models import UnitRelationship
from core.domain import Busy, BusyKind
from core.domain.intervals import intersect, normalize
from core.domain.slots import BusyRow

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


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


# --- the driver's cursor ---------------------------------------------------------------------


@lru_cache(maxsize=64)
def for_driver(sql: str, dialect: str) -> str:
    """``:name`` placeholders as the driver wants them (sqlite3 takes them as they are)."""
    if dialect == "sqlite":
        return sql
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


def engine_of(sessions: sessionmaker[Session]) -> Engine:
    """The engine a sessionmaker is bound to."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the sessionmaker is not bound to an Engine")
    return bind


def db_time(session: Session, moment: datetime) -> Any:
    """An aware datetime as the driver binds it: naive UTC text on SQLite (as stored)."""
    return bind_time(session.get_bind(), moment)


def bind_time(bind: Engine | Connection, moment: datetime) -> Any:
    """``db_time`` for an engine or connection."""
    return dialect_time(bind.dialect.name, moment)


def dialect_time(dialect: str, moment: datetime) -> Any:
    """``db_time`` for a dialect by name."""
    if dialect == "sqlite":
        utc = moment.astimezone(UTC)
        # strftime writes year 1 as "1-01-01", which SQLAlchemy cannot read back.
        return f"{utc.year:04d}-" + utc.strftime(_SQLITE_TIME.removeprefix("%Y-"))
    return moment


def driver_rows(session: Session, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run ``sql`` (with ``:name`` placeholders) in the session's transaction; plain tuples.

    Bypasses SQLAlchemy's result machinery, which costs more than the query itself on
    the hot paths; timestamps must be bound with ``db_time`` and read with ``as_utc``.
    """
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(for_driver(sql, connection.dialect.name), params)
        return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


def driver_batch(
    session: Session, statements: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """Run several statements in order in the session's transaction; the rows of each.

    On PostgreSQL they go out together in one pipeline: one round trip instead of one
    each. The server still runs them one after another, each with its own snapshot, so a
    statement that waits for a row lock is followed by ones that see what the lock's
    previous holder committed. Elsewhere they simply run in turn.
    """
    deferred: list[Deferred] = session.info.pop(_DEFERRED, [])
    everything = [*statements, *((d.sql, d.params) for d in deferred)]
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect != "postgresql":
        results = [driver_rows(session, sql, params) for sql, params in everything]
    else:
        results = _pipelined(connection.connection.driver_connection, everything)
    for statement, rows in zip(deferred, results[len(statements) :], strict=True):
        statement.then(rows)
    return results[: len(statements)]


def _pipelined(
    driver: Any, statements: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    # A cursor costs more Python time to make than a short statement to send: statements
    # that return no rows share one (its results are not read), the others get their own.
    cursors: list[Any] = []
    shared = driver.cursor()
    try:
        with driver.pipeline():
            for sql, params in statements:
                if _returns_rows(sql):
                    cursor = driver.cursor()
                    cursors.append(cursor)
                else:
                    cursor = shared
                    cursors.append(None)
                cursor.execute(for_driver(sql, "postgresql"), params)
        return [[] if c is None or c.description is None else list(c.fetchall()) for c in cursors]
    finally:
        shared.close()
        for cursor in cursors:
            if cursor is not None:
                cursor.close()


@lru_cache(maxsize=256)
def _returns_rows(sql: str) -> bool:
    """Whether a statement can return rows: a SELECT (or WITH, VALUES…) or a RETURNING."""
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head not in ("INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK") or (
        "RETURNING" in sql.upper()
    )


async def pipelined_async(
    conn: AsyncConnection[Any], statements: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """``driver_batch`` on an asyncio PostgreSQL connection (``%(name)s`` placeholders)."""
    cursors = []
    async with conn.pipeline():
        for sql, params in statements:
            cursor = conn.cursor()
            cursors.append(cursor)
            await cursor.execute(sql, params or None)
    return [list(await c.fetchall()) if c.description is not None else [] for c in cursors]


def insert_of(row: Any, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """A plain INSERT of a new ORM row (not in any session), for ``driver_batch``.

    Scalar column defaults are applied as a flush applies them, and each value is bound
    the way its column type binds it (UTC text on SQLite, JSON, …). Columns left None are
    left out: NULL, or the database's own default (autoincrement ids).
    """
    table = row.__table__
    params: dict[str, Any] = {}
    for column, process in _binders(table, dialect):
        value = getattr(row, column.key)
        if value is None and isinstance(column.default, ScalarElementColumnDefault):
            value = column.default.arg
        if value is not None:
            params[column.name] = value if process is None else process(value)
    names = ", ".join(params)
    return f"INSERT INTO {table.name} ({names}) VALUES (:{', :'.join(params)})", params


_BINDERS: dict[tuple[str, str], list[tuple[Column[Any], Callable[[Any], Any] | None]]] = {}


def _binders(
    table: Table, dialect: Dialect
) -> list[tuple[Column[Any], Callable[[Any], Any] | None]]:
    key = (table.name, dialect.name)
    found = _BINDERS.get(key)
    if found is None:
        found = _BINDERS[key] = [
            (column, column.type.dialect_impl(dialect).bind_processor(dialect))
            for column in table.columns
        ]
    return found


@dataclass(frozen=True, slots=True)
class Deferred:
    """A statement that rides along with the transaction's next batch; ``then`` gets its rows."""

    sql: str
    params: Mapping[str, Any]
    then: Callable[[list[tuple[Any, ...]]], None]


_DEFERRED = "parley.deferred"


def defer(session: Session, statement: Deferred) -> None:
    """Queue ``statement`` to go out with the next ``driver_batch`` of this session.

    It saves the statement a round trip of its own; ``run_deferred`` sends whatever is
    still queued (call it before the commit).
    """
    session.info.setdefault(_DEFERRED, []).append(statement)


def run_deferred(session: Session) -> None:
    """Send the statements still queued by ``defer`` (in one batch)."""
    if session.info.get(_DEFERRED):
        driver_batch(session, [])


def as_utc(value: datetime | str) -> datetime:
    """A stored UTC timestamp as an aware datetime (SQLite returns the naive text)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- related units ---------------------------------------------------------------------------


def related_units(session: Session, provider_id: str) -> Related:
    """Parent units that block this one, and children that block it only when all are busy."""
    rows = session.execute(
        select(
            UnitRelationship.parent_id,
            UnitRelationship.child_id,
            UnitRelationship.block_child_on_parent,
            UnitRelationship.block_parent_on_all_children,
        ).where(
            UnitRelationship.active.is_(True),
            (UnitRelationship.child_id == provider_id)
            | (UnitRelationship.parent_id == provider_id),
        )
    ).all()
    parents = sorted(
        r.parent_id for r in rows if r.child_id == provider_id and r.block_child_on_parent
    )
    children = sorted(
        r.child_id for r in rows if r.parent_id == provider_id and r.block_parent_on_all_children
    )
    return Related(tuple(parents), tuple(children))


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
