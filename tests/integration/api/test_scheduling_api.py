"""The scheduling API end to end over HTTP (TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from core.db.models import AuditEntry, Invitation
from core.runtime import Runtime
from tests.integration.api.helpers import Clock, client_for, hold_body, make_provider

MON = "2027-03-08"


def test_create_provider_and_duplicate_slug(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    body = {"name": "Ada", "email": "ada@example.org", "timezone": "Europe/Berlin", "slug": "ada"}
    first = client.post("/api/v1/providers", json=body, headers=admin_headers)
    assert first.status_code == 201
    assert first.json()["slug"] == "ada" and first.json()["dav_username"] == "ada"
    again = client.post("/api/v1/providers", json=body, headers=admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "slug_taken"
    assert client.post("/api/v1/providers", json=body).status_code == 401
    got = client.get(f"/api/v1/providers/{first.json()['id']}", headers=admin_headers)
    assert got.json()["email"] == "ada@example.org"


def test_availability_round_trip_and_audit(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client = client_for(runtime)
    provider = make_provider(
        client,
        admin_headers,
        exceptions=[
            {"date": "2027-03-10", "kind": "unavailable"},
            {"date": "2027-03-13", "kind": "available", "start": "10:00", "end": "12:00"},
            {"date": "2027-03-11", "kind": "unavailable", "start": "12:00", "end": "13:00"},
        ],
        vacations=[{"from": "2027-08-01", "to": "2027-08-14"}],
    )
    got = client.get(f"/api/v1/providers/{provider}/availability", headers=admin_headers).json()
    assert got["timezone"] == "Europe/Berlin"
    assert len(got["weekly"]) == 5 and got["weekly"][0] == {
        "days": ["mon"],
        "start": "09:00",
        "end": "17:00",
    }
    assert {"date": "2027-03-13", "kind": "available", "start": "10:00", "end": "12:00"} in got[
        "exceptions"
    ]
    assert got["vacations"] == [{"from": "2027-08-01", "to": "2027-08-14"}]
    with runtime.sessions() as session:
        audits = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.subject_id == provider)
        )
    assert audits == 1


def test_slots_for_a_weekday_in_utc(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    answer = client.get(
        f"/api/v1/providers/{provider}/slots",
        params={"start": f"{MON}T00:00:00Z", "end": f"{MON}T23:59:59Z", "duration": "30"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["timezone"] == "Europe/Berlin"
    assert len(body["slots"]) == 16
    assert body["slots"][0] == {"start": f"{MON}T08:00:00Z", "end": f"{MON}T08:30:00Z"}
    assert body["slots"][-1]["end"] == f"{MON}T16:00:00Z"


def test_unescaped_plus_offset_in_query_is_understood(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    query = f"start={MON}T09:00:00+01:00&end={MON}T10:00:00+01:00&duration=30"
    url = f"/api/v1/providers/{provider}/slots?{query}"
    assert [s["start"] for s in client.get(url).json()["slots"]] == [
        f"{MON}T08:00:00Z",
        f"{MON}T08:30:00Z",
    ]


def test_hold_blocks_idempotent_and_overlap_is_slot_taken(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    body = hold_body(provider, f"{MON}T09:00:00Z", f"{MON}T10:00:00Z", idempotency_key="k1")
    first = client.post("/api/v1/holds", json=body)
    assert first.status_code == 201 and first.json()["status"] == "active"
    replay = client.post("/api/v1/holds", json=body)
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
    other = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{MON}T09:30:00Z", f"{MON}T10:30:00Z")
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "slot_taken"
    mismatch = client.post(
        "/api/v1/holds", json={**body, "start": f"{MON}T12:00:00Z", "end": f"{MON}T13:00:00Z"}
    )
    assert (
        mismatch.status_code == 409 and mismatch.json()["error"]["code"] == "idempotency_mismatch"
    )
    slots = _slot_starts(client, provider)
    assert f"{MON}T09:00:00Z" not in slots and f"{MON}T09:30:00Z" not in slots
    explained = client.get(
        f"/api/v1/providers/{provider}/slots/explain",
        params={"at": f"{MON}T09:30:00Z", "duration": "30"},
    ).json()
    assert explained["bookable"] is False
    assert (
        explained["reasons"][0]["code"] == "busy_hold"
        and explained["reasons"][0]["ref"] == first.json()["id"]
    )


def test_expired_hold_stops_blocking_at_read_time(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    clock = Clock()
    client = client_for(runtime, clock)
    provider = make_provider(client, admin_headers)
    hold = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{MON}T09:00:00Z", f"{MON}T09:30:00Z")
    ).json()
    clock.now += timedelta(seconds=runtime.settings.hold_ttl_seconds + 1)
    assert f"{MON}T09:00:00Z" in _slot_starts(client, provider)
    assert client.get(f"/api/v1/holds/{hold['id']}").json()["status"] == "expired"
    late = client.post(f"/api/v1/holds/{hold['id']}/confirm")
    assert late.status_code == 409 and late.json()["error"]["code"] == "hold_expired"
    again = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{MON}T09:00:00Z", f"{MON}T09:30:00Z")
    )
    assert again.status_code == 201


def test_confirm_reschedule_candidates_and_cancel(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    hold = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{MON}T09:00:00Z", f"{MON}T10:00:00Z")
    ).json()
    confirmed = client.post(f"/api/v1/holds/{hold['id']}/confirm", json={"guest_name": "Grace"})
    assert confirmed.status_code == 201
    booking = confirmed.json()["booking"]
    assert booking["status"] == "confirmed" and booking["sequence"] == 0
    assert booking["host"] == {
        "email": "ada@example.org",
        "name": "Ada Host",
        "partstat": "accepted",
    }
    assert booking["guest"]["email"] == "guest@example.net" and booking["guest"]["name"] == "Grace"
    assert (
        client.post(f"/api/v1/holds/{hold['id']}/confirm").json()["booking"]["id"] == booking["id"]
    )
    with runtime.sessions() as session:
        tags = session.scalars(
            select(Invitation.plus_tag).where(Invitation.booking_id == booking["id"])
        ).all()
    assert len(set(tags)) == 2
    assert f"{MON}T09:00:00Z" not in _slot_starts(client, provider)

    candidates = client.get(
        f"/api/v1/bookings/{booking['id']}/reschedule-candidates",
        params={"start": f"{MON}T00:00:00Z", "end": f"{MON}T23:00:00Z"},
        headers=admin_headers,
    ).json()["slots"]
    starts = [c["start"] for c in candidates]
    assert f"{MON}T09:00:00Z" not in starts and f"{MON}T09:30:00Z" in starts  # overlaps only itself
    assert all(_minutes(c) == 60 for c in candidates)

    moved = client.post(
        f"/api/v1/bookings/{booking['id']}/reschedule",
        json={"start": f"{MON}T13:00:00Z", "end": f"{MON}T14:00:00Z"},
        headers=admin_headers,
    ).json()
    assert (
        moved["uid"] == booking["uid"]
        and moved["sequence"] == 1
        and moved["start"] == f"{MON}T13:00:00Z"
    )
    assert f"{MON}T09:00:00Z" in _slot_starts(client, provider)

    cancelled = client.post(
        f"/api/v1/bookings/{booking['id']}/cancel", headers=admin_headers
    ).json()
    assert cancelled["status"] == "cancelled" and cancelled["sequence"] == 2
    assert f"{MON}T13:00:00Z" in _slot_starts(client, provider)
    fetched = client.get(f"/api/v1/bookings/{booking['id']}", headers=admin_headers).json()
    assert set(fetched) >= {"id", "uid", "sequence", "status", "start", "end", "host", "guest"}


def test_reschedule_onto_another_booking_is_slot_taken(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    first = _book(client, provider, f"{MON}T09:00:00Z", f"{MON}T10:00:00Z")
    _book(client, provider, f"{MON}T11:00:00Z", f"{MON}T12:00:00Z")
    clash = client.post(
        f"/api/v1/bookings/{first['id']}/reschedule",
        json={"start": f"{MON}T11:30:00Z", "end": f"{MON}T12:30:00Z"},
        headers=admin_headers,
    )
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "slot_taken"
    outside = client.post(
        f"/api/v1/bookings/{first['id']}/reschedule",
        json={"start": f"{MON}T20:00:00Z", "end": f"{MON}T21:00:00Z"},
        headers=admin_headers,
    )
    assert outside.status_code == 422 and outside.json()["error"]["code"] == "slot_unavailable"


def test_request_to_book_blocks_until_approved_or_declined(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, instant_book=False)
    requested = _book(client, provider, f"{MON}T09:00:00Z", f"{MON}T10:00:00Z")
    assert requested["status"] == "requested" and requested["host"]["partstat"] == "needs-action"
    assert f"{MON}T09:00:00Z" not in _slot_starts(client, provider)
    approved = client.post(
        f"/api/v1/bookings/{requested['id']}/approve", headers=admin_headers
    ).json()
    assert approved["status"] == "confirmed" and approved["host"]["partstat"] == "accepted"
    twice = client.post(f"/api/v1/bookings/{requested['id']}/approve", headers=admin_headers)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "invalid_state"

    other = _book(client, provider, f"{MON}T11:00:00Z", f"{MON}T12:00:00Z")
    declined = client.post(f"/api/v1/bookings/{other['id']}/decline", headers=admin_headers).json()
    assert declined["status"] == "cancelled" and declined["host"]["partstat"] == "declined"
    assert f"{MON}T11:00:00Z" in _slot_starts(client, provider)


def test_public_endpoints_are_rate_limited(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    runtime.settings = runtime.settings.model_copy(update={"public_rate_limit_per_minute": 3})
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    params = {"start": f"{MON}T00:00:00Z", "end": f"{MON}T23:00:00Z", "duration": "30"}
    codes = [
        client.get(f"/api/v1/providers/{provider}/slots", params=params).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    limited = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{MON}T09:00:00Z", f"{MON}T10:00:00Z")
    )
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert client.get(f"/api/v1/providers/{provider}", headers=admin_headers).status_code == 200


def test_openapi_lists_the_scheduling_routes(runtime: Runtime) -> None:
    paths = client_for(runtime).get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/providers",
        "/api/v1/holds",
        "/api/v1/holds/{hold_id}/confirm",
        "/api/v1/bookings/{booking_id}/reschedule",
    ):
        assert path in paths


def _book(client: Any, provider: str, start: str, end: str) -> dict[str, Any]:
    hold = client.post("/api/v1/holds", json=hold_body(provider, start, end))
    assert hold.status_code == 201, hold.text
    booking: dict[str, Any] = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm").json()[
        "booking"
    ]
    return booking


def _slot_starts(client: Any, provider: str) -> list[str]:
    params = {"start": f"{MON}T00:00:00Z", "end": f"{MON}T23:00:00Z", "duration": "30"}
    return [
        s["start"]
        for s in client.get(f"/api/v1/providers/{provider}/slots", params=params).json()["slots"]
    ]


def _minutes(slot: dict[str, str]) -> int:
    from datetime import datetime

    return int(
        (
            datetime.fromisoformat(slot["end"]) - datetime.fromisoformat(slot["start"])
        ).total_seconds()
        // 60
    )


def test_failed_public_calls_count_against_the_limit(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"public_rate_limit_per_minute": 2})
    client = client_for(runtime)
    codes = [client.post("/api/v1/holds", content=b"{not json").status_code for _ in range(3)]
    assert codes == [400, 400, 429]
