"""The caldav library against a real server: discovery, calendars, time-range search, sync
tokens, writes in blocks feeding dav_busy, read-only bookings, isolation and passwords."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import caldav
import httpx
import pytest

from core.runtime import Runtime
from core.services import app_passwords, dav
from tests.integration.dav.conftest import add_booking, add_provider, calendar_named, event_ics

MARCH = datetime(2030, 3, 1, tzinfo=UTC)


_OPEN: list[caldav.DAVClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _client(base: str, user: str, password: str) -> caldav.DAVClient:
    client = caldav.DAVClient(url=f"{base}/dav/", username=user, password=password)
    _OPEN.append(client)
    return client


def _busy(runtime: Runtime, provider_id: str) -> list[tuple[datetime, datetime]]:
    with runtime.sessions.begin() as session:
        spans = dav.dav_busy(session, provider_id, MARCH, MARCH + timedelta(days=60))
    return [(b.start, b.end) for b in spans]


def test_discovery_and_bookings_calendar(runtime: Runtime, dav_base: str) -> None:
    alice = add_provider(runtime, "alice")
    start = datetime(2030, 3, 5, 10, tzinfo=UTC)
    confirmed = add_booking(runtime, alice.provider_id, start)
    requested = add_booking(
        runtime, alice.provider_id, start + timedelta(days=1), status="requested"
    )
    add_booking(runtime, alice.provider_id, start + timedelta(days=2), status="cancelled")
    redirect = httpx.get(f"{dav_base}/.well-known/caldav", follow_redirects=False)
    assert redirect.status_code == 301 and redirect.headers["location"] == "/dav/"

    client = _client(dav_base, alice.username, alice.password)
    names = sorted(str(c.url).rstrip("/").rsplit("/", 1)[1] for c in client.principal().calendars())
    assert names == ["blocks", "bookings"]
    bookings = calendar_named(client, "bookings")
    found = bookings.search(start=MARCH, end=MARCH + timedelta(days=30), event=True)
    by_uid = {e.icalendar_component["UID"]: e for e in found}
    assert set(by_uid) == {confirmed.uid, requested.uid}
    assert str(by_uid[confirmed.uid].icalendar_component["STATUS"]) == "CONFIRMED"
    assert str(by_uid[requested.uid].icalendar_component["STATUS"]) == "TENTATIVE"
    assert by_uid[confirmed.uid].icalendar_component["SEQUENCE"] == 2
    text = "".join(e.data for e in found)
    assert "Ada Guest" in text and "ada.secret@guest.example" not in text
    assert bookings.search(start=MARCH + timedelta(days=40), end=MARCH + timedelta(days=50)) == []


def test_bookings_calendar_is_read_only(runtime: Runtime, dav_base: str) -> None:
    alice = add_provider(runtime, "alice")
    url = f"{dav_base}/dav/alice/bookings/mine.ics"
    response = httpx.put(
        url,
        content=event_ics("mine", MARCH),
        auth=(alice.username, alice.password),
        headers={"Content-Type": "text/calendar"},
    )
    assert response.status_code == 403
    assert "read-only" in response.text and "blocks" in response.text


def test_blocks_writes_are_busy_time_and_sync(runtime: Runtime, dav_base: str) -> None:
    alice = add_provider(runtime, "alice")
    client = _client(dav_base, alice.username, alice.password)
    blocks = calendar_named(client, "blocks")
    token = blocks.objects(load_objects=False).sync_token
    start = datetime(2030, 3, 10, 8, tzinfo=UTC)
    event = blocks.save_event(event_ics("dentist-1", start))
    assert _busy(runtime, alice.provider_id) == [(start, start + timedelta(hours=1))]

    changed = blocks.objects_by_sync_token(sync_token=token, load_objects=False)
    assert [str(o.url).rsplit("/", 1)[1] for o in changed] == [str(event.url).rsplit("/", 1)[1]]
    unchanged = blocks.objects_by_sync_token(sync_token=changed.sync_token, load_objects=False)
    assert list(unchanged) == []

    event.icalendar_component["DTSTART"].dt = start + timedelta(hours=2)
    event.icalendar_component["DTEND"].dt = start + timedelta(hours=4)
    event.save()
    assert _busy(runtime, alice.provider_id) == [
        (start + timedelta(hours=2), start + timedelta(hours=4))
    ]
    hits = blocks.search(start=start, end=start + timedelta(hours=3), event=True)
    assert [h.icalendar_component["UID"] for h in hits] == ["dentist-1"]
    assert blocks.search(start=start, end=start + timedelta(hours=1), event=True) == []

    event.delete()
    assert _busy(runtime, alice.provider_id) == []
    after_delete = blocks.objects_by_sync_token(sync_token=unchanged.sync_token, load_objects=False)
    assert len(list(after_delete)) == 1  # reported as removed


def test_recurring_transparent_and_cancelled(runtime: Runtime, dav_base: str) -> None:
    alice = add_provider(runtime, "alice")
    blocks = calendar_named(_client(dav_base, alice.username, alice.password), "blocks")
    start = datetime(2030, 3, 4, 12, tzinfo=UTC)
    blocks.save_event(event_ics("weekly", start, extra="RRULE:FREQ=WEEKLY;COUNT=3\r\n"))
    blocks.save_event(event_ics("free", start + timedelta(days=1), extra="TRANSP:TRANSPARENT\r\n"))
    blocks.save_event(event_ics("off", start + timedelta(days=2), extra="STATUS:CANCELLED\r\n"))
    assert [s for s, _ in _busy(runtime, alice.provider_id)] == [
        start + timedelta(weeks=k) for k in range(3)
    ]
    hits = blocks.search(start=start + timedelta(days=13), end=start + timedelta(days=15))
    assert [h.icalendar_component["UID"] for h in hits] == ["weekly"]


def test_mkcalendar_blocking_flag_and_delete(runtime: Runtime, dav_base: str) -> None:
    alice = add_provider(runtime, "alice")
    client = _client(dav_base, alice.username, alice.password)
    gym = client.principal().make_calendar(name="Gym", cal_id="gym")
    start = datetime(2030, 3, 12, 18, tzinfo=UTC)
    gym.save_event(event_ics("gym-1", start))
    assert _busy(runtime, alice.provider_id) == [(start, start + timedelta(hours=1))]
    with runtime.sessions.begin() as session:
        dav.set_blocking(session, alice.provider_id, "gym", False)
    assert _busy(runtime, alice.provider_id) == []
    with runtime.sessions.begin() as session:
        dav.set_blocking(session, alice.provider_id, "gym", True)
    assert _busy(runtime, alice.provider_id) != []
    gym.delete()
    assert _busy(runtime, alice.provider_id) == []


def test_providers_are_isolated(runtime: Runtime, dav_base: str) -> None:
    alice = add_provider(runtime, "alice")
    bob = add_provider(runtime, "bob")
    add_booking(runtime, bob.provider_id, datetime(2030, 3, 5, 10, tzinfo=UTC))
    auth = (alice.username, alice.password)
    for method, path in [
        ("PROPFIND", "/dav/bob/"),
        ("PROPFIND", "/dav/bob/bookings/"),
        ("GET", "/dav/bob/bookings/"),
        ("PUT", "/dav/bob/blocks/x.ics"),
        ("DELETE", "/dav/bob/blocks/"),
    ]:
        response = httpx.request(
            method,
            f"{dav_base}{path}",
            auth=auth,
            content=event_ics("x", MARCH) if method == "PUT" else None,
        )
        assert response.status_code in (403, 404), (method, path, response.status_code)
    root = httpx.request("PROPFIND", f"{dav_base}/dav/", auth=auth, headers={"Depth": "1"})
    assert "/dav/alice/" in root.text and "/dav/bob/" not in root.text


def test_wrong_and_revoked_passwords(runtime: Runtime, dav_base: str) -> None:
    alice = add_provider(runtime, "alice")
    url = f"{dav_base}/dav/alice/"
    assert httpx.request("PROPFIND", url, auth=(alice.username, alice.password)).status_code == 207
    assert httpx.request("PROPFIND", url, auth=(alice.username, "nope")).status_code == 401
    with runtime.sessions.begin() as session:
        app_passwords.revoke(session, alice.provider_id, alice.password_id, runtime.clock())
    assert httpx.request("PROPFIND", url, auth=(alice.username, alice.password)).status_code == 401


_CTAG_BODY = (
    '<?xml version="1.0"?><propfind xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
    "<prop><CS:getctag/></prop></propfind>"
)


def _ctag(base: str, user: str, password: str, name: str) -> str:
    response = httpx.request(
        "PROPFIND",
        f"{base}/dav/{user}/{name}/",
        auth=(user, password),
        headers={"Depth": "0"},
        content=_CTAG_BODY,
    )
    found = re.search(r"getctag>([^<]+)<", response.text)
    assert found, response.text
    return found.group(1)


@pytest.mark.parametrize("name", ["bookings", "blocks"])
def test_ctag_changes_with_content(runtime: Runtime, dav_base: str, name: str) -> None:
    alice = add_provider(runtime, "alice")
    before = _ctag(dav_base, alice.username, alice.password, name)
    assert before == _ctag(dav_base, alice.username, alice.password, name)
    if name == "bookings":
        add_booking(runtime, alice.provider_id, datetime(2030, 3, 5, 10, tzinfo=UTC))
    else:
        calendar_named(_client(dav_base, alice.username, alice.password), name).save_event(
            event_ics("e1", MARCH)
        )
    assert _ctag(dav_base, alice.username, alice.password, name) != before
