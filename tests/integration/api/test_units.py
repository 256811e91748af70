"""Rental units through the API, as a property manager sets them up (seed 003 §3.5).

An apartment with two rooms, and a bed in one room: created as units, linked with
relationships, and booked. A booking of the apartment takes the rooms' and the bed's
time (downwards through every level); a booking of a room leaves its sibling free.
Loops at any depth, self-links, duplicates, persons and another tenant's ids are
refused; a unit in a relationship stays a unit; removing a relationship frees the time.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.runtime import Runtime
from tests.integration.api.helpers import HOURS, TestClient, client_for, hold_body

WED = "2027-03-03"
AT_TEN = (f"{WED}T09:00:00Z", f"{WED}T11:00:00Z")  # 10:00–12:00 in Berlin


def _unit(client: TestClient, headers: dict[str, str], slug: str, kind: str = "unit") -> str:
    body = {"name": slug.replace("-", " ").title(), "email": f"{slug}@casa.example",
            "timezone": "Europe/Berlin", "slug": slug, "kind": kind}  # fmt: skip
    created = client.post("/api/v1/providers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == kind
    unit_id: str = created.json()["id"]
    hours = client.put(f"/api/v1/providers/{unit_id}/availability", json=HOURS, headers=headers)
    assert hours.status_code == 200, hours.text
    return unit_id


def _link(
    client: TestClient, headers: dict[str, str], parent: str, child: str, **flags: bool
) -> Any:
    return client.post(
        "/api/v1/relationships", json={"parent_id": parent, "child_id": child, **flags},
        headers=headers,
    )  # fmt: skip


def _free_at_ten(client: TestClient, unit: str) -> bool:
    answer = client.get(
        f"/api/v1/providers/{unit}/slots",
        params={"start": f"{WED}T00:00:00Z", "end": f"{WED}T23:00:00Z", "duration": "120"},
    )
    assert answer.status_code == 200, answer.text
    return AT_TEN[0] in [slot["start"] for slot in answer.json()["slots"]]


def _book(client: TestClient, unit: str) -> str:
    hold = client.post("/api/v1/holds", json=hold_body(unit, *AT_TEN))
    assert hold.status_code == 201, hold.text
    confirmed = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    return str(confirmed.json()["booking"]["id"])


@pytest.fixture
def casa(runtime: Runtime, admin_headers: dict[str, str]) -> dict[str, Any]:
    client = client_for(runtime)
    ids = {slug: _unit(client, admin_headers, slug)
           for slug in ("casa-azul", "room-one", "room-two", "bed-one")}  # fmt: skip
    links = {}
    for parent, child in (("casa-azul", "room-one"), ("casa-azul", "room-two"),
                          ("room-one", "bed-one")):  # fmt: skip
        made = _link(client, admin_headers, ids[parent], ids[child])
        assert made.status_code == 201, made.text
        assert made.json()["parent_name"] == parent.replace("-", " ").title()
        links[(parent, child)] = made.json()["id"]
    return {"client": client, "ids": ids, "links": links}


def test_a_booking_of_the_apartment_blocks_every_level_below(
    casa: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, ids = casa["client"], casa["ids"]
    assert all(_free_at_ten(client, unit) for unit in ids.values())
    _book(client, ids["casa-azul"])
    for slug in ("casa-azul", "room-one", "room-two", "bed-one"):
        assert not _free_at_ten(client, ids[slug]), slug
    # A held room is not double-booked by a hold either.
    taken = client.post("/api/v1/holds", json=hold_body(ids["bed-one"], *AT_TEN))
    assert taken.status_code == 409, taken.text

    # Without the room → bed link the bed is free again.
    removed = client.delete(
        f"/api/v1/relationships/{casa['links'][('room-one', 'bed-one')]}", headers=admin_headers
    )
    assert removed.status_code == 204, removed.text
    assert _free_at_ten(client, ids["bed-one"])
    assert not _free_at_ten(client, ids["room-one"])


def test_a_booking_of_one_room_leaves_its_sibling_and_parent_free(
    casa: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, ids = casa["client"], casa["ids"]
    _book(client, ids["room-one"])
    assert not _free_at_ten(client, ids["room-one"])
    assert _free_at_ten(client, ids["room-two"])
    assert _free_at_ten(client, ids["casa-azul"])  # blocks upwards only when asked to


def test_the_apartment_is_blocked_once_all_rooms_are_when_asked(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    flat, one, two = (_unit(client, admin_headers, s) for s in ("flat", "one", "two"))
    for room in (one, two):
        made = _link(client, admin_headers, flat, room, block_parent_on_all_children=True)
        assert made.status_code == 201, made.text
        assert made.json()["block_parent_on_all_children"] is True
    _book(client, one)
    assert _free_at_ten(client, flat)
    _book(client, two)
    assert not _free_at_ten(client, flat)


def test_loops_self_links_duplicates_and_persons_are_refused(
    casa: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, ids = casa["client"], casa["ids"]
    for parent, child, status, code in (
        ("bed-one", "casa-azul", 409, "relationship_refused"),  # a loop three levels up
        ("room-one", "casa-azul", 409, "relationship_refused"),
        ("room-two", "room-two", 400, "self_link"),
        ("casa-azul", "room-one", 409, "relationship_refused"),  # already there
    ):
        answer = _link(client, admin_headers, ids[parent], ids[child])
        assert answer.status_code == status, (parent, child, answer.text)
        assert answer.json()["error"]["code"] == code
    person = _unit(client, admin_headers, "ada", kind="person")
    answer = _link(client, admin_headers, ids["casa-azul"], person)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "not_a_unit"
    missing = _link(client, admin_headers, ids["casa-azul"], "prv_nope")
    assert missing.status_code == 404, missing.text
    # A bed with two parents is fine (a room shared by two apartments' listings).
    shared = _link(client, admin_headers, ids["room-two"], ids["bed-one"])
    assert shared.status_code == 201, shared.text


def test_kind_name_and_zone_change_and_the_tree_is_listed(
    casa: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, ids = casa["client"], casa["ids"]
    room = ids["room-one"]
    renamed = client.patch(
        f"/api/v1/providers/{room}", json={"name": "Blue room", "timezone": "Europe/Lisbon"},
        headers=admin_headers,
    )  # fmt: skip
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["timezone"]) == ("Blue room", "Europe/Lisbon")
    stuck = client.patch(
        f"/api/v1/providers/{room}", json={"kind": "person"}, headers=admin_headers
    )
    assert stuck.status_code == 400 and stuck.json()["error"]["code"] == "unit_in_use"
    bad = client.patch(f"/api/v1/providers/{room}", json={"kind": "boat"}, headers=admin_headers)
    assert bad.status_code == 400 or bad.status_code == 422, bad.text
    listed = client.get(f"/api/v1/providers/{room}/relationships", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    rows = listed.json()["items"]
    assert [(r["parent_name"], r["child_name"]) for r in rows] == [
        ("Casa Azul", "Blue room"),
        ("Blue room", "Bed One"),
    ]
    # A unit can now get a platform export feed (refused for every provider before).
    feed = client.post(
        f"/api/v1/providers/{ids['casa-azul']}/feed-token", json={"format": "airbnb"},
        headers=admin_headers,
    )  # fmt: skip
    assert feed.status_code == 201, feed.text
    exported = client.get("/" + feed.json()["url"].split("://", 1)[1].split("/", 1)[1])
    assert exported.status_code == 200 and "BEGIN:VCALENDAR" in exported.text


def test_another_tenants_units_are_not_found(
    casa: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, ids = casa["client"], casa["ids"]
    made = client.post(
        "/api/v1/tenants",
        json={"name": "Other", "slug": "other", "organizer_email": "cal@other.example"},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    theirs = {**admin_headers, "X-Parley-Tenant": "other"}
    villa = _unit(client, theirs, "villa")
    for parent, child in ((villa, ids["room-one"]), (ids["casa-azul"], villa)):
        for headers in (theirs, admin_headers):
            answer = _link(client, headers, parent, child)
            assert answer.status_code == 404, answer.text
    link = casa["links"][("casa-azul", "room-one")]
    assert client.delete(f"/api/v1/relationships/{link}", headers=theirs).status_code == 404
    listed = client.get(f"/api/v1/providers/{ids['casa-azul']}/relationships", headers=theirs)
    assert listed.status_code == 404
