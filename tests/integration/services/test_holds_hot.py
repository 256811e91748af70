"""The hot hold path (asyncio PostgreSQL connections on the event loop): it decides the
common case itself, with the same rules as ``create_hold``, and leaves related units and
reused idempotency keys to ``create_hold`` without writing anything."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from core.runtime import Runtime
from core.services.errors import RateLimited, SlotTaken
from core.services.holds import HoldRequest, HoldResult, create_hold, create_hold_hot
from core.services.ratelimit import pending_hit
from tests.integration.services.helpers import MON, NOW, booking, provider, relate, set_hours

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

HOUR = timedelta(hours=1)
NINE = MON + timedelta(hours=8)  # 09:00 in Berlin


@pytest.fixture
def hot_runtime(runtime: Runtime) -> Runtime:
    assert runtime.hot is not None  # a runtime on PostgreSQL has hot connections
    return runtime


def _ask(provider_id: str, start: Any, key: str | None = None) -> HoldRequest:
    return HoldRequest(provider_id, start, start + HOUR, "g@example.net", idempotency_key=key)


def _hot(runtime: Runtime, ask: HoldRequest, **kwargs: Any) -> HoldResult | None:
    assert runtime.hot is not None
    hot = runtime.hot

    async def run() -> HoldResult | None:
        async with hot.connection() as conn:
            return await create_hold_hot(conn, ask, NOW, ttl_seconds=600, **kwargs)

    return asyncio.run(run())


def _active_holds(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM holds").scalar_one())


def test_the_hot_path_holds_and_then_refuses_an_overlap(hot_runtime: Runtime) -> None:
    with hot_runtime.sessions.begin() as session:
        ada = provider(session, "ada")
        booking(session, ada, NINE + 4 * HOUR)
    made = _hot(hot_runtime, _ask(ada, NINE))
    assert made is not None and made.created
    with pytest.raises(SlotTaken):
        _hot(hot_runtime, _ask(ada, NINE + HOUR / 2))  # overlaps the hold just made
    with pytest.raises(SlotTaken):
        _hot(hot_runtime, _ask(ada, NINE + 4 * HOUR))  # overlaps the booking
    # The regular path sees the hot hold.
    with hot_runtime.sessions.begin() as session, pytest.raises(SlotTaken):
        create_hold(session, _ask(ada, NINE), NOW, ttl_seconds=600)
    assert _active_holds(hot_runtime) == 1


def test_a_buffer_added_after_the_last_hot_hold_is_honoured(hot_runtime: Runtime) -> None:
    with hot_runtime.sessions.begin() as session:
        ada = provider(session, "ada")
    assert _hot(hot_runtime, _ask(ada, NINE)) is not None  # remembered: no buffers
    with hot_runtime.sessions.begin() as session:
        set_hours(session, ada, buffer_minutes=30)
    with pytest.raises(SlotTaken):
        _hot(hot_runtime, _ask(ada, NINE + HOUR))  # starts where the first ends: its buffer
    assert _hot(hot_runtime, _ask(ada, NINE + 2 * HOUR)) is not None


def test_related_units_and_a_reused_key_are_left_to_the_full_path(hot_runtime: Runtime) -> None:
    with hot_runtime.sessions.begin() as session:
        house, flat, solo = (
            provider(session, "house"),
            provider(session, "flat"),
            provider(session, "solo"),
        )
        relate(session, house, flat)
    assert _hot(hot_runtime, _ask(flat, NINE)) is None
    assert _hot(hot_runtime, _ask(solo, NINE, key="k-1")) is not None
    assert _hot(hot_runtime, _ask(solo, NINE, key="k-1")) is None  # a replay: create_hold's
    assert _active_holds(hot_runtime) == 1


def test_the_rate_limit_hit_is_counted_in_the_hold_transaction(hot_runtime: Runtime) -> None:
    with hot_runtime.sessions.begin() as session:
        ada = provider(session, "ada")
    key = "public:hot-test"

    def hit() -> Any:
        return pending_hit(hot_runtime.engine, key, NOW, limit=2)

    assert _hot(hot_runtime, _ask(ada, NINE), hit=hit()) is not None
    with pytest.raises(SlotTaken):  # rolled back: this one is not counted
        _hot(hot_runtime, _ask(ada, NINE), hit=hit())
    assert _hot(hot_runtime, _ask(ada, NINE + HOUR), hit=hit()) is not None
    with pytest.raises(RateLimited):
        _hot(hot_runtime, _ask(ada, NINE + 2 * HOUR), hit=hit())
    assert _active_holds(hot_runtime) == 2


def test_connections_are_reused_on_one_loop_and_replaced_on_another(hot_runtime: Runtime) -> None:
    hot = hot_runtime.hot
    assert hot is not None

    async def backend_pids(times: int) -> set[int]:
        pids = set()
        for _ in range(times):
            async with hot.connection() as conn:
                pids.add(conn.info.backend_pid)
        return pids

    first = asyncio.run(backend_pids(3))
    assert len(first) == 1  # one idle connection, reused
    second = asyncio.run(backend_pids(1))
    assert second.isdisjoint(first)  # another loop: a new connection

    async def broken() -> None:
        async with hot.connection() as conn:
            await conn.execute("SELECT pg_sleep(0)")
            await conn.execute("BEGIN")  # left inside a transaction: not reused

    asyncio.run(broken())
    assert asyncio.run(backend_pids(1)).isdisjoint(second)
    hot.close()
