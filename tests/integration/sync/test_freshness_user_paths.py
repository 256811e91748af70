"""The freshness gate and imported busy time as provider and guest meet them, every step
public: a calendar imported and synced over the API, time passing on the clock, the /me
pages' banner, the booking API's instant book, "sync now" on /me/calendars, and the slot
explanation naming the calendar. The twins call instant_book_allowed and explain_slot
(test_sources_api.py, services/test_availability.py) or set last_success_at by hand
(services/test_freshness_gate.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from core.runtime import Runtime
from tests.integration.api.helpers import Clock, TestClient, client_for, hold_body, make_provider
from tests.integration.me.helpers import csrf_of, sign_in
from tests.integration.sync.conftest import FeedServer
from tests.integration.sync.feeds import calendar, timed

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1
TUE = "2027-03-02"


def _setup(
    runtime: Runtime, headers: dict[str, str], feeds: FeedServer, **source: Any
) -> tuple[TestClient, Clock, str, str]:
    clock = Clock(NOW)
    client = client_for(runtime, clock)
    provider = make_provider(client, headers, slug="ada")
    body = calendar(timed("dentist@x", datetime(2027, 3, 2, 9, tzinfo=UTC)))
    added = client.post(
        f"/api/v1/providers/{provider}/sources",
        json={"url": feeds.put("/ada.ics", body), **source},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    return client, clock, provider, added.json()["id"]


def _book(client: TestClient, provider: str, hour: int) -> str:
    start, end = f"{TUE}T{hour:02}:00:00Z", f"{TUE}T{hour:02}:30:00Z"
    hold = client.post("/api/v1/holds", json=hold_body(provider, start, end))
    assert hold.status_code == 201, hold.text
    confirmed = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    return str(confirmed.json()["booking"]["status"])


def _banner(html: str) -> str | None:
    found = re.search(r'id="freshness"><strong>([^<]+)</strong>', html)
    return found[1] if found else None


def test_a_calendar_gone_stale_pauses_instant_book_until_synced_from_the_page(
    runtime: Runtime, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    # Catches: the banner and the booking API disagreeing about staleness (one reading the
    # gate with another clock or limit), "sync now" on the page not lifting the pause, and
    # the age in the banner being computed from the wrong timestamp.
    client, clock, provider, source = _setup(runtime, admin_headers, feed_server, platform="airbnb")
    sign_in(client, runtime, "ada@example.org")
    assert _banner(client.get("/me").text) == "Instant book paused: Airbnb calendar not synced yet."
    assert _book(client, provider, 10) == "requested"

    synced = client.post(f"/api/v1/sources/{source}/sync", headers=admin_headers)
    assert synced.status_code == 200 and synced.json()["status"] == "ok", synced.text
    assert _banner(client.get("/me").text) is None
    assert _book(client, provider, 11) == "confirmed"

    clock.now = NOW + timedelta(hours=3, minutes=5)
    feed_server.feeds["/ada.ics"].status = 503  # the calendar's host is down meanwhile
    page = client.get("/me/calendars")
    assert _banner(page.text) == "Instant book paused: Airbnb calendar not synced for 3 h."
    assert _book(client, provider, 12) == "requested"
    failed = client.post(f"/me/calendars/{source}/sync", data={"csrf": csrf_of(page.text)})
    assert failed.status_code == 200 and _banner(failed.text) is not None

    feed_server.feeds["/ada.ics"].status = 200
    again = client.post(f"/me/calendars/{source}/sync", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 200 and "Synced." in again.text
    assert _banner(again.text) is None and _banner(client.get("/me").text) is None
    assert _book(client, provider, 13) == "confirmed"


def test_the_explanation_names_the_calendar_that_took_the_time(
    runtime: Runtime, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    # Catches: an imported event blocking the slot without the explain endpoint saying
    # which of the provider's calendars it came from.
    client, _, provider, source = _setup(runtime, admin_headers, feed_server, name="Dentist cal")
    at = f"{TUE}T09:00:00Z"
    before = client.get(
        f"/api/v1/providers/{provider}/slots/explain", params={"at": at, "duration": "60"}
    ).json()
    assert before["bookable"] is True
    assert client.post(f"/api/v1/sources/{source}/sync", headers=admin_headers).status_code == 200
    why = client.get(
        f"/api/v1/providers/{provider}/slots/explain",
        params={"at": f"{TUE}T09:30:00Z", "duration": "60"},
    ).json()
    assert why["bookable"] is False
    reason = why["reasons"][0]
    assert (reason["code"], reason["kind"], reason["ref"]) == ("busy_external", "external", source)
    assert reason["label"] == "Dentist cal" and "Dentist cal" in reason["message"]
    assert (reason["start"], reason["end"]) == (at, f"{TUE}T10:00:00Z")
