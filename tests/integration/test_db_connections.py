"""Pooled and hot PostgreSQL connections the server has ended are dropped, not reused."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from core.db.engine import make_engine
from core.db.hot import HotConnections
from tests.pg import terminate_backends


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    return db_url


def test_pooled_connections_ended_by_the_server_are_replaced(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=4)
    try:
        held = [engine.connect() for _ in range(4)]
        pids = {c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in held}
        for conn in held:
            conn.close()  # back to the pool, idle
        assert terminate_backends(pg_url) >= 4
        time.sleep(0.1)  # the server's goodbye reaches the idle sockets
        again = [engine.connect() for _ in range(4)]
        fresh = {c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in again}
        for conn in again:
            conn.close()
        assert not fresh & pids  # every one a new backend, and no statement failed
    finally:
        engine.dispose()


def test_hot_connections_ended_by_the_server_are_replaced(pg_url: str) -> None:
    hot = HotConnections.for_engine(make_engine(pg_url), size=3)
    assert hot is not None

    async def pids() -> set[int]:
        async def one() -> int:
            async with hot.connection() as conn:
                cursor = await conn.execute("SELECT pg_backend_pid()")
                row = await cursor.fetchone()
                await asyncio.sleep(0.05)  # so the three are open at once
                assert row is not None
                return int(row[0])

        return set(await asyncio.gather(one(), one(), one()))

    async def scenario() -> None:
        before = await pids()
        assert terminate_backends(pg_url) >= 3
        await asyncio.sleep(0.1)  # the server's goodbye reaches the idle sockets
        after = await pids()
        assert len(after) == 3 and not before & after

    try:
        asyncio.run(scenario())
    finally:
        hot.close()
