"""Availability on SQLite and PostgreSQL: explanations name external events and their
source; the row fast path answers exactly as the engine does with ``Busy`` values."""

from __future__ import annotations

import random
from datetime import timedelta

from core.domain import compute_slots
from core.runtime import Runtime
from core.services.availability import explain_slot, find_slots, get_availability
from core.services.busy import load_busy
from tests.integration.services.helpers import MON, NOW, booking, external, provider

HOUR = timedelta(hours=1)
NINE = MON + timedelta(hours=8)


def test_external_event_shows_in_explain_with_its_source(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        who = provider(session, "ada")
        source = external(session, who, NINE, name="Airbnb calendar")
    with runtime.sessions.begin() as session:
        why = explain_slot(session, who, NINE + timedelta(minutes=30), HOUR, NOW)
    assert not why.bookable
    reason = why.reasons[0]
    assert reason.code == "busy_external" and reason.kind == "external"
    assert reason.ref == source and reason.label == "Airbnb calendar"
    assert reason.busy_start == NINE and reason.busy_end == NINE + HOUR
    assert "Airbnb calendar" in reason.message


def test_find_slots_matches_the_engine_on_busy_values(runtime: Runtime) -> None:
    rng = random.Random(5)
    with runtime.sessions.begin() as session:
        who = provider(session, "ada", buffer_minutes=15)
        for _ in range(40):
            start = MON + timedelta(minutes=15 * rng.randrange(4 * 24 * 5))
            if rng.random() < 0.5:
                booking(session, who, start, minutes=rng.choice((30, 45, 60)))
            else:
                external(session, who, start)
    end = MON + timedelta(days=5)
    with runtime.sessions.begin() as session:
        found = find_slots(session, who, MON, end, HOUR, NOW)
        policy = get_availability(session, who)
        busy = load_busy(session, who, MON - HOUR, end + 2 * HOUR, NOW)
    assert found.slots == compute_slots(policy, busy, NOW, MON, end, HOUR)
    assert 0 < len(found.slots) < 5 * 15


def test_rules_and_settings_round_trip_through_the_one_query_load(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        who = provider(session, "ada", buffer_minutes=10)
        policy = get_availability(session, who)
    assert [(w.weekday, w.start_minute, w.end_minute) for w in policy.weekly] == [
        (day, 540, 1020) for day in range(5)
    ]
    assert (policy.buffer_before_minutes, policy.buffer_after_minutes) == (10, 10)
    assert policy.timezone == "Europe/Berlin" and policy.instant_book
