"""A fixed-window rate limiter on the rate_limits table, shared by every process.

One row per key holds the current window's start and hit count; a single upsert
(INSERT … ON CONFLICT DO UPDATE … RETURNING) counts a hit atomically on SQLite and
PostgreSQL alike, so no read-modify-write race is possible between processes. Callers
on the event loop go through ``count`` (a hit alone) and ``counted_call`` (a call whose
hit rides in its own transaction): each picks the asyncio PostgreSQL connection when
there is one and the thread pool otherwise.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from sqlalchemy import Connection, Engine, case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from core.db.driver import Deferred, bind_time, defer, driver_rows, for_driver, run_deferred
from core.db.hot import HotConnections
from core.db.models import DEFAULT_TENANT, RateLimit
from core.runtime import Runtime
from core.services.errors import RateLimited

T = TypeVar("T")
HotWork = Callable[[AsyncConnection[Any], datetime, Deferred | None], Awaitable[T | None]]


@dataclass(frozen=True, slots=True)
class Budget:
    """Whose calls are counted, and how many one window allows (a limit of 0: no limit)."""

    key: str
    limit: int
    window_seconds: int = 60


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the fixed window that ``now`` falls in."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_seconds, UTC)


def hit(session: Session, key: str, now: datetime, *, limit: int, window_seconds: int = 60) -> int:
    """Count one hit for ``key``; raise ``RateLimited`` once more than ``limit`` fell in the window.

    Returns the hits so far in this window. A limit of 0 disables the check.
    """
    if limit <= 0:
        return 0
    start = window_start(now, window_seconds)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = insert(RateLimit).values(key=key[:255], window_start=start, hits=1)
    same_window = RateLimit.window_start == values.excluded.window_start
    statement = values.on_conflict_do_update(
        index_elements=[RateLimit.key],
        set_={
            "hits": case((same_window, RateLimit.hits + 1), else_=1),
            "window_start": values.excluded.window_start,
        },
    ).returning(RateLimit.hits)
    hits = int(session.execute(statement).scalar_one())
    if hits > limit:
        raise RateLimited(_retry_after(start, now, window_seconds))
    return hits


# One statement per hit. On PostgreSQL the FROM clause turns synchronous_commit off for
# this transaction only: a counter lost in a crash is harmless, and not waiting for the
# WAL flush keeps the commit a public request waits for cheap.
_HIT = """
    INSERT INTO rate_limits (key, tenant_id, window_start, hits)
    SELECT :key, :tenant, :start, 1 {source}
    ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN rate_limits.window_start = excluded.window_start
                    THEN rate_limits.hits + 1 ELSE 1 END,
        window_start = excluded.window_start
    RETURNING hits
