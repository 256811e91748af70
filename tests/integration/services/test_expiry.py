"""The expire_holds job: marks holds past their TTL once and records cal.hold.expired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db.models import Hold
from core.events import EVENTS
from core.runtime import Runtime
from core.services.expiry import expire_holds
from core.services.holds import HoldRequest, create_hold
from tests.integration.services.helpers import MON, NOW, provider

NINE = MON + timedelta(hours=8)


def _expired_count() -> float:
    return EVENTS.labels(event="cal.hold.expired")._value.get()


def test_expire_holds_marks_only_holds_past_their_ttl_once(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        who = provider(session, "ada")
        old = create_hold(session, HoldRequest(who, NINE, NINE + timedelta(hours=1)), NOW,
                          ttl_seconds=60).hold.id  # fmt: skip
        later = NINE + timedelta(hours=2)
        fresh = create_hold(session, HoldRequest(who, later, later + timedelta(hours=1)), NOW,
                            ttl_seconds=3600).hold.id  # fmt: skip
    before = _expired_count()
    assert expire_holds(runtime.sessions, NOW + timedelta(minutes=5)) == 1
    assert _expired_count() == pytest.approx(before + 1)
    assert expire_holds(runtime.sessions, NOW + timedelta(minutes=5)) == 0
    with runtime.sessions() as session:
        status = {row[0]: row[1] for row in session.execute(select(Hold.id, Hold.status))}
    assert status == {old: "expired", fresh: "active"}


def test_an_expired_hold_never_blocks_a_new_one(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        who = provider(session, "ada")
        create_hold(session, HoldRequest(who, NINE, NINE + timedelta(hours=1)), NOW,
                    ttl_seconds=60)  # fmt: skip
    later = NOW + timedelta(minutes=2)
    with runtime.sessions.begin() as session:  # before the job ran
        again = create_hold(session, HoldRequest(who, NINE, NINE + timedelta(hours=1)), later,
                            ttl_seconds=60)  # fmt: skip
    assert again.created
    assert expire_holds(runtime.sessions, later + timedelta(minutes=5)) == 2
