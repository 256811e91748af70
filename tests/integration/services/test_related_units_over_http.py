"""Related units as a guest meets them: bookings made over the public API on one unit take
that time from the slots, the explanation and the holds of the units related to it. The
relationship row is the only thing written directly (no public surface makes one yet);
the service-level twins are test_busy.py and test_holds.py."""

from __future__ import annotations

from core.db.models import UnitRelationship, new_id
from core.runtime import Runtime
from tests.integration.api.helpers import NOW, TestClient, client_for, hold_body, make_provider

DAY = "2027-03-08"  # a Monday; Berlin is UTC+1, so 09:00 there is 08:00Z


def _relate(runtime: Runtime, parent: str, child: str, *, all_children: bool = False) -> None:
    with runtime.sessions.begin() as session:
        session.add(
            UnitRelationship(
                id=new_id("rel"), parent_id=parent, child_id=child, created_at=NOW,
                block_child_on_parent=not all_children,
                block_parent_on_all_children=all_children,
            )
        )  # fmt: skip


def _hold(client: TestClient, provider: str, start: str, end: str) -> dict[str, object]:
    answer = client.post("/api/v1/holds", json=hold_body(provider, start, end))
    return {**answer.json(), "http": answer.status_code}


def _book(client: TestClient, provider: str, start: str, end: str) -> None:
    hold = _hold(client, provider, start, end)
    assert hold["http"] == 201, hold
    confirmed = client.post(f"/api/v1/holds/{hold['id']}/confirm")
    assert confirmed.status_code == 201, confirmed.text


def _starts(client: TestClient, provider: str) -> list[str]:
    answer = client.get(
        f"/api/v1/providers/{provider}/slots",
        params={"start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:59Z", "duration": "60"},
    )
    assert answer.status_code == 200, answer.text
    return [slot["start"] for slot in answer.json()["slots"]]


def _reasons(client: TestClient, provider: str, at: str) -> list[dict[str, object]]:
    answer = client.get(
        f"/api/v1/providers/{provider}/slots/explain", params={"at": at, "duration": "60"}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["reasons"])


def test_a_guests_booking_of_the_house_closes_the_flat(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: related busy time reaching find_slots but not the HTTP slots, the explain
    # endpoint or the hold check, and a flat whose last hold was made before the
    # relationship existed still being held on the guess remembered then.
    client = client_for(runtime)
    house = make_provider(client, admin_headers, slug="house")
    flat = make_provider(client, admin_headers, slug="flat")
    earlier = _hold(client, flat, f"{DAY}T14:00:00Z", f"{DAY}T15:00:00Z")
    assert earlier["http"] == 201, earlier  # remembered: no related units
    _relate(runtime, house, flat)
    _book(client, house, f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z")
    starts = _starts(client, flat)
    assert f"{DAY}T09:00:00Z" not in starts and f"{DAY}T11:00:00Z" in starts
    reasons = _reasons(client, flat, f"{DAY}T09:00:00Z")
    assert [(r["code"], r["ref"]) for r in reasons] == [("busy_related", house)]
    taken = _hold(client, flat, f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z")
    assert taken["http"] == 409 and taken["error"]["code"] == "slot_taken", taken  # type: ignore[index]
    assert _hold(client, flat, f"{DAY}T11:00:00Z", f"{DAY}T12:00:00Z")["http"] == 201


def test_the_house_closes_only_when_every_room_is_booked(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: "all children busy" blocking over find_slots only, or blocking the parent
    # as soon as one room is taken.
    client = client_for(runtime)
    house = make_provider(client, admin_headers, slug="house")
    left = make_provider(client, admin_headers, slug="left")
    right = make_provider(client, admin_headers, slug="right")
    _relate(runtime, house, left, all_children=True)
    _relate(runtime, house, right, all_children=True)
    _book(client, left, f"{DAY}T08:00:00Z", f"{DAY}T10:00:00Z")  # 09:00–11:00 in Berlin
    _book(client, right, f"{DAY}T09:00:00Z", f"{DAY}T11:00:00Z")  # 10:00–12:00
    starts = _starts(client, house)
    assert f"{DAY}T09:00:00Z" not in starts  # both rooms taken
    assert f"{DAY}T08:00:00Z" in starts and f"{DAY}T10:00:00Z" in starts  # one room free
    reasons = _reasons(client, house, f"{DAY}T09:00:00Z")
    assert [(r["code"], r["ref"]) for r in reasons] == [("busy_related", "children")]
    taken = _hold(client, house, f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z")
    assert taken["http"] == 409, taken
    assert _hold(client, house, f"{DAY}T08:00:00Z", f"{DAY}T09:00:00Z")["http"] == 201
