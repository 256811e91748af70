"""Availability set over the API (or the /me editor) reaches every surface a guest uses: the
slots API, its explanation, hold creation and the booking page. The twins either read the
rules back (test_scheduling_api.py), look at the provider's own preview (me/test_pages.py)
or call the hold service (services/test_holds.py)."""

from __future__ import annotations

import re

from core.runtime import Runtime
from tests.integration.api.helpers import HOURS, TestClient, client_for, hold_body, make_provider
from tests.integration.me.helpers import csrf_of, sign_in

# Week of Monday 8 March 2027; Berlin is UTC+1, so 09:00 there is 08:00Z.
CLOSED_DAY, SHORT_DAY, AWAY_FROM, AWAY_TO = "2027-03-09", "2027-03-10", "2027-03-11", "2027-03-12"


def _starts(client: TestClient, provider: str, day: str) -> list[str]:
    answer = client.get(
        f"/api/v1/providers/{provider}/slots",
        params={"start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z", "duration": "60"},
    )
    assert answer.status_code == 200, answer.text
    return [slot["start"] for slot in answer.json()["slots"]]


def _why(client: TestClient, provider: str, at: str) -> list[str]:
    answer = client.get(
        f"/api/v1/providers/{provider}/slots/explain", params={"at": at, "duration": "60"}
    )
    assert answer.status_code == 200, answer.text
    return [reason["code"] for reason in answer.json()["reasons"]]


def _page_days(client: TestClient, slug: str) -> set[str]:
    """Days (UTC dates) the booking page offers any time on, the week of 8 March."""
    page = client.get(f"/book/{slug}", params={"from": "2027-03-08", "tz": "UTC"})
    assert page.status_code == 200, page.text
    strip = re.findall(r'data-day="([0-9-]+)" data-times="([0-9]+)"', page.text)
    return {day for day, count in strip if int(count) > 0}


def _form(html: str) -> dict[str, str]:
    """The editor's fields with their current values, as a browser would post them."""
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if name is None or ('type="checkbox"' in tag and "checked" not in tag):
            continue
        fields[name[1]] = "on" if 'type="checkbox"' in tag else (value[1] if value else "")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'value="([^"]*)" selected', body)
        fields[name] = chosen[1] if chosen else re.findall(r'value="([^"]*)"', body)[0]
    fields.pop("copy_from", None)
    return fields


def test_exceptions_and_vacations_from_the_api_close_those_days_to_guests(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: exceptions and vacations stored and read back by GET availability but left
    # out where slots are computed, explained or held, or on the booking page.
    client = client_for(runtime)
    provider = make_provider(
        client,
        admin_headers,
        exceptions=[
            {"date": CLOSED_DAY, "kind": "unavailable"},
            {"date": SHORT_DAY, "kind": "unavailable", "start": "09:00", "end": "12:00"},
        ],
        vacations=[{"from": AWAY_FROM, "to": AWAY_TO}],
    )
    assert len(_starts(client, provider, "2027-03-08")) == 15  # Monday untouched
    assert _starts(client, provider, CLOSED_DAY) == []
    short = _starts(client, provider, SHORT_DAY)
    assert short[0] == f"{SHORT_DAY}T11:00:00Z" and f"{SHORT_DAY}T10:00:00Z" not in short
    assert _starts(client, provider, AWAY_FROM) == [] and _starts(client, provider, AWAY_TO) == []
    assert _why(client, provider, f"{CLOSED_DAY}T09:00:00Z") == ["exception"]
    assert _why(client, provider, f"{AWAY_TO}T09:00:00Z") == ["vacation"]
    refused = client.post(
        "/api/v1/holds",
        json=hold_body(provider, f"{AWAY_FROM}T09:00:00Z", f"{AWAY_FROM}T10:00:00Z"),
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "slot_unavailable"
    assert _page_days(client, "ada") == {"2027-03-08", SHORT_DAY}


def test_the_editor_on_me_changes_what_guests_are_offered(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: the /me editor saving to something only its own preview reads.
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, slug="ada")
    sign_in(client, runtime, "ada@example.org")
    page = client.get("/me/availability").text
    fields = _form(page)
    fields.update({"csrf": csrf_of(page), "x-0-date": CLOSED_DAY, "x-0-kind": "unavailable"})
    fields.update({"v-0-from": AWAY_FROM, "v-0-to": AWAY_TO, "action": "save"})
    saved = client.post("/me/availability", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert _starts(client, provider, CLOSED_DAY) == []
    assert _starts(client, provider, AWAY_FROM) == []
    assert len(_starts(client, provider, SHORT_DAY)) == 15
    assert _page_days(client, "ada") == {"2027-03-08", SHORT_DAY}


def test_a_buffer_added_over_the_api_after_a_hold_guards_the_next_hold(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: the hold fast path reusing the scope it remembered from the provider's last
    # hold (no buffers) after PUT availability changed it; the twin calls create_hold.
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    day = "2027-03-08"
    first = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{day}T08:00:00Z", f"{day}T09:00:00Z")
    )
    assert first.status_code == 201, first.text
    hours = {**HOURS, "buffer_before_minutes": 30, "buffer_after_minutes": 30}
    put = client.put(
        f"/api/v1/providers/{provider}/availability", json=hours, headers=admin_headers
    )
    assert put.status_code == 200, put.text
    assert f"{day}T09:00:00Z" not in _starts(client, provider, day)
    inside = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{day}T09:00:00Z", f"{day}T10:00:00Z")
    )
    assert inside.status_code == 409 and inside.json()["error"]["code"] == "slot_taken"
    beyond = client.post(
        "/api/v1/holds", json=hold_body(provider, f"{day}T10:00:00Z", f"{day}T11:00:00Z")
    )
    assert beyond.status_code == 201, beyond.text
