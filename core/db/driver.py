"""Running SQL on the driver's own cursor: the plumbing the hot paths share.

SQLAlchemy's result machinery costs more than a short query itself on the hot paths, so
they send plain SQL with ``:name`` placeholders through these helpers and read plain
tuples. Timestamps are bound with ``db_time`` (naive UTC text on SQLite, as stored) and
read back with ``as_utc``. On PostgreSQL a batch goes out in one pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Column, Connection, Dialect, Engine, Table
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.schema import ScalarElementColumnDefault

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


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
