"""The rate limiter's twins count alike: ``check`` and ``check_hot``, and a call counted on
the thread pool (``counted``) or on the event loop (``counted_call`` with a hot part).

Each sequence of hits runs once through each twin from an empty counter table; the
answers (counts, or the refusal with its Retry-After) and the rows left must agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core.db.driver import for_driver
from core.runtime import Runtime
from core.services import ratelimit
from core.services.errors import RateLimited, SlotTaken
from tests.integration.services.helpers import NOW

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

# (key, seconds after NOW, limit): a window filling up, a refusal, the next window,
# another key, a window of its own length, and no limit at all.
HITS = [
    ("a", 0, 2), ("a", 1, 2), ("a", 2, 2), ("a", 3, 2), ("b", 3, 2), ("a", 61, 2),
    ("a", 62, 1), ("c", 5, 0), ("d", 100, 3),
]  # fmt: skip


def _answer(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except RateLimited as refused:
        return ("refused", refused.retry_after, str(refused))


def _rows(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.engine.begin() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(text("SELECT * FROM rate_limits ORDER BY key, window_start"))
        ]
        conn.execute(text("DELETE FROM rate_limits"))
    return rows


def _at(seconds: int) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_check_and_check_hot_count_and_refuse_alike(runtime: Runtime) -> None:
    hot = runtime.hot
    assert hot is not None

    def slow_one(key: str, seconds: int, limit: int) -> int:
        return ratelimit.check(runtime.sessions, key, _at(seconds), limit=limit)

    async def fast(key: str, seconds: int, limit: int) -> int:
        async with hot.connection() as conn:
            return await ratelimit.check_hot(conn, key, _at(seconds), limit=limit)

    def fast_one(key: str, seconds: int, limit: int) -> int:
        return asyncio.run(fast(key, seconds, limit))

    slow = [_answer(slow_one, *hit) for hit in HITS]
    expected = _rows(runtime)
    got = [_answer(fast_one, *hit) for hit in HITS]
    assert got == slow
    assert _rows(runtime) == expected
    assert slow[:2] == [1, 2] and slow[2][0] == slow[3][0] == "refused"
    assert [row["key"] for row in expected] == ["a", "b", "d"]  # no limit: nothing written


def _call(runtime: Runtime, budget: ratelimit.Budget, outcome: str, *, hot: bool) -> Any:
    """One call counted against budget; outcome "ok", "taken" (a service error) or "none"
    (the hot part steps aside)."""

    def work(session: Any, now: datetime) -> str:
        if outcome == "taken":
            raise SlotTaken("hold x")
        session.execute(text("SELECT 1"))
        return "regular"

    async def fast(conn: Any, now: datetime, hit: Any) -> str | None:
        if hit is not None:  # the hit rides in the call's own transaction
            await conn.execute("BEGIN")
            cursor = await conn.execute(for_driver(hit.sql, "postgresql"), hit.params)
            hit.then(await cursor.fetchall())
        if outcome == "taken":
            raise SlotTaken("hold x")
        if hit is not None:
            await conn.execute("ROLLBACK" if outcome == "none" else "COMMIT")
        return None if outcome == "none" else "regular"

    try:
        return asyncio.run(ratelimit.counted_call(runtime, budget, fast if hot else None, work))
    except RateLimited as refused:
        return ("refused", refused.retry_after)
    except SlotTaken as error:
        return ("taken", str(error))


OUTCOMES = ["ok", "taken", "none", "ok", "taken", "ok"]


@pytest.mark.parametrize("limit", [0, 3, 100])
def test_a_call_counts_alike_on_the_thread_pool_and_on_the_event_loop(
    runtime: Runtime, limit: int
) -> None:
    runtime.clock = lambda: NOW
    budget = ratelimit.Budget("public:twin", limit)
    slow = [_call(runtime, budget, outcome, hot=False) for outcome in OUTCOMES]
    expected = _rows(runtime)
    ratelimit._REFUSED.pop(runtime.engine, None)  # remembered refusals: each twin learns anew
    got = [_call(runtime, budget, outcome, hot=True) for outcome in OUTCOMES]
    assert got == slow
    assert _rows(runtime) == expected
    if limit == 3:
        assert [a[0] for a in slow[3:]] == ["refused"] * 3  # the refused hit is not kept
        assert expected[0]["hits"] == 3
    elif limit == 100:
        assert expected[0]["hits"] == len(OUTCOMES)  # failures count, a step aside once
