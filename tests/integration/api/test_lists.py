"""The operator's list endpoints over HTTP: paging, filters, bad input, the retry of a mail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import Clock, client_for, hold_body, make_provider

MON = "2027-03-08"


def _book(client: Any, provider: str, hour: int, guest: str) -> str:
    body = hold_body(provider, f"{MON}T{hour:02}:00:00+01:00", f"{MON}T{hour:02}:30:00+01:00")
    hold = client.post("/api/v1/holds", json={**body, "guest_email": guest})
    assert hold.status_code == 201, hold.text
    done = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json={})
    assert done.status_code == 201, done.text
    booking_id: str = done.json()["booking"]["id"]
    return booking_id


def _all_pages(client: Any, path: str, headers: dict[str, str], **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = client.get(path, params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


@pytest.fixture
def booked(runtime: Runtime, admin_headers: dict[str, str]) -> tuple[Any, Clock, list[str], str]:
    """Five bookings made a minute apart (newest last) with two providers."""
    clock = Clock()
    client = client_for(runtime, clock)
    ada = make_provider(client, admin_headers, "ada")
    bea = make_provider(client, admin_headers, "bea")
    made = []
    for index in range(5):
        clock.now = clock.now.replace(minute=index)
        provider = ada if index % 2 == 0 else bea
        made.append(_book(client, provider, 9 + index, f"Guest{index}@Example.net"))
    return client, clock, made, bea


def test_bookings_page_newest_first_without_repeats_and_filter(
    booked: tuple[Any, Clock, list[str], str], admin_headers: dict[str, str]
) -> None:
    client, _clock, made, bea = booked
    pages = _all_pages(client, "/api/v1/bookings", admin_headers, limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [ident for page in pages for ident in page] == made[::-1]

    def ids(**params: Any) -> list[str]:
        answer = client.get("/api/v1/bookings", params=params, headers=admin_headers)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert ids(provider_id=bea) == [made[3], made[1]]
    assert ids(email="guest2@example.NET") == [made[2]]
    assert ids(email="bea@example.org") == [made[3], made[1]]  # the host's address too
    cancelled = client.post(f"/api/v1/bookings/{made[0]}/cancel", json={}, headers=admin_headers)
    assert cancelled.status_code == 200
    assert ids(status="cancelled") == [made[0]]
    assert made[0] not in ids(status="confirmed")
    # 09:00–09:30 and 10:00–10:30 Berlin are 08:00–09:30 UTC.
    assert ids(**{"from": f"{MON}T08:00:00Z", "to": f"{MON}T09:30:00Z"}) == [made[1], made[0]]
    first = client.get("/api/v1/bookings", params={"limit": 1}, headers=admin_headers).json()
    row = first["items"][0]
    assert row["guest"]["email"] == "Guest4@Example.net" and row["status"] == "confirmed"
    assert row["created_at"].endswith("Z") and row["mode"] == "instant"


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/api/v1/bookings", {"limit": "0"}, "invalid_limit"),
        ("/api/v1/bookings", {"limit": "201"}, "invalid_limit"),
        ("/api/v1/bookings", {"limit": "ten"}, "invalid_limit"),
        ("/api/v1/bookings", {"cursor": "not-a-cursor"}, "invalid_cursor"),
        ("/api/v1/bookings", {"cursor": "W10"}, "invalid_cursor"),  # base64 of "[]"
        ("/api/v1/bookings", {"status": "lost"}, "invalid_status"),
        ("/api/v1/bookings", {"from": "yesterday"}, "invalid_time"),
        ("/api/v1/sources", {"status": "sleeping"}, "invalid_status"),
        ("/api/v1/conflicts", {"status": "all"}, "invalid_status"),
        ("/api/v1/inbound-messages", {"outcome": "great"}, "invalid_outcome"),
        ("/api/v1/outbound-messages", {"status": "lost"}, "invalid_status"),
    ],
)
def test_bad_list_requests_are_400s(
    runtime: Runtime, admin_headers: dict[str, str], path: str, params: dict[str, str], code: str
) -> None:
    client = client_for(runtime)
    answer = client.get(path, params=params, headers=admin_headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code


def test_lists_need_the_admin_token(runtime: Runtime) -> None:
    client = client_for(runtime)
    for path in ("/providers", "/bookings", "/sources", "/conflicts", "/inbound-messages",
                 "/outbound-messages", "/audit"):  # fmt: skip
        answer = client.get(f"/api/v1{path}", headers={"Authorization": "Bearer wrong"})
        assert answer.status_code == 401, path
    assert client.post("/api/v1/outbound-messages/1/retry").status_code == 401


def test_providers_outbox_audit_and_a_retry(
    runtime: Runtime, booked: tuple[Any, Clock, list[str], str], admin_headers: dict[str, str]
) -> None:
    client, _clock, made, _bea = booked
    providers = client.get("/api/v1/providers", headers=admin_headers).json()["items"]
    assert sorted(p["slug"] for p in providers) == ["ada", "bea"]  # made at the same instant
    assert {p["kind"] for p in providers} == {"person"}
    assert {p["booking_url"].rsplit("/", 1)[1] for p in providers} == {"ada", "bea"}

    outbox = client.get("/api/v1/outbound-messages", headers=admin_headers).json()["items"]
    assert len(outbox) == 10 and {m["status"] for m in outbox} == {"pending"}
    mine = [m for m in outbox if m["booking_id"] == made[4]]
    assert {m["recipient"].lower() for m in mine} == {"ada@example.org", "guest4@example.net"}
    assert all(m["method"] == "REQUEST" and m["subject"] for m in mine)

    target = mine[0]["id"]
    with runtime.sessions.begin() as session:  # the relay refused it until Parley gave up
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == target)
            .values(status="failed", attempts=7, last_error="550 5.1.1 no such user")
        )
    failed = client.get("/api/v1/outbound-messages", params={"status": "failed"},
                        headers=admin_headers).json()["items"]  # fmt: skip
    assert [(m["id"], m["last_error"]) for m in failed] == [(target, "550 5.1.1 no such user")]
    retried = client.post(f"/api/v1/outbound-messages/{target}/retry", headers=admin_headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    again = client.post(f"/api/v1/outbound-messages/{target}/retry", headers=admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_retryable"
    missing = client.post("/api/v1/outbound-messages/999999/retry", headers=admin_headers)
    assert missing.status_code == 404
    assert (
        client.post("/api/v1/outbound-messages/x/retry", headers=admin_headers).status_code == 400
    )

    cancel = client.post(f"/api/v1/bookings/{made[4]}/cancel", json={}, headers=admin_headers)
    assert cancel.status_code == 200
    audit = client.get("/api/v1/audit", params={"booking_id": made[4]}, headers=admin_headers)
    actions = [entry["action"] for entry in audit.json()["items"]]
    assert actions == ["booking.cancelled", "booking.confirmed"]
