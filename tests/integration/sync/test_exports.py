"""Channel exports as a property manager and a channel see them (seed 003 §6).

An apartment (a unit made over the API) imports an Airbnb and a Booking.com calendar and
has one direct booking. Its exports, fetched over the API with a tenant key, carry what
each platform must block and never what came from that platform (no echo); every form
parses in icalendar and ical.js. A merged export names each unit; the whole tenant's
export is for managers. The private Airbnb feed URL is imported back by Parley, as a
channel would, and blocks the same days on the mirror unit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import icalendar
import pytest

from core.runtime import Runtime
from tests.integration.api.helpers import served
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
from tests.unit.core.test_compose import run_icaljs

NOW = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
AIRBNB_STAY = "20250603"  # three nights, imported from Airbnb
BOOKING_STAY = "20250610"  # two nights, imported from Booking.com
DIRECT = "20250620"  # a direct booking through Parley


def _key(api: TestClient, headers: dict[str, str], role: str) -> dict[str, str]:
    made = api.post("/api/v1/tenants/default/api-keys", json={"role": role}, headers=headers)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


def _starts(text: str) -> dict[str, icalendar.Event]:
    """The export's events by DTSTART day; every DTSTART and DTEND is a DATE."""
    parsed = icalendar.Calendar.from_ical(text)
    found = {}
    for event in parsed.walk("VEVENT"):
        assert type(event["DTSTART"].dt) is date and type(event["DTEND"].dt) is date
        found[event["DTSTART"].dt.strftime("%Y%m%d")] = event
    return found


