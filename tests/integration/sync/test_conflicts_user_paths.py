"""A double booking across Airbnb and Booking.com, as the people who must act on it see it.

A unit made over the API imports both platforms' calendars; two guests' stays overlap.
``GET /conflicts`` says so in words, and the worker's ``conflicts.notify`` job mails the
unit's provider once (through the outbox), however often the calendars are polled again
and the job runs.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.jobs import JobContext
from core.runtime import Runtime
from core.services.conflicts import NOTIFY_JOB
from parley.handlers import job_handlers
from tests.conftest import DATA
from tests.integration.sync.conftest import (
    CHECK_IN_HOURS,
    Clock,
    FeedServer,
    TestClient,
    add_source,
    sync_now,
)
from tests.integration.sync.feeds import all_day, calendar

NOW = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)


def _notify(runtime: Runtime) -> None:
    context = JobContext(sessions=runtime.sessions, now=NOW, services={"runtime": runtime})
    job_handlers()[NOTIFY_JOB](context, {})


def _conflict_mails(api: TestClient, headers: dict[str, str]) -> list[dict[str, object]]:
    listed = api.get("/api/v1/outbound-messages", headers=headers)
    assert listed.status_code == 200, listed.text
    return [m for m in listed.json()["items"] if "overlap" in str(m["subject"])]


def test_a_double_booking_is_listed_in_words_and_mailed_once(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    body = {"name": "Casa Azul", "email": "casa@host.example", "timezone": "UTC",
            "slug": "casa-azul", "kind": "unit"}  # fmt: skip
    made = api.post("/api/v1/providers", json=body, headers=admin_headers)
    assert made.status_code == 201, made.text
    unit = made.json()["id"]
    hours = api.put(
        f"/api/v1/providers/{unit}/availability", json=CHECK_IN_HOURS, headers=admin_headers
    )
    assert hours.status_code == 200, hours.text
    airbnb = (DATA / "feeds" / "airbnb.ics").read_bytes()  # HMABCD1234 stays 3–7 June
    booking = calendar(
        all_day("b7@booking.com", date(2025, 6, 5), 3, "Guest stay"),
        prodid="-//Booking.com//Calendar//EN",
    )
    sources = [
        add_source(api, admin_headers, unit, feed_server.put("/airbnb.ics", airbnb)),
        add_source(api, admin_headers, unit, feed_server.put("/booking.ics", booking)),
    ]
    for source in sources:
        assert sync_now(api, admin_headers, source)["status"] == "ok"

    listed = api.get("/api/v1/conflicts", params={"status": "open"}, headers=admin_headers)
    assert listed.status_code == 200, listed.text
    (conflict,) = listed.json()["items"]
    sentence = conflict["description"]
    assert conflict["unit"] == "Casa Azul"
    assert sentence.startswith("Airbnb reservation HMAB… and Booking.com reservation")
    assert "overlap on 5–6 June at Casa Azul" in sentence and "kept" in sentence
    assert sentence.endswith("needs review."), sentence

    for address, role in (("owner@host.example", "owner"), ("viewer@host.example", "viewer")):
        added = api.post("/api/v1/tenants/default/operators", json={"email": address,
                         "role": role}, headers=admin_headers)  # fmt: skip
        assert added.status_code == 201, added.text
    assert _conflict_mails(api, admin_headers) == []
    _notify(runtime)
    for source in sources:  # polled again: the same conflict, not a new one
        assert sync_now(api, admin_headers, source)["status"] == "ok"
    _notify(runtime)
    # The unit's provider and the console's owner (a viewer may not resolve: not told).
    mails = _conflict_mails(api, admin_headers)
    assert sorted(m["recipient"] for m in mails) == ["casa@host.example", "owner@host.example"]
    mail = next(m for m in mails if m["recipient"] == "casa@host.example")
    with runtime.sessions() as session:
        row = session.get(OutboundMessage, mail["id"])
        assert row is not None
        message = email.message_from_bytes(row.mime, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and sentence in " ".join(text.get_content().split())

    # Another conflict (a second overlapping stay) is mailed on its own.
    more = calendar(
        all_day("b7@booking.com", date(2025, 6, 5), 3, "Guest stay"),
        all_day("b8@booking.com", date(2025, 6, 16), 2, "Guest stay"),
        prodid="-//Booking.com//Calendar//EN",
    )
    feed_server.put("/booking.ics", more)
    assert sync_now(api, admin_headers, sources[1])["status"] == "ok"
    _notify(runtime)
    assert len(_conflict_mails(api, admin_headers)) == 4
    with runtime.sessions() as session:
        kinds = session.scalars(select(OutboundMessage.kind)).all()
    assert kinds.count("notice.conflict_review") == 4


def test_one_guest_on_two_platforms_is_one_stay_not_a_conflict(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    # The Airbnb stay (phone ending 2833, 3–7 June) relisted on Booking.com a day later
    # with the same phone ending: a fuzzy duplicate, merged; no double booking is raised.
    runtime.clock = Clock(NOW)
    body = {"name": "Loft", "email": "loft@host.example", "timezone": "UTC", "slug": "loft",
            "kind": "unit"}  # fmt: skip
    unit = api.post("/api/v1/providers", json=body, headers=admin_headers).json()["id"]
    airbnb = (DATA / "feeds" / "airbnb.ics").read_bytes()
    booking = calendar(
        all_day("b9@booking.com", date(2025, 6, 4), 3, "Guest stay",
                DESCRIPTION="Guest: A. Guest\\nPhone: ****2833"),
        prodid="-//Booking.com//Calendar//EN",
    )  # fmt: skip
    for path, feed in (("/air.ics", airbnb), ("/bk.ics", booking)):
        source = add_source(api, admin_headers, unit, feed_server.put(path, feed))
        assert sync_now(api, admin_headers, source)["status"] == "ok"
    listed = api.get("/api/v1/conflicts", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    assert not [c for c in listed.json()["items"] if "Booking.com" in c["description"]]
