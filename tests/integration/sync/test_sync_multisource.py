"""MUVA scenarios: one unit fed by several OTAs (dedup, conflicts), parent/child units."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from core.db.models import Conflict, ExternalEvent, UnitRelationship, new_id
from core.runtime import Runtime
from tests.conftest import DATA
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_unit,
    slots,
    sync_now,
)
from tests.integration.sync.feeds import all_day, calendar

NOW = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
FEEDS = DATA / "feeds"


def _import(
    api: TestClient, headers: dict[str, str], server: FeedServer, unit: str, path: str, body: bytes
) -> str:
    source = add_source(api, headers, unit, server.put(path, body))
    result = sync_now(api, headers, source)
    assert result["status"] == "ok", result
    return source


def _check_in_days(api: TestClient, unit: str) -> set[str]:
    """Days in June 2025 whose 15:00 check-in hour is still offered."""
    found = slots(api, unit, "2025-06-01T00:00:00Z", "2025-07-01T00:00:00Z")
    return {start[:10] for start, _ in found}


def test_same_reservation_from_two_sources_is_merged_once(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    unit = make_unit(api, admin_headers, "sunset-villa")
    airbnb = _import(api, admin_headers, feed_server, unit, "/a.ics",
                     (FEEDS / "airbnb.ics").read_bytes())  # fmt: skip
    moto = _import(api, admin_headers, feed_server, unit, "/m.ics",
                   (FEEDS / "motopress.ics").read_bytes())  # fmt: skip
    with runtime.sessions() as session:
        rows = list(session.scalars(select(ExternalEvent).where(
            ExternalEvent.reservation_code == "HMABCD1234")))  # fmt: skip
        by_source = {r.source_id: r for r in rows}
        # MotoPress (priority 2) outranks Airbnb (3): the Airbnb copy points at it.
        assert by_source[airbnb].merged_into_id == by_source[moto].id
        assert by_source[moto].merged_into_id is None
        assert by_source[airbnb].phone_last4 == "2833"
        assert session.scalars(select(Conflict)).first() is None
    assert "2025-06-04" not in _check_in_days(api, unit)
    # Deleting the winning source lets the remaining copy stand on its own again.
    assert api.delete(f"/api/v1/sources/{moto}", headers=admin_headers).status_code == 204
    assert "2025-06-04" not in _check_in_days(api, unit)


def test_conflicts_are_settled_by_the_priority_rules_and_recorded(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    unit = make_unit(api, admin_headers, "casa")
    _import(api, admin_headers, feed_server, unit, "/airbnb.ics",
            (FEEDS / "airbnb.ics").read_bytes())  # fmt: skip
    booking = calendar(
        all_day("b1@booking.com", date(2025, 6, 9), 3, "Guest stay"),  # inside Airbnb's block
        all_day("b2@booking.com", date(2025, 6, 19), 3, "Guest stay"),  # turnover with HMZZXY9876
        prodid="-//Booking.com//Calendar//EN",
    )
    _import(api, admin_headers, feed_server, unit, "/booking.ics", booking.encode())
    with runtime.sessions() as session:
        ids = {e.id: e.uid for e in session.scalars(select(ExternalEvent))}
        found = {(c.conflict_type, ids[c.winner_id] if c.winner_id else None, c.resolved_by,
                  c.warning) for c in session.scalars(select(Conflict))}  # fmt: skip
    turnover = ("time_boundary", None, "rule:turnover", "same-day checkout and check-in overlap")
    assert found == {
        ("reservation_vs_block", "b1@booking.com", "rule:reservation_over_block", None),
        turnover,
    }
    assert not {d for d in ("2025-06-09", "2025-06-10", "2025-06-19") if d in _check_in_days(
        api, unit)}  # fmt: skip


def test_same_day_turnover_is_allowed_with_a_warning(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    unit = make_unit(api, admin_headers, "loft")
    first = calendar(
        "BEGIN:VEVENT\r\nUID:r1@vrbo.com\r\nDTSTAMP:20250601T000000Z\r\n"
        "DTSTART:20250610T150000Z\r\nDTEND:20250613T110000Z\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\n",
        prodid="-//HomeAway.com//EN",
    )
    second = calendar(
        "BEGIN:VEVENT\r\nUID:r2@booking.com\r\nDTSTAMP:20250601T000000Z\r\n"
        "DTSTART:20250612T150000Z\r\nDTEND:20250615T110000Z\r\nSUMMARY:Stay\r\nEND:VEVENT\r\n",
        prodid="-//Booking.com//Calendar//EN",
    )
    _import(api, admin_headers, feed_server, unit, "/vrbo.ics", first.encode())
    _import(api, admin_headers, feed_server, unit, "/booking.ics", second.encode())
    with runtime.sessions() as session:
        conflicts = list(session.scalars(select(Conflict)))
    assert [(c.conflict_type, c.resolution, c.winner_id) for c in conflicts] == [
        ("time_boundary", "allow", None)
    ]
    assert "same-day" in (conflicts[0].warning or "")
    assert conflicts[0].resolved_at is not None


def _relate(runtime: Runtime, parent: str, child: str, *, all_children: bool = False) -> None:
    with runtime.sessions.begin() as session:
        session.add(UnitRelationship(
            id=new_id("rel"), parent_id=parent, child_id=child, block_child_on_parent=True,
            block_parent_on_all_children=all_children, created_at=NOW,
        ))  # fmt: skip


def test_a_parent_reservation_blocks_its_children(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    villa, room = make_unit(api, admin_headers, "villa"), make_unit(api, admin_headers, "kaya")
    _relate(runtime, villa, room)
    assert "2025-06-04" in _check_in_days(api, room)
    _import(api, admin_headers, feed_server, villa, "/villa.ics",
            (FEEDS / "airbnb.ics").read_bytes())  # fmt: skip
    days = _check_in_days(api, room)
    assert "2025-06-04" not in days and "2025-06-08" in days


def test_all_children_booked_block_the_parent_when_configured(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    villa = make_unit(api, admin_headers, "villa2")
    rooms = [make_unit(api, admin_headers, f"room{i}") for i in (1, 2)]
    for room in rooms:
        _relate(runtime, villa, room, all_children=True)
    stays = [(date(2025, 6, 10), 4), (date(2025, 6, 12), 4)]  # both booked on 12 and 13 June
    for room, (first, nights) in zip(rooms, stays, strict=True):
        body = calendar(all_day(f"{room}@x", first, nights, "Reserved"))
        _import(api, admin_headers, feed_server, room, f"/{room}.ics", body.encode())
    days = _check_in_days(api, villa)
    assert {"2025-06-12", "2025-06-13"}.isdisjoint(days)
    assert {"2025-06-10", "2025-06-11", "2025-06-14", "2025-06-15"} <= days
