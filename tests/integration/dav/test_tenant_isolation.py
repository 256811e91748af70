"""Two tenants' providers with the same slug, seen from a calendar app and a feed reader.

Each tenant has a provider "anna" with the same address. Over a real server: their
CalDAV user names differ (``anna`` and ``anna.acme``), each app password opens only its
own provider's collections, each ``bookings`` calendar and each subscribed feed shows only
that tenant's booking, and a password of one never opens the other's paths.
"""

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
from tests.integration.dav.conftest import calendar_named

NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)  # a Monday
WED = "2030-03-06"
MARCH = datetime(2030, 3, 1, tzinfo=UTC)
APRIL = datetime(2030, 4, 1, tzinfo=UTC)
SYSTEM = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api(runtime: Runtime, dav_base: str) -> Iterator[httpx.Client]:
    runtime.clock = Clock(NOW)
    with httpx.Client(base_url=dav_base, headers=SYSTEM, timeout=30) as client:
        made = client.post(
            "/api/v1/tenants",
            json={"name": "Acme", "slug": "acme", "organizer_email": "cal@acme.example"},
        )
        assert made.status_code == 201, made.text
        yield client


def _anna(api: httpx.Client, tenant: str) -> str:
    headers = {"X-Parley-Tenant": tenant}
    body = {"name": "Anna", "email": "anna@example.org", "timezone": "Europe/Berlin",
            "slug": "anna"}  # fmt: skip
    created = api.post("/api/v1/providers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    provider_id: str = created.json()["id"]
    hours = api.put(f"/api/v1/providers/{provider_id}/availability", json=HOURS, headers=headers)
    assert hours.status_code == 200, hours.text
    return provider_id


def _book(api: httpx.Client, provider_id: str, hour: int) -> str:
    start, end = f"{WED}T{hour:02}:00:00Z", f"{WED}T{hour + 1:02}:00:00Z"
    body = {"provider_id": provider_id, "start": start, "end": end,
            "guest_email": "g@example.net", "guest_name": "Grace"}  # fmt: skip
    hold = api.post("/api/v1/holds", json=body, headers={"Authorization": ""})
    assert hold.status_code == 201, hold.text
    confirmed = api.post(
        f"/api/v1/holds/{hold.json()['id']}/confirm", headers={"Authorization": ""}
    )
    assert confirmed.status_code == 201, confirmed.text
    return str(confirmed.json()["booking"]["uid"])


def _password(api: httpx.Client, provider_id: str, tenant: str) -> dict[str, Any]:
    issued = api.post(
        f"/api/v1/providers/{provider_id}/app-passwords",
        json={"label": "phone"},
        headers={"X-Parley-Tenant": tenant},
    )
    assert issued.status_code == 201, issued.text
    return dict(issued.json())


def _uids(client: caldav.DAVClient) -> set[str]:
    found = calendar_named(client, "bookings").search(start=MARCH, end=APRIL, event=True)
    return {str(e.icalendar_component["UID"]) for e in found}


def test_two_annas_each_see_only_their_own_tenant(api: httpx.Client, dav_base: str) -> None:
    home, acme = _anna(api, "default"), _anna(api, "acme")
    home_uid, acme_uid = _book(api, home, 9), _book(api, acme, 11)
    mine, theirs = _password(api, home, "default"), _password(api, acme, "acme")
    assert (mine["username"], theirs["username"]) == ("anna", "anna.acme")

    opened = []
    try:
        for issued, uid in ((mine, home_uid), (theirs, acme_uid)):
            client = caldav.DAVClient(
                url=f"{dav_base}/dav/", username=issued["username"], password=issued["password"]
            )
            opened.append(client)
            assert _uids(client) == {uid}
        # One anna's password under the other anna's name does not log in.
        crossed = caldav.DAVClient(
            url=f"{dav_base}/dav/", username="anna.acme", password=mine["password"]
        )
        opened.append(crossed)
        with pytest.raises(AuthorizationError):
            crossed.principal()
    finally:
        for client in opened:
            client.close()

    # Signed in as one anna, the other's collections stay shut.
    for issued, other in ((theirs, "anna"), (mine, "anna.acme")):
        auth = (issued["username"], issued["password"])
        for path in (f"/dav/{other}/", f"/dav/{other}/bookings/"):
            answer = httpx.request("PROPFIND", f"{dav_base}{path}", auth=auth,
                                   headers={"Depth": "1"})  # fmt: skip
            assert answer.status_code in (403, 404), (path, answer.status_code)
            assert home_uid not in answer.text and acme_uid not in answer.text

    # Each tenant's feed carries only its own booking.
    for provider_id, tenant, uid, other_uid in (
        (home, "default", home_uid, acme_uid),
        (acme, "acme", acme_uid, home_uid),
    ):
        made = api.post(
            f"/api/v1/providers/{provider_id}/feed-token", json={},
            headers={"X-Parley-Tenant": tenant},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        feed = httpx.get(
            made.json()["url"].replace(made.json()["url"].split("/feeds/")[0], dav_base)
        )
        assert feed.status_code == 200, feed.text
        assert uid in feed.text and other_uid not in feed.text