@pytest.fixture
def casa(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> dict[str, Any]:
    runtime.clock = Clock(NOW)
    apartment = make_unit(api, admin_headers, "casa-azul")
    room = make_unit(api, admin_headers, "blue-room")
    linked = api.post("/api/v1/relationships", json={"parent_id": apartment, "child_id": room},
                      headers=admin_headers)  # fmt: skip
    assert linked.status_code == 201, linked.text
    feeds = {
        "airbnb": calendar(all_day("a1@airbnb.com", date(2025, 6, 3), 3, "Reserved")),
        "booking.com": calendar(all_day("b1@booking.com", date(2025, 6, 10), 2, "CLOSED")),
    }
    for platform, body in feeds.items():
        url = feed_server.put(f"/{platform}.ics", body)
        source = add_source(api, admin_headers, apartment, url, platform=platform)
        assert sync_now(api, admin_headers, source)["status"] == "ok"
    body = {"provider_id": apartment, "start": "2025-06-20T15:00:00Z",
            "end": "2025-06-20T16:00:00Z", "guest_email": "g@example.net"}  # fmt: skip
    hold = api.post("/api/v1/holds", json=body)
    assert hold.status_code == 201, hold.text
    assert api.post(f"/api/v1/holds/{hold.json()['id']}/confirm").status_code == 201
    return {"apartment": apartment, "room": room, "viewer": _key(api, admin_headers, "viewer")}


def test_each_platform_export_leaves_out_its_own_events(
    api: TestClient, casa: dict[str, Any]
) -> None:
    viewer, path = casa["viewer"], f"/api/v1/export/{casa['apartment']}/calendar.ics"
    texts = {}
    for fmt, kept, left_out in (
        ("airbnb", {BOOKING_STAY, DIRECT}, AIRBNB_STAY),
        ("vrbo", {BOOKING_STAY, DIRECT, AIRBNB_STAY}, None),
        ("booking.com", {AIRBNB_STAY, DIRECT}, BOOKING_STAY),
        ("generic", {AIRBNB_STAY, BOOKING_STAY, DIRECT}, None),
    ):
        answer = api.get(path, params={"format": fmt}, headers=viewer)
        assert answer.status_code == 200, (fmt, answer.text)
        assert answer.headers["content-type"].startswith("text/calendar")
        text = texts[fmt] = answer.text
        assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M" in text and "X-PUBLISHED-TTL:PT15M" in text
        assert "X-WR-TIMEZONE:UTC" in text
        events = _starts(text)
        assert kept <= set(events), (fmt, sorted(events))
        assert left_out not in events, fmt
        for event in events.values():
            assert str(event["SUMMARY"]) in ("Reserved", "Not available"), fmt
            if fmt in ("booking.com", "generic"):
                assert str(event["STATUS"]) in ("CONFIRMED", "TENTATIVE")
        assert str(events[DIRECT]["SUMMARY"]) == "Reserved"
        assert "g@example.net" not in text  # no guest address leaves Parley
        again = api.get(path, params={"format": fmt},
                        headers={**viewer, "If-None-Match": answer.headers["etag"]})  # fmt: skip
        assert again.status_code == 304
    parsed = run_icaljs(list(texts.values()))
    assert [len(p["events"]) for p in parsed] == [  # type: ignore[arg-type]
        len(_starts(t)) for t in texts.values()
    ]


def test_merged_and_whole_tenant_exports(
    api: TestClient, admin_headers: dict[str, str], casa: dict[str, Any]
) -> None:
    viewer = casa["viewer"]
    ids = f"{casa['apartment']},{casa['room']}"
    merged = api.get("/api/v1/export/multi", params={"ids": ids}, headers=viewer)
    assert merged.status_code == 200, merged.text
    parsed = icalendar.Calendar.from_ical(merged.text)
    by_unit: dict[str, set[str]] = {}
    for event in parsed.walk("VEVENT"):
        unit = str(event["LOCATION"])
        assert str(event["SUMMARY"]).startswith(f"{unit}: ")
        by_unit.setdefault(unit, set()).add(event["DTSTART"].dt.strftime("%Y%m%d"))
    # The room has nothing of its own, but the apartment's days block its listing.
    assert by_unit == {"Casa Azul": {AIRBNB_STAY, BOOKING_STAY, DIRECT},
                       "Blue Room": {AIRBNB_STAY, BOOKING_STAY, DIRECT}}  # fmt: skip

    assert api.get("/api/v1/export/all", headers=viewer).status_code == 403
    manager = _key(api, admin_headers, "manager")
    everything = api.get("/api/v1/export/all", params={"format": "airbnb"}, headers=manager)
    assert everything.status_code == 200, everything.text
    days: dict[str, set[str]] = {}
    for event in icalendar.Calendar.from_ical(everything.text).walk("VEVENT"):
        days.setdefault(str(event["LOCATION"]), set()).add(event["DTSTART"].dt.strftime("%Y%m%d"))
    # The apartment's own Airbnb stay is not echoed to its listing; the room's Airbnb
    # listing is another calendar there and must block the apartment's stay.
    assert days == {"Casa Azul": {BOOKING_STAY, DIRECT},
                    "Blue Room": {AIRBNB_STAY, BOOKING_STAY, DIRECT}}  # fmt: skip

    for params, status in (({"ids": ""}, 400), ({"ids": "prv_nope"}, 404),
                           ({"ids": ids, "format": "ical"}, 400)):  # fmt: skip
        answer = api.get("/api/v1/export/multi", params=params, headers=viewer)
        assert answer.status_code == status, (params, answer.text)
    assert api.get(f"/api/v1/export/{casa['apartment']}/calendar.ics").status_code == 401


def test_a_channel_imports_the_export_and_blocks_the_same_days(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], casa: dict[str, Any]
) -> None:
    made = api.post(f"/api/v1/providers/{casa['apartment']}/feed-token",
                    json={"format": "airbnb"}, headers=admin_headers)  # fmt: skip
    assert made.status_code == 201, made.text
    mirror = make_unit(api, admin_headers, "mirror")
    before = {s[:10] for s, _ in slots(api, mirror, "2025-06-01T00:00:00Z", "2025-06-30T00:00:00Z")}
    assert {"2025-06-10", "2025-06-11", "2025-06-20"} <= before
    with served(runtime) as base:
        url = base + "/feeds/" + made.json()["url"].split("/feeds/", 1)[1]
        source = add_source(api, admin_headers, mirror, url, platform="generic_ics")
        assert sync_now(api, admin_headers, source)["status"] == "ok"
    after = {s[:10] for s, _ in slots(api, mirror, "2025-06-01T00:00:00Z", "2025-06-30T00:00:00Z")}
    assert before - after == {"2025-06-10", "2025-06-11", "2025-06-20"}
