"""Holds on SQLite and PostgreSQL: the busy time read in the same batch as the lock is
guessed from the provider's last hold, and a changed scope (buffers, related units)
must still be honoured on the very next hold."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.runtime import Runtime
from core.services.errors import SlotTaken
from core.services.holds import HoldRequest, create_hold
from tests.integration.services.helpers import MON, NOW, booking, provider, relate, set_hours

HOUR = timedelta(hours=1)
NINE = MON + timedelta(hours=8)  # 09:00 in Berlin


def _hold(runtime: Runtime, provider_id: str, start: object, key: str | None = None) -> str:
    ask = HoldRequest(provider_id, start, start + HOUR, "g@example.net", idempotency_key=key)  # type: ignore[arg-type]
    with runtime.sessions.begin() as session:
        return create_hold(session, ask, NOW, ttl_seconds=600).hold.id


def test_a_buffer_added_after_the_last_hold_is_honoured(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        ada = provider(session, "ada")
    _hold(runtime, ada, NINE)  # remembered: no buffers
    with runtime.sessions.begin() as session:
        set_hours(session, ada, buffer_minutes=30)
    with pytest.raises(SlotTaken):
        _hold(runtime, ada, NINE + HOUR)  # starts where the first ends: inside its buffer
    _hold(runtime, ada, NINE + 2 * HOUR)


def test_a_parent_related_after_the_last_hold_blocks_the_next(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        house, flat = provider(session, "house"), provider(session, "flat")
    _hold(runtime, flat, NINE)  # remembered: no related units
    with runtime.sessions.begin() as session:
        relate(session, house, flat)
        booking(session, house, NINE + 2 * HOUR)
    with pytest.raises(SlotTaken, match="related"):
        _hold(runtime, flat, NINE + 2 * HOUR)
    _hold(runtime, flat, NINE + 4 * HOUR)


def test_the_same_key_returns_the_same_hold(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        ada = provider(session, "ada")
    first = _hold(runtime, ada, NINE, key="k-1")
    assert _hold(runtime, ada, NINE, key="k-1") == first
