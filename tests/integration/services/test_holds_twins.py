"""The hot hold path leaves what ``create_hold`` leaves, or steps aside; ``place_hold`` picks.

Each case asks for one hold twice in the same database: once through ``create_hold`` (its
rate-limit hit deferred into its transaction, as ``ratelimit.counted`` does), its effects
read and rolled back, then through ``create_hold_hot`` with the same hit. The holds, the
rate-limit counters, the audit log and the outbox must agree, and so must the error
(class, code and message) of a refused request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, text, update

from core.db.driver import run_deferred
from core.db.models import Hold
from core.runtime import Runtime
from core.services import ratelimit
from core.services.holds import HoldRequest, create_hold, create_hold_hot, place_hold
from tests.integration.services.helpers import MON, NOW, booking, external, provider, relate

HOUR = timedelta(hours=1)
NINE = MON + timedelta(hours=8)  # 09:00 in Berlin
KEY = "public:twins"
TTL = 600


def _snapshot(conn: Connection) -> dict[str, Any]:
    def rows(sql: str) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(text(sql))]

    return {
        "holds": rows(
            "SELECT tenant_id, provider_id, start_at, end_at, expires_at, status, purpose,"
            " idempotency_key, guest_email, guest_name, guest_timezone, booking_id, created_at"
            " FROM holds ORDER BY start_at, status"
        ),
        "rate_limits": rows("SELECT key, tenant_id, window_start, hits FROM rate_limits"),
        "audit": rows("SELECT actor, action, subject_type, subject_id FROM audit_log ORDER BY id"),
        "outbox": rows("SELECT idempotency_key, recipient, mime FROM outbound_messages"),
    }


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        result = call()
    except Exception as error:  # the error is what is compared
        return "error", (type(error).__name__, getattr(error, "code", None), str(error))
    if result is None:
        return "none", None
    hold = result.hold
    columns = {c.key: getattr(hold, c.key) for c in Hold.__table__.columns if c.key != "id"}
    return "made", (result.created, columns)


def _regular(runtime: Runtime, ask: HoldRequest, limit: int) -> tuple[tuple[str, Any], Any]:
    with runtime.sessions() as session:
        session.begin()

        def run() -> Any:
            ratelimit.defer_hit(session, KEY, NOW, limit=limit)
            made = create_hold(session, ask, NOW, ttl_seconds=TTL)
            run_deferred(session)
            return made

        outcome = _outcome(run)
        session.rollback() if outcome[0] == "error" else session.flush()
        state = _snapshot(session.connection())
        session.rollback()
    return outcome, state


def _hot(runtime: Runtime, ask: HoldRequest, limit: int) -> tuple[tuple[str, Any], Any]:
    hot = runtime.hot
    assert hot is not None

    async def run() -> Any:
        async with hot.connection() as conn:
            hit = ratelimit.pending_hit(runtime.engine, KEY, NOW, limit=limit)
            return await create_hold_hot(conn, ask, NOW, ttl_seconds=TTL, hit=hit)

    outcome = _outcome(lambda: asyncio.run(run()))
    with runtime.engine.connect() as conn:
        return outcome, _snapshot(conn)


def _ask(provider_id: str, start: datetime, end: datetime | None = None, **kw: Any) -> HoldRequest:
    return HoldRequest(provider_id, start, end or start + HOUR, "g@example.net", **kw)


def _case(runtime: Runtime, shape: str) -> tuple[HoldRequest, int]:
    """The state and the request of one case, and the rate limit it runs under."""
    with runtime.sessions.begin() as session:
        ada = provider(session, "ada", buffer_minutes=30 if shape == "buffer" else 0)
        booking(session, ada, NINE + 4 * HOUR)
        external(session, ada, NINE + 6 * HOUR)
        held = create_hold(session, _ask(ada, NINE + 2 * HOUR), NOW, ttl_seconds=TTL).hold.id
        if shape == "expired hold":
            session.execute(update(Hold).where(Hold.id == held).values(expires_at=NOW))
        ratelimit.hit(session, KEY, NOW, limit=100)  # one hit counted already
    asks = {
        "free": _ask(ada, NINE, guest_name="Grace", guest_timezone="Europe/Paris"),
        "new key": _ask(ada, NINE, idempotency_key="k-1"),
        "booked": _ask(ada, NINE + 4 * HOUR),
        "held": _ask(ada, NINE + 2 * HOUR + HOUR / 2),
        "expired hold": _ask(ada, NINE + 2 * HOUR),
        "imported": _ask(ada, NINE + 6 * HOUR),
        "buffer": _ask(ada, NINE + 3 * HOUR),  # starts where the hold ends: in its buffer
        "closed": _ask(ada, NINE - 2 * HOUR),
        "lead time": _ask(ada, NOW + HOUR),
        "too long": _ask(ada, NINE, NINE + timedelta(days=40)),
        "backwards": _ask(ada, NINE, NINE - HOUR),
        "rate limited": _ask(ada, NINE),
    }
    return asks[shape], 1 if shape == "rate limited" else 100


SHAPES = [
    "free", "new key", "booked", "held", "expired hold", "imported", "buffer", "closed",
    "lead time", "too long", "backwards", "rate limited",
]  # fmt: skip


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("shape", SHAPES)
def test_the_hot_hold_path_writes_and_refuses_what_create_hold_does(
    runtime: Runtime, shape: str
) -> None:
    ask, limit = _case(runtime, shape)
    slow, expected = _regular(runtime, ask, limit)
    fast, got = _hot(runtime, ask, limit)
    assert fast[0] != "none", "the hot path stepped aside from a case it takes"
    assert fast == slow
    assert got == expected
    made = {"free", "new key", "expired hold"}
    assert (slow[0] == "made") == (shape in made), slow


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_what_the_hot_path_leaves_it_leaves_untouched(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        house, flat, solo = (provider(session, n) for n in ("house", "flat", "solo"))
        relate(session, house, flat)
        create_hold(session, _ask(solo, NINE, idempotency_key="k-1"), NOW, ttl_seconds=TTL)
    with runtime.engine.connect() as conn:
        before = _snapshot(conn)
    for ask in (_ask(flat, NINE), _ask(solo, NINE, idempotency_key="k-1")):
        assert _hot(runtime, ask, 100) == (("none", None), before)


def _place(runtime: Runtime, ask: HoldRequest, *, hot: bool) -> tuple[bool, str]:
    budget = ratelimit.Budget(KEY, 100)
    made = asyncio.run(place_hold(runtime, lambda: ask, budget=budget, hot=hot))
    return made.created, made.hold.provider_id


def test_place_hold_takes_every_case_to_a_path_that_decides_it(runtime: Runtime) -> None:
    """On both databases: the common case, related units and a replay all get their hold,
    hot or not, and each call is counted once."""
    runtime.clock = lambda: NOW
    with runtime.sessions.begin() as session:
        house, flat, solo = (provider(session, n) for n in ("house", "flat", "solo"))
        relate(session, house, flat)
    keyed = _ask(solo, NINE + 2 * HOUR, idempotency_key="k-2")
    assert _place(runtime, _ask(solo, NINE), hot=True) == (True, solo)
    assert _place(runtime, _ask(flat, NINE), hot=True) == (True, flat)
    assert _place(runtime, keyed, hot=True) == (True, solo)
    assert _place(runtime, keyed, hot=True) == (False, solo)  # the replay
    assert _place(runtime, _ask(solo, NINE + 4 * HOUR), hot=False) == (True, solo)
    with runtime.engine.connect() as conn:
        assert _snapshot(conn)["rate_limits"][0]["hits"] == 5
