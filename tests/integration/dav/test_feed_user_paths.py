"""The private ICS feed as its subscriber sees it while guests book over the public API:
a confirmed booking appears, a cancelled one leaves, holds show only in a feed made with
include_holds, and a poller holding the old ETag is never told 304 after a change. The
twin in test_api_feeds.py inserts its Booking rows itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.runtime import Runtime
from tests.integration.api.helpers import (
    Clock,
    TestClient,
    client_for,
    hold_body,
    make_provider,
)

TUE = "2027-03-02"


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _feed_path(client: TestClient, headers: dict[str, str], provider: str, holds: bool) -> str:
    made = client.post(
        f"/api/v1/providers/{provider}/feed-token", json={"include_holds": holds}, headers=headers
    )
    assert made.status_code == 201, made.text
    return _path(made.json()["url"])


def _hold(client: TestClient, provider: str, hour: int) -> dict[str, Any]:
    start, end = f"{TUE}T{hour:02}:00:00Z", f"{TUE}T{hour + 1:02}:00:00Z"
    hold = client.post("/api/v1/holds", json=hold_body(provider, start, end, guest_name="Grace"))
    assert hold.status_code == 201, hold.text
    return dict(hold.json())


def _confirm(client: TestClient, hold_id: str) -> dict[str, Any]:
    confirmed = client.post(f"/api/v1/holds/{hold_id}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    return dict(confirmed.json()["booking"])


def test_a_guests_booking_enters_the_feed_and_a_cancel_takes_it_out(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: the feed reading bookings some other way than holds/confirm writes them,
    # keeping cancelled ones, or an ETag that stays the same when the content changed
    # (a subscribed calendar would then keep showing the old feed for good).
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, lead_time_hours=0)
    path = _feed_path(client, admin_headers, provider, holds=False)
    empty = client.get(path)
    assert empty.status_code == 200 and "BEGIN:VEVENT" not in empty.text
    booking = _confirm(client, _hold(client, provider, 9)["id"])
    full = client.get(path, headers={"If-None-Match": empty.headers["etag"]})
    assert full.status_code == 200, "a new booking must not be answered 304"
    assert full.text.count("BEGIN:VEVENT") == 1 and booking["uid"] in full.text
    assert "DTSTART:20270302T090000Z" in full.text
    assert "guest@example.net" not in full.text  # the guest's address stays private
    assert client.get(path, headers={"If-None-Match": full.headers["etag"]}).status_code == 304
    cancelled = client.post(
        f"/api/v1/bookings/{booking['id']}/cancel", json={}, headers=admin_headers
    )
    assert cancelled.status_code == 200, cancelled.text
    after = client.get(path, headers={"If-None-Match": full.headers["etag"]})
    assert after.status_code == 200 and "BEGIN:VEVENT" not in after.text


def test_holds_show_only_in_a_feed_made_with_include_holds_and_leave_when_they_expire(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: include_holds stored but never read by the feed, holds leaking into a plain
    # feed, and an expired hold (expiry job not yet run) still shown as busy to subscribers.
    clock = Clock()
    client = client_for(runtime, clock)
    provider = make_provider(client, admin_headers, lead_time_hours=0)
    plain = _feed_path(client, admin_headers, provider, holds=False)
    hold = _hold(client, provider, 11)
    assert "BEGIN:VEVENT" not in client.get(plain).text
    with_holds = _feed_path(client, admin_headers, provider, holds=True)
    shown = client.get(with_holds).text
    assert shown.count("BEGIN:VEVENT") == 1 and "DTSTART:20270302T110000Z" in shown
    clock.now += timedelta(seconds=runtime.settings.hold_ttl_seconds + 1)
    assert client.get(f"/api/v1/holds/{hold['id']}").json()["status"] == "expired"
    assert "BEGIN:VEVENT" not in client.get(with_holds).text