"""
_FAST_COMMIT = "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS fast"


def check(
    sessions: sessionmaker[Session],
    key: str,
    now: datetime,
    *,
    limit: int,
    window_seconds: int = 60,
) -> int:
    """``hit`` in its own short transaction, so the counter row is never locked for long."""
    if limit <= 0:
        return 0
    with sessions.begin() as session:
        sql, params, start = _alone(session.get_bind(), key, now, window_seconds)
        hits = int(driver_rows(session, sql, params)[0][0])
    return _judged(hits, limit, start, now, window_seconds)


async def check_hot(
    conn: AsyncConnection[Any],
    key: str,
    now: datetime,
    *,
    limit: int,
    window_seconds: int = 60,
) -> int:
    """``check`` on an asyncio PostgreSQL connection in autocommit mode."""
    if limit <= 0:
        return 0
    sql, params, start = _alone(None, key, now, window_seconds)
    cursor = await conn.execute(for_driver(sql, "postgresql"), params)
    row = await cursor.fetchone()
    return _judged(int(row[0]) if row else 0, limit, start, now, window_seconds)


def _alone(
    bind: Engine | Connection | None, key: str, now: datetime, window_seconds: int
) -> tuple[str, dict[str, Any], datetime]:
    """The statement of a hit that is a transaction of its own (None: PostgreSQL's)."""
    start = window_start(now, window_seconds)
    postgres = bind is None or bind.dialect.name == "postgresql"
    sql = _HIT.format(source=_FAST_COMMIT if postgres else "WHERE true")
    return sql, _hit_params(bind, key, start), start


def _hit_params(bind: Engine | Connection | None, key: str, start: datetime) -> dict[str, Any]:
    when = start if bind is None else bind_time(bind, start)
    return {"key": key[:255], "tenant": DEFAULT_TENANT, "start": when}


def _judged(hits: int, limit: int, start: datetime, now: datetime, window_seconds: int) -> int:
    if hits > limit:
        raise RateLimited(_retry_after(start, now, window_seconds))
    return hits


# Per engine, the keys known to be over their limit and the window that holds for: a
# client refused once is refused again without touching the database until it ends.
_REFUSED: weakref.WeakKeyDictionary[Engine, dict[str, datetime]] = weakref.WeakKeyDictionary()


def defer_hit(
    session: Session, key: str, now: datetime, *, limit: int, window_seconds: int = 60
) -> None:
    """Count one hit for ``key`` in the caller's transaction, riding on its next batch.

    The count is only kept if the transaction commits: callers count a failed call with
    ``check`` instead. ``RateLimited`` comes right away for a key already refused in this
    window, else once the hit is counted.
    """
    statement = pending_hit(
        session.get_bind(), key, now, limit=limit, window_seconds=window_seconds
    )
    if statement is not None:
        defer(session, statement)


def pending_hit(
    bind: Engine | Connection, key: str, now: datetime, *, limit: int, window_seconds: int = 60
) -> Deferred | None:
    """The statement that counts one hit for ``key``, and the check of its result.

    None when ``limit`` is 0 (no limit); ``RateLimited`` at once for a key already
    refused in this window. Whoever runs the statement passes its rows to ``then``.
    """
    if limit <= 0:
        return None
    start = window_start(now, window_seconds)
    engine = bind if isinstance(bind, Engine) else None
    refused = _REFUSED.get(engine) if engine is not None else None
    if refused is not None and refused.get(key) == start:
        raise RateLimited(_retry_after(start, now, window_seconds))

    def then(rows: list[tuple[Any, ...]]) -> None:
        if int(rows[0][0]) > limit:
            if engine is not None:
                known = _REFUSED.setdefault(engine, {})
                if len(known) > 10_000:
                    known.clear()
                known[key] = start
            raise RateLimited(_retry_after(start, now, window_seconds))

    return Deferred(_HIT.format(source="WHERE true"), _hit_params(bind, key, start), then)


def _retry_after(start: datetime, now: datetime, window_seconds: int) -> int:
    return max(int((start + timedelta(seconds=window_seconds) - now).total_seconds()) + 1, 1)


def purge(session: Session, now: datetime, *, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete counters whose window ended long ago; returns how many."""
    result = session.execute(delete(RateLimit).where(RateLimit.window_start < now - older_than))
    return int(getattr(result, "rowcount", 0) or 0)


async def count(runtime: Runtime, budget: Budget) -> int:
    """One hit against ``budget`` in its own transaction: ``check_hot`` on the runtime's
    asyncio connections when it has some, else ``check`` in a worker thread."""
    now = runtime.clock()
    if runtime.hot is None:
        return await asyncio.to_thread(
            check, runtime.sessions, budget.key, now, limit=budget.limit,
            window_seconds=budget.window_seconds,
        )  # fmt: skip
    async with runtime.hot.connection() as conn:
        return await check_hot(
            conn, budget.key, now, limit=budget.limit, window_seconds=budget.window_seconds
        )


def counted(
    runtime: Runtime,
    budget: Budget,
    work: Callable[[Session, datetime], T],
    *,
    count_failure: Callable[[BaseException], bool] = lambda exc: True,
) -> T:
    """``work(session, now)`` in one transaction that also counts one hit against ``budget``.

    The hit goes out with the transaction's first batch of statements (or just before
    the commit), so it costs no round trip of its own; a call that fails is rolled back
    and then counted on its own (unless ``count_failure`` says the caller runs it again),
    so failures count too. Parse request values inside ``work``.
    """
    now = runtime.clock()
    try:
        with runtime.sessions.begin() as session:
            defer_hit(
                session, budget.key, now, limit=budget.limit,
                window_seconds=budget.window_seconds,
            )  # fmt: skip
            result = work(session, now)
            run_deferred(session)
            return result
    except RateLimited:
        raise
    except Exception as exc:
        if count_failure(exc):
            _count_failed_call(runtime, budget)
        raise


def _count_failed_call(runtime: Runtime, budget: Budget) -> None:
    """Count a call whose transaction was rolled back; over the limit it becomes a 429."""
    try:
        check(
            runtime.sessions, budget.key, runtime.clock(), limit=budget.limit,
            window_seconds=budget.window_seconds,
        )  # fmt: skip
    except RateLimited:
        raise
    except Exception:  # the database is down: the call's own error says more
        return


async def counted_call(
    runtime: Runtime,
    budget: Budget,
    hot: HotWork[T] | None,
    work: Callable[[Session, datetime], T],
) -> T:
    """``counted`` that first tries ``hot`` on the event loop (PostgreSQL only).

    ``hot`` gets an asyncio connection, the time and the rate-limit statement to run in
    its transaction; it answers None to leave the call to ``work`` (run as ``counted``
    runs it, in a worker thread), as does a connection that fails. Its failures count
    against the budget as ``counted``'s do. Without asyncio connections, or without
    ``hot``, the call is ``work``'s.
    """
    connections = runtime.hot
    result = None
    if connections is not None and hot is not None:
        result = await _hot_call(runtime, connections, budget, hot)
    if result is None:
        return await asyncio.to_thread(counted, runtime, budget, work)
    return result


async def _hot_call(
    runtime: Runtime, connections: HotConnections, budget: Budget, hot: HotWork[T]
) -> T | None:
    now = runtime.clock()
    try:
        hit = pending_hit(
            runtime.engine, budget.key, now, limit=budget.limit,
            window_seconds=budget.window_seconds,
        )  # fmt: skip
        async with connections.connection() as conn:
            return await hot(conn, now, hit)
    except RateLimited:
        raise
    except psycopg.OperationalError:
        return None  # rolled back; the regular path retries, or reports the failure
    except Exception:
        with suppress(psycopg.Error):  # the database is down: the call's own error says more
            await count(runtime, budget)
        raise
