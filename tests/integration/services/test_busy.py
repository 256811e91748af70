"""Related units on SQLite and PostgreSQL: a parent blocks its children; all children busy
block the parent only when the relationship says so."""

from __future__ import annotations

from datetime import timedelta

from core.runtime import Runtime
from core.services.availability import explain_slot, find_slots
from core.services.busy import load_busy
from tests.integration.services.helpers import MON, NOW, booking, provider, relate

HOUR = timedelta(hours=1)
NINE = MON + timedelta(hours=8)  # 09:00 in Berlin


def _starts(runtime: Runtime, provider_id: str) -> set[object]:
    with runtime.sessions.begin() as session:
        found = find_slots(session, provider_id, MON, MON + timedelta(days=1), HOUR, NOW)
    return {slot.start for slot in found.slots}


def test_booked_parent_blocks_its_child(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        house, flat = provider(session, "house"), provider(session, "flat")
        relate(session, house, flat)
        booking(session, house, NINE)
    assert NINE not in _starts(runtime, flat)
    assert NINE + 2 * HOUR in _starts(runtime, flat)
    with runtime.sessions.begin() as session:
        why = explain_slot(session, flat, NINE, HOUR, NOW)
        busy = load_busy(session, flat, MON, MON + timedelta(days=1), NOW)
    assert not why.bookable and why.reasons[0].code == "busy_related"
    assert why.reasons[0].ref == house and why.reasons[0].label == f"booking on {house}"
    assert [(b.kind.value, b.ref) for b in busy] == [("related", house)]


def test_child_does_not_block_parent_by_default(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        house, flat = provider(session, "house"), provider(session, "flat")
        relate(session, house, flat)
        booking(session, flat, NINE)
    assert NINE in _starts(runtime, house)


def test_all_children_busy_block_the_parent_when_the_relationship_says_so(
    runtime: Runtime,
) -> None:
    with runtime.sessions.begin() as session:
        house, left, right = (
            provider(session, "house"),
            provider(session, "left"),
            provider(session, "right"),
        )
        relate(session, house, left, all_children=True)
        relate(session, house, right, all_children=True)
        booking(session, left, NINE, minutes=120)  # 09:00–11:00
        booking(session, right, NINE + HOUR, minutes=120)  # 10:00–12:00
    starts = _starts(runtime, house)
    assert NINE + HOUR not in starts  # 10:00–11:00: both rooms taken
    assert NINE in starts and NINE + 2 * HOUR in starts  # one room still free
    with runtime.sessions.begin() as session:
        why = explain_slot(session, house, NINE + HOUR, HOUR, NOW)
    reason = why.reasons[0]
    assert reason.code == "busy_related" and reason.ref == "children"
    assert reason.label == "Left, Right"


def test_one_busy_child_alone_does_not_block_the_parent(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        house, left, right = (
            provider(session, "house"),
            provider(session, "left"),
            provider(session, "right"),
        )
        relate(session, house, left, all_children=True)
        relate(session, house, right, all_children=True)
        booking(session, left, NINE)
    assert NINE in _starts(runtime, house)
