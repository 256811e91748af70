"""What a provider sets up over the API reaches their calendar app, and what a guest does on
the booking API shows there: app passwords log in (and stop when revoked), a guest's booking
appears in `bookings` and leaves when cancelled, a guest's hold appears in `holds` once the
provider shows that calendar. Only HTTP and the caldav client, against a real server; the
service-level twins are in test_caldav_client.py and test_api_feeds.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import caldav
import httpx
import pytest
from caldav.lib.error import AuthorizationError

from core.runtime import Runtime
from tests.conftest import ADMIN_TOKEN
from tests.integration.api.helpers import HOURS, Clock
from tests.integration.dav.conftest import calendar_named, event_ics

NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1
WED = "2030-03-06"
MARCH = datetime(2030, 3, 1, tzinfo=UTC)
APRIL = datetime(2030, 4, 1, tzinfo=UTC)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GUEST = {"Authorization": ""}  # the public API, as a guest calls it


@pytest.fixture
def api(runtime: Runtime, dav_base: str) -> Iterator[httpx.Client]:
    runtime.clock = Clock(NOW)
    with httpx.Client(base_url=dav_base, headers=ADMIN, timeout=30) as client:
        yield client


@pytest.fixture
def provider(api: httpx.Client) -> str:
    body = {"name": "Dana", "email": "dana@example.org", "timezone": "Europe/Berlin",
            "slug": "dana"}  # fmt: skip
    created = api.post("/api/v1/providers", json=body)
    assert created.status_code == 201, created.text
    provider_id: str = created.json()["id"]
    hours = api.put(f"/api/v1/providers/{provider_id}/availability", json=HOURS)
    assert hours.status_code == 200, hours.text
    return provider_id


@pytest.fixture
def opened() -> Iterator[list[caldav.DAVClient]]:
    clients: list[caldav.DAVClient] = []
    yield clients
    for client in clients:
        client.close()


def _issue(api: httpx.Client, provider_id: str) -> dict[str, Any]:
    issued = api.post(f"/api/v1/providers/{provider_id}/app-passwords", json={"label": "phone"})
    assert issued.status_code == 201, issued.text
    return dict(issued.json())


def _app(base: str, issued: dict[str, Any], opened: list[caldav.DAVClient]) -> caldav.DAVClient:
    client = caldav.DAVClient(
        url=f"{base}/dav/", username=issued["username"], password=issued["password"]
    )
    opened.append(client)
    return client


def _names(client: caldav.DAVClient) -> list[str]:
    return sorted(str(c.url).rstrip("/").rsplit("/", 1)[1] for c in client.principal().calendars())


def _uids(calendar: caldav.Calendar) -> set[str]:
    found = calendar.search(start=MARCH, end=APRIL, event=True)
    return {str(e.icalendar_component["UID"]) for e in found}


def _book(api: httpx.Client, provider_id: str, start: str, end: str) -> dict[str, Any]:
    """A guest's hold and confirmation over the public API; the booking's JSON."""
    body = {"provider_id": provider_id, "start": start, "end": end,
            "guest_email": "g@example.net", "guest_name": "Grace Guest"}  # fmt: skip
    hold = api.post("/api/v1/holds", json=body, headers=GUEST)
    assert hold.status_code == 201, hold.text
    confirmed = api.post(f"/api/v1/holds/{hold.json()['id']}/confirm", headers=GUEST)
    assert confirmed.status_code == 201, confirmed.text
    return dict(confirmed.json()["booking"])


def test_an_app_password_from_the_api_logs_in_until_it_is_revoked(
    api: httpx.Client, provider: str, dav_base: str, opened: list[caldav.DAVClient]
) -> None:
    # Catches: the API issuing a password the CalDAV login does not accept (hash, username
    # or provider mix-up), and a revoke that only marks the list while the login still works.
    issued = _issue(api, provider)
    assert _names(_app(dav_base, issued, opened)) == ["blocks", "bookings"]
    other = _issue(api, provider)
    revoked = api.delete(f"/api/v1/providers/{provider}/app-passwords/{issued['id']}")
    assert revoked.status_code == 200, revoked.text
    with pytest.raises(AuthorizationError):
        _app(dav_base, issued, opened).principal()
    assert _names(_app(dav_base, other, opened)) == ["blocks", "bookings"]  # the other stays


def test_a_guests_booking_shows_in_the_bookings_calendar_until_cancelled(
    api: httpx.Client, provider: str, dav_base: str, opened: list[caldav.DAVClient]
) -> None:
    # Catches: bookings made through holds/confirm not reaching the CalDAV view (the
    # service-level twin inserts Booking rows itself), and a cancelled one lingering there.
    bookings = calendar_named(_app(dav_base, _issue(api, provider), opened), "bookings")
    assert _uids(bookings) == set()
    booking = _book(api, provider, f"{WED}T09:00:00Z", f"{WED}T10:00:00Z")
    found = bookings.search(start=MARCH, end=APRIL, event=True)
    assert [str(e.icalendar_component["UID"]) for e in found] == [booking["uid"]]
    event = found[0].icalendar_component
    assert event["DTSTART"].dt == datetime(2030, 3, 6, 9, tzinfo=UTC)
    assert str(event["STATUS"]) == "CONFIRMED"
    cancelled = api.post(f"/api/v1/bookings/{booking['id']}/cancel", json={"reason": "ill"})
    assert cancelled.status_code == 200, cancelled.text
    assert _uids(bookings) == set()


def test_a_guests_hold_shows_in_the_holds_calendar_once_the_provider_asks(
    api: httpx.Client, provider: str, dav_base: str, opened: list[caldav.DAVClient]
) -> None:
    # Catches: PUT holds-calendar changing a flag the CalDAV principal never reads, and a
    # holds calendar that stays empty (or shows holds already confirmed into bookings).
    app = _app(dav_base, _issue(api, provider), opened)
    body = {"provider_id": provider, "start": f"{WED}T13:00:00Z", "end": f"{WED}T14:00:00Z",
            "guest_email": "g@example.net"}  # fmt: skip
    hold = api.post("/api/v1/holds", json=body, headers=GUEST)
    assert hold.status_code == 201, hold.text
    assert _names(app) == ["blocks", "bookings"]
    shown = api.put(f"/api/v1/providers/{provider}/holds-calendar", json={"enabled": True})
    assert shown.status_code == 200, shown.text
    assert _names(app) == ["blocks", "bookings", "holds"]
    holds = calendar_named(app, "holds")
    found = holds.search(start=MARCH, end=APRIL, event=True)
    assert len(found) == 1
    assert found[0].icalendar_component["DTSTART"].dt == datetime(2030, 3, 6, 13, tzinfo=UTC)
    confirmed = api.post(f"/api/v1/holds/{hold.json()['id']}/confirm", headers=GUEST)
    assert confirmed.status_code == 201, confirmed.text
    assert holds.search(start=MARCH, end=APRIL, event=True) == []
    hidden = api.put(f"/api/v1/providers/{provider}/holds-calendar", json={"enabled": False})
    assert hidden.status_code == 200, hidden.text
    assert _names(app) == ["blocks", "bookings"]


def test_blocks_switched_off_over_the_api_stops_blocking_slots(
    api: httpx.Client, provider: str, dav_base: str, opened: list[caldav.DAVClient]
) -> None:
    # Catches: PATCH calendars/blocks answering blocking=false while the slots API still
    # subtracts that calendar's events (the API twin only reads the JSON back).
    def starts() -> list[str]:
        answer = api.get(f"/api/v1/providers/{provider}/slots",
                         params={"start": f"{WED}T00:00:00Z", "end": f"{WED}T23:59:59Z",
                                 "duration": "60"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        return [slot["start"] for slot in answer.json()["slots"]]

    blocks = calendar_named(_app(dav_base, _issue(api, provider), opened), "blocks")
    blocks.save_event(event_ics("dentist", datetime(2030, 3, 6, 9, tzinfo=UTC)))
    assert f"{WED}T09:00:00Z" not in starts()
    off = api.patch(f"/api/v1/providers/{provider}/calendars/blocks", json={"blocking": False})
    assert off.status_code == 200, off.text
    assert f"{WED}T09:00:00Z" in starts()
    on = api.patch(f"/api/v1/providers/{provider}/calendars/blocks", json={"blocking": True})
    assert on.status_code == 200, on.text
    assert f"{WED}T09:00:00Z" not in starts()
