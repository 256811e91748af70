"""The provider pages over both databases: editor, preview, calendars, bookings, app set-up,
other providers' ids, and bad input that must give a message on the page, never a 500."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from core.db.models import AuditEntry, Booking, MagicLink, Proposal
from core.runtime import Runtime
from core.services import proposals
from core.services.notify import Mailer
from tests.integration.api.helpers import NOW, TestClient, client_for, hold_body, make_provider
from tests.integration.me.helpers import csrf_of, serve_feed, sign_in

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Feed//EN\r\n"
    "BEGIN:VEVENT\r\nUID:dentist-1@test\r\nDTSTAMP:20270101T000000Z\r\n"
    "DTSTART:20270302T090000Z\r\nDTEND:20270302T100000Z\r\nSUMMARY:Dentist\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _client(runtime: Runtime, headers: dict[str, str], **hours: Any) -> tuple[TestClient, str]:
    client = client_for(runtime)
    provider_id = make_provider(client, headers, slug="ada", **hours)
    sign_in(client, runtime, "ada@example.org")
    return client, provider_id


def _form(client: TestClient, path: str) -> dict[str, str]:
    """The fields of the first form on the page with their current values."""
    html = client.get(path).text
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


def _slots_on(html: str, iso: str) -> int:
    row = re.search(rf'data-date="{iso}">(.*?)</tr>', html, re.S)
    assert row, iso
    return row[1].count('class="chip slot"')


def test_editor_shows_messages_next_to_fields_and_saves_nothing(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, provider_id = _client(runtime, admin_headers)
    form = _form(client, "/me/availability")
    assert form["w-0-0-start"] == "09:00" and form["w-0-0-end"] == "17:00"
    bad = {
        **form,
        "timezone": "Mars/Olympus",
        "w-0-0-start": "25:00",
        "w-1-1-start": "10:00",
        "w-1-1-end": "11:00",  # overlaps 09:00-17:00
        "w-2-0-end": "",
        "x-0-date": "2027-02-30",
        "x-1-date": "2027-03-10",
        "x-1-kind": "available",
        "v-0-from": "2027-08-14",
        "v-0-to": "2027-08-01",
        "lead_time_hours": "-3",
        "slot_step_minutes": "abc",
    }
    answer = client.post("/me/availability", data=bad)
    assert answer.status_code == 400
    html = answer.text
    for key, words in {
        "timezone": "Unknown time zone",
        "w-0-0": "24-hour times",
        "w-1-1": "overlaps",
        "w-2-0": "both a start and an end",
        "x-0": "YYYY-MM-DD",
        "x-1": "Extra hours need",
        "v-0": "must not be before",
        "lead_time_hours": "whole number from 0",
        "slot_step_minutes": "whole number from 1",
    }.items():
        assert re.search(rf'id="error-{key}">[^<]*{words}', html), key
    assert 'value="Mars/Olympus"' in html and 'value="25:00"' in html  # typed text kept
    api = client.get(f"/api/v1/providers/{provider_id}/availability", headers=admin_headers)
    assert api.json()["timezone"] == "Europe/Berlin" and api.json()["lead_time_hours"] == 24


def test_saving_changes_the_preview_and_is_audited_like_the_api(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, provider_id = _client(runtime, admin_headers, lead_time_hours=0)
    before = client.get("/me/preview?weeks=2").text
    assert _slots_on(before, "2027-03-08") == 16 and _slots_on(before, "2027-03-13") == 0
    form = _form(client, "/me/availability")
    form.update({"w-0-0-end": "12:00", "w-0-1-start": "13:00", "w-0-1-end": "15:00"})
    form.update({"w-5-0-start": "10:00", "w-5-0-end": "11:00", "slot_step_minutes": "60"})
    form.update({"x-0-date": "2027-03-09", "x-0-kind": "unavailable", "v-0-from": "2027-03-11"})
    form.update({"v-0-to": "2027-03-12", "action": "save"})
    saved = client.post("/me/availability", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    page = client.get(saved.headers["location"])
    assert "Saved." in page.text
    after = client.get("/me/preview?weeks=2").text
    assert _slots_on(after, "2027-03-08") == 5  # 9,10,11 and 13,14 on the hour
    assert _slots_on(after, "2027-03-13") == 1  # Saturday 10:00
    assert _slots_on(after, "2027-03-09") == 0  # the whole-day exception
    assert _slots_on(after, "2027-03-11") == 0 and _slots_on(after, "2027-03-12") == 0
    api = client.get(f"/api/v1/providers/{provider_id}/availability", headers=admin_headers)
    assert api.json()["slot_step_minutes"] == 60 and len(api.json()["vacations"]) == 1
    with runtime.sessions() as session:
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "availability.replaced")
        ).all()
    assert audit[-1].actor == "provider:ada@example.org"


def test_copy_a_day_fills_the_form_without_saving(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, provider_id = _client(runtime, admin_headers)
    form = _form(client, "/me/availability")
    form.update({"w-0-1-start": "18:00", "w-0-1-end": "20:00", "action": "copy"})
    answer = client.post("/me/availability", data={**form, "copy_from": "0", "copy_to": ["5", "6"]})
    assert answer.status_code == 200 and "Not saved yet" in answer.text
    assert 'name="w-6-1-start" value="18:00"' in answer.text
    nothing = client.post("/me/availability", data={**form, "copy_from": "0"})
    assert nothing.status_code == 400 and "Tick at least one" in nothing.text
    api = client.get(f"/api/v1/providers/{provider_id}/availability", headers=admin_headers)
    assert len(api.json()["weekly"]) == 5


def _booking(client: TestClient, headers: dict[str, str], provider_id: str, start: str) -> str:
    end = start.replace(":00:00Z", ":30:00Z")
    hold = client.post("/api/v1/holds", json=hold_body(provider_id, start, end, guest_name="Grace"))
    assert hold.status_code == 201, hold.text
    done = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json={})
    assert done.status_code == 201, done.text
    booking_id: str = done.json()["booking"]["id"]
    return booking_id


def test_approve_and_decline_requests_and_cancel(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, provider_id = _client(runtime, admin_headers, instant_book=False)
    first = _booking(client, admin_headers, provider_id, "2027-03-02T08:00:00Z")
    second = _booking(client, admin_headers, provider_id, "2027-03-02T10:00:00Z")
    listing = client.get("/me/bookings").text
    assert listing.count('data-status="requested"') == 2 and "Grace" in listing
    page = client.get(f"/me/bookings/{first}")
    assert "answer: accepted" in page.text and 'id="approve"' in page.text
    csrf = csrf_of(page.text)
    approved = client.post(f"/me/bookings/{first}/approve", data={"csrf": csrf})
    assert approved.status_code == 200 and 'id="status">confirmed' in approved.text
    again = client.post(f"/me/bookings/{first}/approve", data={"csrf": csrf})
    assert again.status_code == 409 and "confirmed now" in again.text
    declined = client.post(f"/me/bookings/{second}/decline", data={"csrf": csrf})
    assert 'id="status">cancelled' in declined.text
    cancelled = client.post(f"/me/bookings/{first}/cancel", data={"csrf": csrf, "reason": "ill"})
    assert 'id="status">cancelled' in cancelled.text and "ill" in cancelled.text
    with runtime.sessions() as session:
        links = session.scalars(
            select(MagicLink).where(
                MagicLink.booking_id == first, MagicLink.purpose.like("%_booking")
            )
        ).all()
    assert all(link.used_at is not None for link in links)
    assert client.post(f"/me/bookings/{first}/explode", data={"csrf": csrf}).status_code == 404


def test_proposals_are_decided_from_the_booking_page(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, provider_id = _client(runtime, admin_headers)
    booking_id = _booking(client, admin_headers, provider_id, "2027-03-02T08:00:00Z")
    mailer = Mailer.from_runtime(runtime)

    def propose(hour: int) -> str:
        with runtime.sessions.begin() as session:
            booking = session.get(Booking, booking_id)
            assert booking is not None
            start = booking.start_at + timedelta(hours=hour)
            made = proposals.create_proposal(
                session, mailer, booking, role="guest", address="guest@example.net",
                start=start, end=start + timedelta(minutes=30), note="later?", via="link", now=NOW,
            )  # fmt: skip
            return made.id

    first = propose(2)
    page = client.get(f"/me/bookings/{booking_id}")
    assert "later?" in page.text and f"proposals/{first}/approve" in page.text
    csrf = csrf_of(page.text)
    approved = client.post(
        f"/me/bookings/{booking_id}/proposals/{first}/approve", data={"csrf": csrf}
    )
    assert approved.status_code == 200 and "The new time is applied" in approved.text
    with runtime.sessions() as session:
        booking = session.get(Booking, booking_id)
        assert booking is not None and booking.sequence == 1
        assert booking.start_at.hour == 10
    twice = client.post(f"/me/bookings/{booking_id}/proposals/{first}/approve", data={"csrf": csrf})
    assert twice.status_code == 409 and "already approved" in twice.text
    second = propose(3)
    declined = client.post(
        f"/me/bookings/{booking_id}/proposals/{second}/decline", data={"csrf": csrf}
    )
    assert "keeps its time" in declined.text
    with runtime.sessions() as session:
        assert session.get(Proposal, second).status == "declined"  # type: ignore[union-attr]


def test_calendar_connections(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client, _ = _client(runtime, admin_headers, lead_time_hours=0)
    page = client.get("/me/calendars")
    csrf = csrf_of(page.text)
    with serve_feed(ICS) as url, serve_feed("nope", status=403) as broken:
        added = client.post(
            "/me/calendars", data={"csrf": csrf, "kind": "ics", "url": url, "name": "Dentist cal"}
        )
        assert added.status_code == 200 and "Calendar added" in added.text
        assert 'data-status="ok"' in added.text and "1 event" in added.text
        preview = client.get("/me/preview?weeks=1").text
        assert 'data-kind="external"' in preview and "Dentist cal" in preview
        failing = client.post("/me/calendars", data={"csrf": csrf, "kind": "ics", "url": broken})
        assert "refused access" in failing.text and "HTTP 403" in failing.text
        assert 'id="freshness"' in failing.text and "not synced yet" in failing.text
        source_id = re.findall(r'id="source-(src_\w+)" data-status="error"', failing.text)[0]
        synced = client.post(f"/me/calendars/{source_id}/sync", data={"csrf": csrf})
        assert synced.status_code == 200 and "Synced." in synced.text
    duplicate = client.post("/me/calendars", data={"csrf": csrf, "kind": "ics", "url": url})
    assert duplicate.status_code == 400 and "already imports" in duplicate.text
    for bad in ("", "ftp://x", "not a url", "http://" + "a" * 3000):
        answer = client.post("/me/calendars", data={"csrf": csrf, "kind": "ics", "url": bad})
        assert answer.status_code == 400 and 'id="add-error"' in answer.text, bad
    wrong_kind = client.post("/me/calendars", data={"csrf": csrf, "kind": "gopher", "url": url})
    assert wrong_kind.status_code == 400
    removed = client.post(f"/me/calendars/{source_id}/remove", data={"csrf": csrf})
    assert "Calendar removed" in removed.text and f"source-{source_id}" not in removed.text


def test_app_passwords_and_feed(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client, _ = _client(runtime, admin_headers)
    page = client.get("/me/connect")
    assert "http://127.0.0.1:8000/dav/" in page.text and 'id="dav-username">ada<' in page.text
    csrf = csrf_of(page.text)
    made = client.post("/me/connect/app-passwords", data={"csrf": csrf, "label": "phone"})
    password = re.search(r'id="app-password">([^<]+)<', made.text)
    assert password and len(password[1]) >= 24
    assert password[1] not in client.get("/me/connect").text  # shown once
    password_id = re.findall(r"/me/connect/app-passwords/(apw_\w+)/revoke", made.text)[0]
    revoked = client.post(f"/me/connect/app-passwords/{password_id}/revoke", data={"csrf": csrf})
    assert "App password revoked" in revoked.text and password_id not in revoked.text
    feed = client.post("/me/connect/feed", data={"csrf": csrf, "include_holds": "on"})
    url = re.search(r'id="feed-url">([^<]+)<', feed.text)
    assert url is not None
    path = url[1].replace("http://127.0.0.1:8000", "")
    assert client.get(path).status_code == 200
    again = client.post("/me/connect/feed", data={"csrf": csrf})
    assert client.get(path).status_code == 404 and "Regenerate" in again.text
    long_label = client.post("/me/connect/app-passwords", data={"csrf": csrf, "label": "x" * 101})
    assert long_label.status_code == 400


def test_a_new_secret_survives_no_reload(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    # Catches: a reload of the page that showed a new app password making another one, the
    # secret travelling in a URL, and the one-time cookie opening for someone else.
    client, _ = _client(runtime, admin_headers)
    csrf = csrf_of(client.get("/me/connect").text)
    made = client.post(
        "/me/connect/app-passwords", data={"csrf": csrf, "label": "phone"}, follow_redirects=False
    )
    assert made.status_code == 303 and made.headers["location"] == "/me/connect"
    cookie = client.cookies.get("parley_reveal")
    assert cookie and "phone" not in made.text
    shown = client.get("/me/connect")
    password = re.search(r'id="app-password">([^<]+)<', shown.text)
    assert password and password[1] not in cookie
    assert 'id="copy-app-password"' in shown.text
    reloaded = client.get("/me/connect")
    assert password[1] not in reloaded.text and 'id="new-password"' not in reloaded.text
    assert reloaded.text.count('class="app-password"') == 1  # one password, not two
    # The same sealed cookie presented by another provider's session shows nothing.
    other = client_for(runtime)
    make_provider(other, admin_headers, slug="bob")
    sign_in(other, runtime, "bob@example.org")
    other.cookies.set("parley_reveal", cookie, path="/me/connect")
    assert 'id="new-password"' not in other.get("/me/connect").text
    other.cookies.set("parley_reveal", "garbage", path="/me/connect")
    assert other.get("/me/connect").status_code == 200
    feed = client.post("/me/connect/feed", data={"csrf": csrf}, follow_redirects=False)
    assert feed.status_code == 303 and "/feeds/" not in feed.headers["location"]
    url = re.search(r'id="feed-url">([^<]+)<', client.get("/me/connect").text)
    assert url and url[1] not in client.get("/me/connect").text


def test_other_providers_ids_answer_404(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client, _ = _client(runtime, admin_headers)
    other = make_provider(client, admin_headers, slug="bob")
    booking_id = _booking(client, admin_headers, other, "2027-03-02T08:00:00Z")
    with serve_feed(ICS) as url:
        made = client.post(
            f"/api/v1/providers/{other}/sources", json={"url": url}, headers=admin_headers
        )
    source_id = made.json()["id"]
    with runtime.sessions.begin() as session:
        from core.services import app_passwords

        password_id = app_passwords.issue(session, other, NOW, "bob's").id
    bob = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    sign_in(bob, runtime, "bob@example.org")
    bob_session = re.findall(r"/me/sessions/(wss_\w+)/revoke", bob.get("/me/sessions").text)[0]
    csrf = csrf_of(client.get("/me").text)
    assert client.get(f"/me/bookings/{booking_id}").status_code == 404
    for path in (
        f"/me/bookings/{booking_id}/approve",
        f"/me/bookings/{booking_id}/cancel",
        f"/me/bookings/{booking_id}/proposals/prp_x/approve",
        f"/me/calendars/{source_id}/sync",
        f"/me/calendars/{source_id}/remove",
        f"/me/connect/app-passwords/{password_id}/revoke",
        f"/me/sessions/{bob_session}/revoke",
        "/me/bookings/bkg_nothing/approve",
    ):
        answer = client.post(path, data={"csrf": csrf})
        assert answer.status_code == 404, path
        assert "nothing of yours" in answer.text
    assert "/book/bob" in bob.get("/me").text  # his session survived the attempt
    with runtime.sessions() as session:
        assert session.get(Booking, booking_id).status == "confirmed"  # type: ignore[union-attr]


def test_odd_input_is_a_message_never_a_500(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, _ = _client(runtime, admin_headers)
    csrf = csrf_of(client.get("/me").text)
    for path in (
        "/me/preview?weeks=99&duration=abc",
        "/me/preview?at=yesterday",
        "/me/preview?at=2027-03-28T02:30",
        "/me/preview?duration=0",
        "/me/preview?at=2027-03-02T10:00&duration=15",
        "/me/link?t=%00%ff",
        "/me/bookings/%20",
        "/me/bookings?show=%00",
    ):
        answer = client.get(path)
        assert answer.status_code < 500, path
    short = client.get("/me/preview?at=2027-03-02T10:00&duration=15")
    assert short.status_code == 400 and "below the minimum" in short.text
    why = client.get("/me/preview?at=2027-03-01T10:00").text
    assert "is not bookable" in why and "lead time" in why.lower()
    assert "is bookable" in client.get("/me/preview?at=2027-03-03T10:00").text
    assert "does not exist" in client.get("/me/preview?at=2027-03-28T02:30").text
    for data in (
        {"csrf": csrf, "w-0-0-start": "\x00", "timezone": "x" * 500},
        {"csrf": csrf, "x-99999-date": "2027-01-01"},
        {"csrf": csrf, "action": "copy", "copy_from": "9"},
        {"csrf": csrf, "lead_time_hours": "9" * 40},
    ):
        answer = client.post("/me/availability", data=data)
        assert answer.status_code == 400, data
    raw = client.post(
        "/me/availability",
        content=b"csrf=" + csrf.encode() + b"&%ff%fe=%ff",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code == 400
