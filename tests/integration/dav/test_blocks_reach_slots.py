"""What a provider saves from a calendar app into `blocks` (or a calendar they made) is
busy time everywhere a guest looks: the slots API, its explanation, hold creation and the
booking page — all over HTTP against a real server, events written by the caldav client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import caldav
import httpx
import pytest

from core.runtime import Runtime
from tests.conftest import ADMIN_TOKEN
from tests.integration.api.helpers import HOURS, Clock
from tests.integration.dav.conftest import calendar_named, event_ics

NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1
WEDNESDAY = "2030-03-06"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api(runtime: Runtime, dav_base: str) -> Iterator[httpx.Client]:
    runtime.clock = Clock(NOW)
    with httpx.Client(base_url=dav_base, headers=ADMIN, timeout=30) as client:
        yield client


@pytest.fixture
def provider(api: httpx.Client) -> dict[str, Any]:
    body = {
        "name": "Dana",
        "email": "dana@example.org",
        "timezone": "Europe/Berlin",
        "slug": "dana",
    }
    created = api.post("/api/v1/providers", json=body)
    assert created.status_code == 201, created.text
    provider_id = created.json()["id"]
    hours = api.put(f"/api/v1/providers/{provider_id}/availability", json=HOURS)
    assert hours.status_code == 200, hours.text
    issued = api.post(f"/api/v1/providers/{provider_id}/app-passwords", json={"label": "phone"})
    assert issued.status_code == 201, issued.text
    return {**issued.json(), "id": provider_id}


@pytest.fixture
def calendar_app(dav_base: str, provider: dict[str, Any]) -> Iterator[caldav.DAVClient]:
    client = caldav.DAVClient(
        url=f"{dav_base}/dav/", username=provider["username"], password=provider["password"]
    )
    yield client
    client.close()


def _starts(api: httpx.Client, provider_id: str, day: str = WEDNESDAY) -> list[str]:
    answer = api.get(
        f"/api/v1/providers/{provider_id}/slots",
        params={"start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z", "duration": "60"},
    )
    assert answer.status_code == 200, answer.text
    return [slot["start"] for slot in answer.json()["slots"]]


def _hold(api: httpx.Client, provider_id: str, start: str, end: str) -> httpx.Response:
    body = {"provider_id": provider_id, "start": start, "end": end, "guest_email": "g@example.net"}
    return api.post("/api/v1/holds", json=body, headers={"Authorization": ""})


def test_dentist_in_blocks_is_not_bookable(
    api: httpx.Client, provider: dict[str, Any], calendar_app: caldav.DAVClient
) -> None:
    pid = provider["id"]
    ten = f"{WEDNESDAY}T09:00:00Z"  # 10:00 in Berlin
    assert ten in _starts(api, pid)
    blocks = calendar_named(calendar_app, "blocks")
    event = blocks.save_event(event_ics("dentist", datetime(2030, 3, 6, 9, tzinfo=UTC)))

    assert ten not in _starts(api, pid)
    assert f"{WEDNESDAY}T08:00:00Z" in _starts(api, pid)  # the hour before stays free
    explained = api.get(
        f"/api/v1/providers/{pid}/slots/explain", params={"at": ten, "duration": "60"}
    ).json()
    assert explained["bookable"] is False
    assert [r["code"] for r in explained["reasons"]] == ["busy_external"], explained
    taken = _hold(api, pid, ten, f"{WEDNESDAY}T10:00:00Z")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "slot_taken"

    # Moved in the calendar app: the old hour is free again, the new one is busy.
    event.icalendar_component["DTSTART"].dt = datetime(2030, 3, 6, 13, tzinfo=UTC)
    event.icalendar_component["DTEND"].dt = datetime(2030, 3, 6, 14, tzinfo=UTC)
    event.save()
    starts = _starts(api, pid)
    assert ten in starts and f"{WEDNESDAY}T13:00:00Z" not in starts

    event.delete()
    assert f"{WEDNESDAY}T13:00:00Z" in _starts(api, pid)
    held = _hold(api, pid, f"{WEDNESDAY}T13:00:00Z", f"{WEDNESDAY}T14:00:00Z")
    assert held.status_code == 201, held.text


def test_weekly_block_and_a_calendar_that_stops_blocking(
    api: httpx.Client, provider: dict[str, Any], calendar_app: caldav.DAVClient
) -> None:
    pid = provider["id"]
    gym = calendar_app.principal().make_calendar(name="Gym", cal_id="gym")
    weekly = "RRULE:FREQ=WEEKLY;BYDAY=WE\r\n"
    gym.save_event(event_ics("gym", datetime(2030, 3, 6, 15, tzinfo=UTC), extra=weekly))
    for week in range(4):
        day = (datetime(2030, 3, 6) + timedelta(weeks=week)).date().isoformat()
        assert f"{day}T15:00:00Z" not in _starts(api, pid, day), day
    page = api.get("/book/dana", params={"from": WEDNESDAY})
    assert page.status_code == 200

    off = api.patch(f"/api/v1/providers/{pid}/calendars/gym", json={"blocking": False})
    assert off.status_code == 200, off.text
    assert f"{WEDNESDAY}T15:00:00Z" in _starts(api, pid)
    on = api.patch(f"/api/v1/providers/{pid}/calendars/gym", json={"blocking": True})
    assert on.status_code == 200, on.text
    assert f"{WEDNESDAY}T15:00:00Z" not in _starts(api, pid)

    gym.delete()
    assert f"{WEDNESDAY}T15:00:00Z" in _starts(api, pid)


def test_transparent_and_cancelled_events_do_not_block(
    api: httpx.Client, provider: dict[str, Any], calendar_app: caldav.DAVClient
) -> None:
    pid = provider["id"]
    blocks = calendar_named(calendar_app, "blocks")
    blocks.save_event(
        event_ics("free", datetime(2030, 3, 6, 9, tzinfo=UTC), extra="TRANSP:TRANSPARENT\r\n")
    )
    blocks.save_event(
        event_ics("off", datetime(2030, 3, 6, 11, tzinfo=UTC), extra="STATUS:CANCELLED\r\n")
    )
    starts = _starts(api, pid)
    assert f"{WEDNESDAY}T09:00:00Z" in starts and f"{WEDNESDAY}T11:00:00Z" in starts


def test_objects_stored_before_spans_existed_are_expanded_by_the_job(
    runtime: Runtime,
    api: httpx.Client,
    provider: dict[str, Any],
    calendar_app: caldav.DAVClient,
) -> None:
    from sqlalchemy import delete

    from core.db.models import DavBusy
    from core.jobs import JobContext
    from parley.handlers import job_handlers

    pid = provider["id"]
    calendar_named(calendar_app, "blocks").save_event(
        event_ics("old", datetime(2030, 3, 6, 9, tzinfo=UTC))
    )
    with runtime.sessions.begin() as session:  # as after migration 0005 on an old database
        session.execute(delete(DavBusy))
    assert f"{WEDNESDAY}T09:00:00Z" in _starts(api, pid)
    context = JobContext(sessions=runtime.sessions, now=NOW, services={"runtime": runtime})
    job_handlers()["dav.spans"](context, {})
    assert f"{WEDNESDAY}T09:00:00Z" not in _starts(api, pid)
