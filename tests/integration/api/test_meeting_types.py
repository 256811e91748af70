"""Meeting types through the API, as a provider sets up what guests may book: a type with
its own lengths, place, buffers and lead time; the slots and holds that obey it; the
booking, invitation and calendar feed that carry its title, place and description."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, hold_body, make_provider

PLANNING = {
    "slug": "planning",
    "title": "Planning call",
    "durations": [45, 90],
    "location": "https://meet.example/dana",
    "description": "Bring your list of questions.",
    "buffer_after_minutes": 60,
    "lead_time_hours": 72,
}


FRIDAY = date(2027, 3, 5)  # the test clock says Monday 1 March 2027, 08:00 UTC
WEDNESDAY = date(2027, 3, 3)  # 49 h ahead: within the type's 72 h lead time


def _slots(client: TestClient, provider: str, day: date, **params: str) -> list[dict[str, Any]]:
    answer = client.get(
        f"/api/v1/providers/{provider}/slots",
        params={"start": f"{day}T00:00:00Z", "end": f"{day}T23:00:00Z", **params},
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["slots"]
    return found


def test_a_provider_offers_a_type_and_guests_book_it(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    base = f"/api/v1/providers/{provider}/meeting-types"
    made = client.post(base, json=PLANNING, headers=admin_headers)
    assert made.status_code == 201, made.text
    kind = made.json()
    assert kind["durations"] == [45, 90] and kind["booking_url"].endswith("/book/ada/planning")
    assert client.post(base, json=PLANNING, headers=admin_headers).status_code == 409
    for bad in ({"durations": []}, {"durations": [3]}, {"durations": [30, 30]},
                {"slug": "Not a slug"}, {"lead_time_hours": -1}, {"location": "a\nb"},
                {"colour": "red"}):  # fmt: skip
        answer = client.post(base, json={**PLANNING, "slug": "x", **bad}, headers=admin_headers)
        assert answer.status_code in (400, 422), (bad, answer.text)
    # The public list (what the booking page shows) holds the active types only.
    assert [t["slug"] for t in client.get(base).json()["items"]] == ["planning"]

    day = FRIDAY
    plain = _slots(client, provider, day, duration="30")
    typed = _slots(client, provider, day, type="planning")
    assert plain and typed
    first = datetime.fromisoformat(typed[0]["start"])
    assert datetime.fromisoformat(typed[0]["end"]) - first == timedelta(minutes=45)
    assert client.get(
        f"/api/v1/providers/{provider}/slots",
        params={"start": f"{day}T00:00:00Z", "end": f"{day}T23:00:00Z", "type": "planning",
                "duration": "30"},
    ).status_code == 400  # fmt: skip
    # Its own lead time: 72 h leaves Wednesday bookable plainly, not as a type.
    assert _slots(client, provider, WEDNESDAY, duration="45")
    assert not _slots(client, provider, WEDNESDAY, type="planning")

    hold = client.post("/api/v1/holds", json={
        **hold_body(provider, typed[0]["start"], typed[0]["end"]), "meeting_type": "planning",
        "guest_name": "Gus Guest"})  # fmt: skip
    assert hold.status_code == 201, hold.text
    last = plain[-1]
    wrong = client.post("/api/v1/holds", json={
        **hold_body(provider, last["start"], last["end"]), "meeting_type": "planning"})  # fmt: skip
    assert wrong.status_code == 400 and "45, 90 minutes" in wrong.text
    confirmed = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    booking = confirmed.json()["booking"]
    assert booking["title"] == "Planning call" and booking["location"] == PLANNING["location"]
    assert booking["meeting_type_id"] == kind["id"]

    # Its own buffer: right after the booking is free plainly, not for the type.
    end = datetime.fromisoformat(booking["end"])  # 08:45 UTC; the grid is every 30 minutes
    next_start = end + timedelta(minutes=15)
    plain_after = _slots(client, provider, day, duration="30")
    typed_after = _slots(client, provider, day, type="planning")
    assert next_start in [datetime.fromisoformat(s["start"]) for s in plain_after]
    typed_starts = [datetime.fromisoformat(s["start"]) for s in typed_after]
    assert next_start not in typed_starts and next_start + timedelta(hours=1) in typed_starts

    with runtime.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage).where(OutboundMessage.booking_id == booking["id"])
        ).all()
    assert len(rows) == 2
    for row in rows:
        message = email.message_from_bytes(row.mime, policy=email.policy.default)
        # "Planning call with Dana Demo — Thu, 3 Dec 2026, 05:00–05:30 EST", as #19 asks.
        subject = str(message["Subject"])
        assert subject.startswith("Planning call with ") and " — " in subject, subject
        assert re.search(r"\d\d:\d\d–\d\d:\d\d [A-Z]{3,4}$", subject), subject
        ics = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        text = ics.get_content().replace("\r\n ", "")
        assert "SUMMARY:Planning call" in text and "LOCATION:https://meet.example/dana" in text
        assert "Bring your list of questions." in text
        body = message.get_body(preferencelist=("plain",))
        assert body is not None and "https://meet.example/dana" in body.get_content()

    feed = client.post(f"/api/v1/providers/{provider}/feed-token", json={}, headers=admin_headers)
    path = "/" + feed.json()["url"].split("://", 1)[1].split("/", 1)[1]
    calendar = client.get(path).text.replace("\r\n ", "")
    assert "SUMMARY:Planning call with Gus Guest" in calendar
    assert "LOCATION:https://meet.example/dana" in calendar

    # A later edit does not rewrite the booking; an inactive type is not bookable.
    patched = client.patch(f"{base}/planning", json={"title": "Renamed", "active": False},
                           headers=admin_headers)  # fmt: skip
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert client.get(base).json()["items"] == []
    assert len(client.get(base, headers=admin_headers).json()["items"]) == 1
    assert client.get(f"/api/v1/bookings/{booking['id']}", headers=admin_headers).json()[
        "title"] == "Planning call"  # fmt: skip
    gone = client.get(f"/api/v1/providers/{provider}/slots",
                      params={"start": f"{day}T00:00:00Z", "end": f"{day}T23:00:00Z",
                              "type": "planning"})  # fmt: skip
    assert gone.status_code == 404
    assert client.delete(f"{base}/{kind['id']}", headers=admin_headers).status_code == 204
    assert client.delete(f"{base}/{kind['id']}", headers=admin_headers).status_code == 404


def test_roles_and_tenants(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    base = f"/api/v1/providers/{provider}/meeting-types"
    viewer = client.post("/api/v1/tenants/default/api-keys", json={"role": "viewer"},
                         headers=admin_headers)  # fmt: skip
    assert viewer.status_code == 201, viewer.text
    as_viewer = {"Authorization": f"Bearer {viewer.json()['key']}"}
    refused = client.post(base, json=PLANNING, headers=as_viewer)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    acme = client.post("/api/v1/tenants", json={"name": "Acme", "slug": "acme",
                       "organizer_email": "desk@acme.example"}, headers=admin_headers)  # fmt: skip
    owner = client.post(f"/api/v1/tenants/{acme.json()['id']}/api-keys", json={"role": "owner"},
                        headers=admin_headers)  # fmt: skip
    as_acme = {"Authorization": f"Bearer {owner.json()['key']}"}
    assert client.post(base, json=PLANNING, headers=as_acme).status_code == 404
    assert client.get(base, headers=as_acme).status_code == 404
    assert client.get("/api/v1/providers/prv_nope/meeting-types").status_code == 404
