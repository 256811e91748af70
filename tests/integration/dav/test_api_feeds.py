"""App-password, feed-token and calendar API; the private ICS feed with ETag and 304."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db.models import ExternalEvent, ExternalSource, Provider, new_id
from core.runtime import Runtime
from tests.integration.dav.conftest import NOW, add_booking, add_provider
from web.app import create_app

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; plain httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SOON = datetime(2030, 3, 10, 10, tzinfo=UTC)


def _client(runtime: Runtime) -> TestClient:
    runtime.clock = lambda: NOW
    return TestClient(create_app(runtime.settings, runtime=runtime))


def test_app_passwords_shown_once_listed_and_revoked(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    alice = add_provider(runtime, "alice")
    client = _client(runtime)
    base = f"/api/v1/providers/{alice.provider_id}/app-passwords"
    assert client.post(base, json={}).status_code == 401
    created = client.post(base, json={"label": "phone"}, headers=admin_headers)
    assert created.status_code == 201
    body = created.json()
    assert body["username"] == "alice" and len(body["password"]) >= 32
    listed = client.get(base, headers=admin_headers).json()["app_passwords"]
    assert {p["id"] for p in listed} == {alice.password_id, body["id"]}
    assert body["password"] not in str(listed)
    revoked = client.delete(f"{base}/{body['id']}", headers=admin_headers)
    assert revoked.status_code == 200
    listed = client.get(base, headers=admin_headers).json()["app_passwords"]
    assert [p["revoked_at"] is not None for p in listed if p["id"] == body["id"]] == [True]
    missing = client.post(
        "/api/v1/providers/prv_nope/app-passwords", json={}, headers=admin_headers
    )
    assert missing.status_code == 404


def test_feed_etag_304_and_regeneration(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    alice = add_provider(runtime, "alice")
    add_booking(runtime, alice.provider_id, SOON)
    add_booking(runtime, alice.provider_id, SOON + timedelta(days=1), status="requested")
    client = _client(runtime)
    url = f"/api/v1/providers/{alice.provider_id}/feed-token"
    first = client.post(url, json={"include_holds": False}, headers=admin_headers).json()["url"]
    path = first.split("://", 1)[1].split("/", 1)[1]
    token = path.removeprefix("feeds/").removesuffix(".ics")
    assert len(token) >= 43  # 256 bits of base64url
    feed = client.get(f"/{path}")
    assert feed.status_code == 200 and feed.headers["cache-control"].endswith("max-age=60")
    assert feed.text.count("BEGIN:VEVENT") == 1  # confirmed only
    assert "Ada Guest" in feed.text and "ada.secret@guest.example" not in feed.text
    again = client.get(f"/{path}", headers={"If-None-Match": feed.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == feed.headers["etag"]
    second = client.post(url, json={"include_holds": True}, headers=admin_headers).json()["url"]
    assert client.get(f"/{path}").status_code == 404
    assert client.get("/" + second.split("://", 1)[1].split("/", 1)[1]).status_code == 200


def test_platform_export_for_units(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    flat = add_provider(runtime, "flat")
    with runtime.sessions.begin() as session:
        provider = session.get(Provider, flat.provider_id)
        assert provider is not None
        provider.kind = "unit"
        for platform, day in (("airbnb", 20), ("booking.com", 25)):
            source = ExternalSource(
                id=new_id("src"),
                provider_id=flat.provider_id,
                url=f"https://{platform}/x.ics",
                kind="ics",
                platform=platform,
                next_poll_at=NOW,
                created_at=NOW,
            )
            session.add(source)
            session.flush()
            session.add(_external(source.id, flat.provider_id, platform, day))
    add_booking(runtime, flat.provider_id, datetime(2030, 3, 12, 14, tzinfo=UTC), minutes=2 * 1440)
    client = _client(runtime)
    url = f"/api/v1/providers/{flat.provider_id}/feed-token"
    made = client.post(url, json={"format": "airbnb"}, headers=admin_headers)
    assert made.status_code == 201
    feed = client.get("/" + made.json()["url"].split("://", 1)[1].split("/", 1)[1]).text
    assert "DTSTART;VALUE=DATE:20300312" in feed and "DTEND;VALUE=DATE:20300314" in feed
    assert "SUMMARY:Reserved" in feed and "Ada" not in feed
    assert "20300325" in feed  # Booking.com's reservation is exported to Airbnb…
    assert "20300320" not in feed  # …but Airbnb's own is never echoed back
    person = add_provider(runtime, "person")
    refused = client.post(
        f"/api/v1/providers/{person.provider_id}/feed-token",
        json={"format": "airbnb"},
        headers=admin_headers,
    )
    assert refused.status_code == 400


def _external(source_id: str, provider_id: str, platform: str, day: int) -> Any:
    start = datetime(2030, 3, day, 15, tzinfo=UTC)
    return ExternalEvent(
        source_id=source_id,
        provider_id=provider_id,
        uid=f"{platform}-{day}",
        start_at=start,
        end_at=start + timedelta(days=2),
        kind="reservation",
        content_hash="x",
        first_seen_at=NOW,
        last_seen_at=NOW,
    )


def test_blocking_flag_over_the_api(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    alice = add_provider(runtime, "alice")
    client = _client(runtime)
    with runtime.sessions.begin() as session:
        from core.services import dav

        provider = session.get(Provider, alice.provider_id)
        assert provider is not None
        dav.ensure_calendars(session, provider, NOW)
    base = f"/api/v1/providers/{alice.provider_id}/calendars"
    off = client.patch(f"{base}/blocks", json={"blocking": False}, headers=admin_headers)
    assert off.status_code == 200 and off.json()["blocking"] is False
    assert (
        client.patch(
            f"{base}/bookings", json={"blocking": False}, headers=admin_headers
        ).status_code
        == 409
    )
    assert (
        client.patch(f"{base}/nope", json={"blocking": True}, headers=admin_headers).status_code
        == 404
    )


def test_holds_calendar_shown_when_the_provider_enables_it(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    from core.services import dav

    alice = add_provider(runtime, "alice")
    client = _client(runtime)

    def names() -> list[str]:
        with runtime.sessions.begin() as session:
            provider = session.get(Provider, alice.provider_id)
            assert provider is not None
            return [c.name for c in dav.ensure_calendars(session, provider, NOW)]

    assert names() == ["blocks", "bookings"]
    url = f"/api/v1/providers/{alice.provider_id}/holds-calendar"
    on = client.put(url, json={"enabled": True}, headers=admin_headers)
    assert on.status_code == 200 and on.json() == {"enabled": True}
    assert names() == ["blocks", "bookings", "holds"]
    assert client.put(url, json={"enabled": False}, headers=admin_headers).json() == {
        "enabled": False
    }
    assert names() == ["blocks", "bookings"]
    assert client.put(url, json={"enabled": "yes"}, headers=admin_headers).status_code == 400
    missing = "/api/v1/providers/prv_nope/holds-calendar"
    assert client.put(missing, json={"enabled": True}, headers=admin_headers).status_code == 404
    assert client.put(url, json={"enabled": True}).status_code == 401
