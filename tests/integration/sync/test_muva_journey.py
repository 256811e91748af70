"""The vacation-rental half end to end, as a property manager runs it over the API.

An apartment is let whole on Airbnb and Booking.com; it has two rooms, and one room two
beds, each a unit of its own (three levels of units, linked over the API). Calendars are
imported on the apartment and on a bed, synced with "sync now". Then: the apartment's
stays take every room and bed below it; a Booking.com block that an Airbnb stay cuts in
two is stored as its remaining parts, which stay busy and are named in the conflict's
sentence; each bed's export to a platform carries the apartment's days and never the
bed's own events from that platform.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import icalendar

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


def _link(api: TestClient, headers: dict[str, str], parent: str, child: str) -> None:
    body = {"parent_id": parent, "child_id": child}
    linked = api.post("/api/v1/relationships", json=body, headers=headers)
    assert linked.status_code == 201, linked.text


def _free(api: TestClient, unit: str, day: int) -> bool:
    found = slots(api, unit, f"2025-06-{day:02d}T00:00:00Z", f"2025-06-{day + 1:02d}T00:00:00Z")
    return found == [(f"2025-06-{day:02d}T15:00:00Z", f"2025-06-{day:02d}T16:00:00Z")]


def _export_days(api: TestClient, headers: dict[str, str], unit: str, fmt: str) -> set[str]:
    answer = api.get(f"/api/v1/export/{unit}/calendar.ics", params={"format": fmt},
                     headers=headers)  # fmt: skip
    assert answer.status_code == 200, answer.text
    days = set()
    for event in icalendar.Calendar.from_ical(answer.text).walk("VEVENT"):
        first, end = event["DTSTART"].dt, event["DTEND"].dt
        days |= {date.fromordinal(n).isoformat() for n in range(first.toordinal(), end.toordinal())}
    return days


def test_an_apartment_its_rooms_and_beds_share_calendars_exports_and_conflicts(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    casa = make_unit(api, admin_headers, "casa-azul", "Casa Azul")
    north, south = (
        make_unit(api, admin_headers, "north-room", "North Room"),
        make_unit(api, admin_headers, "south-room", "South Room"),
    )
    bed_1, bed_2 = (
        make_unit(api, admin_headers, "bed-one", "Bed One"),
        make_unit(api, admin_headers, "bed-two", "Bed Two"),
    )
    for parent, child in ((casa, north), (casa, south), (north, bed_1), (north, bed_2)):
        _link(api, admin_headers, parent, child)

    # Airbnb (the apartment): HMABCD1234 3–7 June, a block 10–12, HMZZXY9876 15–20 June.
    airbnb = (DATA / "feeds" / "airbnb.ics").read_bytes()
    # Booking.com (the apartment): closed 13–22 June, across the Airbnb stay of 15–20.
    closed = calendar(all_day("c1@booking.com", date(2025, 6, 13), 9, "CLOSED - Not available"),
                      prodid="-//Booking.com//Calendar//EN")  # fmt: skip
    # VRBO (bed one only): a stay 25–27 June.
    vrbo = calendar(all_day("v1@vrbo.com", date(2025, 6, 25), 2, "Reserved - Ana"),
                    prodid="-//HomeAway.com, Inc.//EN")  # fmt: skip
    for unit, path, body, platform in (
        (casa, "/airbnb.ics", airbnb, "airbnb"),
        (casa, "/booking.ics", closed, "booking.com"),
        (bed_1, "/vrbo.ics", vrbo, "vrbo"),
    ):
        source = add_source(api, admin_headers, unit, feed_server.put(path, body),
                            platform=platform)  # fmt: skip
        assert sync_now(api, admin_headers, source)["status"] == "ok"

    # The apartment's stays and blocks take every level below it; a bed's stay takes
    # neither its sibling nor the room or apartment above it.
    for unit in (casa, north, south, bed_1, bed_2):
        assert not _free(api, unit, 4) and not _free(api, unit, 11)
        assert not _free(api, unit, 14) and not _free(api, unit, 21)  # the split block
        assert _free(api, unit, 8) and _free(api, unit, 22)
    assert not _free(api, bed_1, 25)
    assert _free(api, bed_2, 25) and _free(api, north, 25) and _free(api, casa, 25)

    # The split block: the Airbnb stay is kept, the block stands on both sides of it.
    listed = api.get("/api/v1/conflicts", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    (conflict,) = listed.json()["items"]
    assert conflict["type"] == "reservation_vs_block" and conflict["unit"] == "Casa Azul"
    assert conflict["remaining"] == [
        {"start": "2025-06-13T00:00:00Z", "end": "2025-06-15T00:00:00Z"},
        {"start": "2025-06-20T00:00:00Z", "end": "2025-06-22T00:00:00Z"},
    ]
    sentence = conflict["description"]
    assert sentence.startswith("Airbnb reservation HMZZ… and Booking.com block overlap on "
                               "15–19 June at Casa Azul; Airbnb kept"), sentence  # fmt: skip
    assert sentence.endswith("; the rest of the Booking.com block stands on 13–14 June and "
                             "20–21 June."), sentence  # fmt: skip

    # Exports: each bed's listing blocks the apartment's days on every platform; bed one's
    # VRBO stay goes to its other listings, never back to VRBO.
    apartment = {"2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06", "2025-06-10",
                 "2025-06-11", *(f"2025-06-{d}" for d in range(13, 22))}  # fmt: skip
    stay = {"2025-06-25", "2025-06-26"}
    for fmt in ("airbnb", "booking.com", "vrbo"):
        bed_two = _export_days(api, admin_headers, bed_2, fmt)
        assert apartment <= bed_two and not stay & bed_two, fmt
        bed_one = _export_days(api, admin_headers, bed_1, fmt)
        assert apartment <= bed_one, fmt
        assert (stay & bed_one) == (set() if fmt == "vrbo" else stay), fmt
    # The apartment's own Airbnb stays do not echo back to its Airbnb listing.
    assert "2025-06-04" not in _export_days(api, admin_headers, casa, "airbnb")
    assert "2025-06-04" in _export_days(api, admin_headers, casa, "booking.com")
