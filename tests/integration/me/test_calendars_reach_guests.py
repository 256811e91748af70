"""A calendar connected on /me/calendars takes its busy time from what guests are offered
(slots API, booking page), "remove" gives it back. The twin in test_pages.py checks the
provider's own preview; this page assembles fetch and sync itself, so it is held here to
the guest's view."""

from __future__ import annotations

import re

from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, make_provider
from tests.integration.me.helpers import csrf_of, serve_feed, sign_in

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Feed//EN\r\n"
    "BEGIN:VEVENT\r\nUID:dentist-1@test\r\nDTSTAMP:20270101T000000Z\r\n"
    "DTSTART:20270302T090000Z\r\nDTEND:20270302T100000Z\r\nSUMMARY:Dentist\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
BUSY = "2027-03-02T09:00:00Z"  # 10:00 in Berlin


def _guest_sees(client: TestClient, provider: str) -> tuple[bool, bool]:
    """Whether 09:00Z on Tuesday is offered (slots API, booking page)."""
    answer = client.get(
        f"/api/v1/providers/{provider}/slots",
        params={"start": "2027-03-02T00:00:00Z", "end": "2027-03-02T23:59:59Z", "duration": "60"},
    )
    assert answer.status_code == 200, answer.text
    in_api = BUSY in [slot["start"] for slot in answer.json()["slots"]]
    page = client.get("/book/ada", params={"tz": "UTC", "from": "2027-03-02"}).text
    return in_api, 'data-start="2027-03-02T09:00:00+00:00"' in page


def test_a_calendar_added_on_the_page_takes_its_time_from_guests_until_removed(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: the page's own fetch-and-sync storing events where busy time is not read
    # (or for another provider), and "remove" leaving the events behind.
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, slug="ada", lead_time_hours=0)
    sign_in(client, runtime, "ada@example.org")
    assert _guest_sees(client, provider) == (True, True)
    csrf = csrf_of(client.get("/me/calendars").text)
    with serve_feed(ICS) as url:
        added = client.post(
            "/me/calendars", data={"csrf": csrf, "kind": "ics", "url": url, "name": "Dentist"}
        )
    assert added.status_code == 200 and "Calendar added" in added.text
    assert _guest_sees(client, provider) == (False, False)
    source_id = re.findall(r'id="source-(src_\w+)"', added.text)[0]
    removed = client.post(f"/me/calendars/{source_id}/remove", data={"csrf": csrf})
    assert removed.status_code == 200 and "Calendar removed" in removed.text
    assert _guest_sees(client, provider) == (True, True)
