"""The sources and conflicts lists over HTTP, after real imports from a loopback feed server."""

from __future__ import annotations

from datetime import UTC, date, datetime

from core.runtime import Runtime
from tests.conftest import DATA
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
    sync_now,
)
from tests.integration.sync.feeds import all_day, calendar

NOW = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)


def test_conflicts_and_sources_are_listed_with_both_sides(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    unit = make_provider(api, admin_headers, "casa", timezone="UTC")
    airbnb_feed = (DATA / "feeds" / "airbnb.ics").read_bytes()
    airbnb = add_source(api, admin_headers, unit, feed_server.put("/a.ics", airbnb_feed))
    body = calendar(
        all_day("b1@booking.com", date(2025, 6, 9), 3, "Guest stay"),
        prodid="-//Booking.com//Calendar//EN",
    )
    booking = add_source(api, admin_headers, unit, feed_server.put("/b.ics", body))
    broken = add_source(api, admin_headers, unit, feed_server.put("/x.ics", "nope", status=500))
    for source in (airbnb, booking, broken):
        sync_now(api, admin_headers, source)

    listed = api.get("/api/v1/sources", headers=admin_headers).json()["items"]
    assert {s["id"] for s in listed} == {airbnb, booking, broken}
    errors = api.get("/api/v1/sources", params={"status": "error"}, headers=admin_headers)
    assert [s["id"] for s in errors.json()["items"]] == [broken]
    assert errors.json()["items"][0]["last_error"]

    conflicts = api.get("/api/v1/conflicts", headers=admin_headers).json()["items"]
    (found,) = conflicts
    assert found["provider_id"] == unit and found["type"] == "reservation_vs_block"
    sides = {found["first"]["platform"], found["second"]["platform"]}
    assert sides == {"airbnb", "booking.com"}
    assert "2025-06-09" <= found["overlap_start"] < found["overlap_end"] <= "2025-06-12T00:00:00Z"
    resolved = api.get("/api/v1/conflicts", params={"status": "resolved"}, headers=admin_headers)
    opened = api.get("/api/v1/conflicts", params={"status": "open"}, headers=admin_headers)
    both = [c["id"] for c in resolved.json()["items"] + opened.json()["items"]]
    assert both == [found["id"]]
    assert found["status"] == ("open" if opened.json()["items"] else "resolved")
