"""Asyncio PostgreSQL connections for the hottest public path (hold creation).

The regular path runs a service in the thread pool on a SQLAlchemy session; under load
its thread hand-offs, GIL contention and session bookkeeping cost more Python time than
the few statements a hold needs. A hot path instead awaits plain psycopg connections on
the event loop. Connections belong to the event loop that opened them: when another
loop asks (a new test client), the idle ones are closed and new ones opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine

from core.db.engine import closed_by_server


class HotConnections:
    """At most ``size`` connections at once per event loop; idle ones are kept for reuse."""

    def __init__(self, conninfo: str, size: int = 10) -> None:
        self._conninfo = conninfo
        self._size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[AsyncConnection[Any]] = []

    @classmethod
    def for_engine(cls, engine: Engine, size: int = 10) -> HotConnections | None:
        """Connections to the engine's PostgreSQL database; None for any other database."""
        if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
            return None
        url = engine.url.set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False), size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection outside any transaction; it goes back idle unless left mid-query."""
        slots = self._slots_for_this_loop()
        async with slots:
            conn = await self._idle_or_new()
            try:
                yield conn
            finally:
                # A query cut short (cancelled, or the server went away) leaves it busy;
                # one of a loop no longer served is of no use.
                busy = conn.closed or conn.info.transaction_status != TransactionStatus.IDLE
                if busy or self._slots is not slots:
                    _finish(conn)
                else:
                    self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections (from any thread; no event loop needed)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            _finish(conn)

    async def _idle_or_new(self) -> AsyncConnection[Any]:
        """An idle connection the server has not closed meanwhile, else a new one."""
        while self._idle:
            conn = self._idle.pop()
            if not closed_by_server(conn):
                return conn
            _finish(conn)
        return await self._connect()

    def _slots_for_this_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._slots is None:
            self.close()
            self._loop, self._slots = loop, asyncio.Semaphore(self._size)
        return self._slots

    async def _connect(self) -> AsyncConnection[Any]:
        # Autocommit: the hot path sends its own BEGIN, inside its first pipeline.
        return await psycopg.AsyncConnection.connect(
            self._conninfo, connect_timeout=30, autocommit=True
        )


def _finish(conn: AsyncConnection[Any]) -> None:
    """Close the socket without awaiting: works after the connection's loop is gone."""
    if not conn.closed:
        conn.pgconn.finish()
