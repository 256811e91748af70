"""GET /api/v1/stats: the KPIs of a period from the rows that real actions left.

Everything is made through the public surfaces (booking API, admin API, the approve and
decline pages, the links in the outbox mail, a real feed server), time passes on the
runtime's clock, and the expiry jobs run as the worker runs them. The one exception is
releasing a hold: no surface does it yet, so the service is called.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest

from core.runtime import Runtime
from core.services.expiry import expire_holds
from core.services.holds import release_hold
from core.services.proposals import expire_proposals
from tests.integration.api.helpers import NOW, Clock, TestClient, client_for, hold_body
from tests.integration.api.helpers import make_provider as provider_with_hours
from tests.integration.negotiation.helpers import GUEST, links, outbox
from tests.integration.sync.conftest import FeedServer, serving
from tests.integration.sync.feeds import calendar, timed

TUE = "2027-03-02"
STATS = "/api/v1/stats"


def _hold(client: TestClient, provider: str, hour: int, day: str = TUE) -> str:
    start, end = f"{day}T{hour:02}:00:00Z", f"{day}T{hour:02}:30:00Z"
    answer = client.post("/api/v1/holds", json=hold_body(provider, start, end))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _book(client: TestClient, provider: str, hour: int, status: str) -> str:
    confirmed = client.post(f"/api/v1/holds/{_hold(client, provider, hour)}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    booking = confirmed.json()["booking"]
    assert booking["status"] == status
    return str(booking["id"])


def _admin(client: TestClient, headers: dict[str, str], path: str) -> None:
    answer = client.post(path, headers=headers)
    assert answer.status_code == 200, answer.text


def _reschedule_link(runtime: Runtime, booking: str, to: str) -> str:
    """The "Request a new time" link of the latest invitation ``to`` got for ``booking``."""
    mail = [r for r in outbox(runtime) if r.booking_id == booking and r.recipient == to]
    return unquote(links([r for r in mail if r.method == "REQUEST"][-1])["reschedule"])


def _propose(client: TestClient, runtime: Runtime, booking: str, by: str, start: str) -> None:
    end = start.replace(":00:00Z", ":30:00Z")
    body = {"token": _reschedule_link(runtime, booking, by), "start": start, "end": end}
    answer = client.post("/api/v1/reschedule/propose", json=body)
    assert answer.status_code == 201, answer.text


def _answer(client: TestClient, runtime: Runtime, booking: str, verb: str) -> None:
    """Click approve or decline in the latest approval request about ``booking``."""
    asked = [r for r in outbox(runtime) if r.kind == "notice.approval_request"]
    token = unquote(links([r for r in asked if r.booking_id == booking][-1])[verb])
    answer = client.post(f"/{verb}", data={"t": token})
    assert answer.status_code == 200, answer.text


def _stats(client: TestClient, headers: dict[str, str], **query: str) -> dict[str, Any]:
    answer = client.get(STATS, params=query, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _a_busy_day(runtime: Runtime, headers: dict[str, str], feeds: FeedServer) -> tuple[Clock, str]:
    """Three providers and a day of holds, bookings, polls and proposals; returns the
    clock and ada's id.

    ada: instant book, a calendar that syncs (then answers 304); bob: instant book, but
    his calendar fails, so the freshness gate turns his booking into a request; cyd:
    request-to-book by choice.
    """
    clock = Clock(NOW)
    client = client_for(runtime, clock)
    ada, bob = (
        provider_with_hours(client, headers, "ada"),
        provider_with_hours(client, headers, "bob"),
    )
    cyd = provider_with_hours(client, headers, "cyd", instant_book=False)
    good = feeds.put("/ada.ics", calendar(timed("x@y", NOW + timedelta(days=4))), etag='"1"')
    bad = feeds.put("/bob.ics", "down", status=503)
    ada_calendar, bob_calendar = (
        _source(client, headers, ada, good),
        _source(client, headers, bob, bad),
    )
    for source in (ada_calendar, ada_calendar, bob_calendar):  # ok, 304, error
        _admin(client, headers, f"/api/v1/sources/{source}/sync")

    a1, a2 = _book(client, ada, 9, "confirmed"), _book(client, ada, 10, "confirmed")
    _hold(client, ada, 11)  # left to expire
    released = _hold(client, ada, 12)
    with runtime.sessions.begin() as session:
        release_hold(session, released, clock.now)
    b1, c1 = _book(client, bob, 9, "requested"), _book(client, cyd, 9, "requested")
    _admin(client, headers, f"/api/v1/bookings/{a2}/cancel")
    _admin(client, headers, f"/api/v1/bookings/{b1}/approve")
    _admin(client, headers, f"/api/v1/bookings/{c1}/decline")

    _propose(client, runtime, a1, GUEST, "2027-03-03T13:00:00Z")
    _propose(client, runtime, b1, GUEST, "2027-03-03T13:00:00Z")
    clock.now = NOW + timedelta(hours=1)
    _answer(client, runtime, a1, "approve")  # an hour after it was asked
    clock.now = NOW + timedelta(hours=3)
    _answer(client, runtime, b1, "approve")  # three hours after
    _propose(client, runtime, a1, "ada@example.org", "2027-03-04T10:00:00Z")
    _answer(client, runtime, a1, "decline")
    _propose(client, runtime, b1, "bob@example.org", "2027-03-04T10:00:00Z")  # never answered
    return clock, ada


def _source(client: TestClient, headers: dict[str, str], provider: str, url: str) -> str:
    added = client.post(f"/api/v1/providers/{provider}/sources", json={"url": url}, headers=headers)
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


def test_a_busy_day_in_figures(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    # Catches: a ratio over the wrong denominator (request-to-book providers counted as
    # failed instant books, still-active holds counted as settled), an expired hold counted
    # twice or not until the job ran, declines counted as cancellations, reschedule time
    # measured from the booking instead of the proposal, and a 304 counted as an error.
    with serving(FeedServer()) as feeds:
        clock, ada = _a_busy_day(runtime, admin_headers, feeds)
    client = client_for(runtime, clock)
    day = {"from": "2027-03-01", "to": "2027-03-03"}  # to: the whole of 3 March
    before_jobs = _stats(client, admin_headers, **day)
    assert before_jobs["holds"]["expired"] == 1  # past its TTL: expired as readers see it

    clock.now = NOW + timedelta(hours=52)  # past the TTL of the last proposal too
    expire_holds(runtime.sessions, clock.now)
    with runtime.sessions.begin() as session:
        expire_proposals(session, clock.now)
    clock.now += timedelta(minutes=1)
    _hold(client, ada, 13, day="2027-03-04")  # still active: not settled, not in the ratio
    searched = client.get(
        f"/api/v1/providers/{ada}/slots",
        params={"start": "2027-03-04T00:00:00Z", "end": "2027-03-05T00:00:00Z", "duration": "30"},
    )
    assert searched.status_code == 200, searched.text
    body = _stats(client, admin_headers, **day)

    assert (body["from"], body["to"]) == ("2027-03-01T00:00:00Z", "2027-03-04T00:00:00Z")
    assert body["scope"] == {"tenant": "default"}
    assert body["bookings"] == {
        "created": 4, "confirmed": 3, "cancelled": 1, "declined": 1, "instant": 2, "request": 2,
    }  # fmt: skip
    assert body["holds"] == {
        "created": 7, "converted": 4, "expired": 1, "released": 1, "active": 1,
    }  # fmt: skip
    assert body["proposals"] == {"created": 4, "approved": 2, "declined": 1, "expired": 1}
    assert body["instant_book_success_rate"] == pytest.approx(2 / 3)  # cyd is not counted
    assert body["holds_expired_unused_ratio"] == pytest.approx(1 / 6)
    assert body["time_to_reschedule_seconds"] == {
        "median": pytest.approx(7200), "p95": pytest.approx(3600 + 0.95 * 7200), "count": 2,
    }  # fmt: skip
    assert body["ics_polls"] == {"total": 3, "error": 1}
    assert body["ics_error_rate"] == pytest.approx(1 / 3)
    assert body["feasibility_scope"] == "process"
    assert body["feasibility_p95_ms"] > 0  # this process has searched slots at least once

    default = _stats(client, admin_headers)  # the 7 days before now
    assert default["to"] == "2027-03-03T12:01:00Z" and default["from"] == "2027-02-24T12:01:00Z"
    assert default["bookings"] == body["bookings"] and default["proposals"] == body["proposals"]
    assert default["holds"]["created"] == 6  # to is exclusive: the hold placed at now is not in

    # Between 08:30 and 09:30 UTC on 1 March (no offset: UTC) only the first approval fell.
    hour = _stats(
        client, admin_headers, **{"from": "2027-03-01T08:30:00", "to": "2027-03-01T10:30:00+01:00"}
    )
    assert hour["time_to_reschedule_seconds"] == {"median": 3600.0, "p95": 3600.0, "count": 1}
    assert hour["proposals"] == {"created": 0, "approved": 1, "declined": 0, "expired": 0}
    assert hour["bookings"]["created"] == 0 and hour["holds"]["created"] == 0
    assert hour["holds_expired_unused_ratio"] is None and hour["ics_error_rate"] is None


def test_a_period_without_data_answers_nulls_not_zero_divisions(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider_with_hours(client, admin_headers, "ada")
    body = _stats(client, admin_headers, **{"from": "2027-02-01", "to": "2027-02-07"})
    assert body["instant_book_success_rate"] is None
    assert body["holds_expired_unused_ratio"] is None
    assert body["ics_error_rate"] is None
    assert body["time_to_reschedule_seconds"] == {"median": None, "p95": None, "count": 0}
    assert set(body["bookings"].values()) == set(body["holds"].values()) == {0}
    assert set(body["proposals"].values()) == set(body["ics_polls"].values()) == {0}


@pytest.mark.parametrize(
    "query,code",
    [
        ({"from": "last week"}, "invalid_time"),
        ({"to": "2027-02-30"}, "invalid_time"),
        ({"from": "2027-03-02", "to": "2027-03-01"}, "invalid_range"),
        ({"from": "2027-03-01T12:00:00Z", "to": "2027-03-01T11:59:59Z"}, "invalid_range"),
        ({"from": "2025-01-01", "to": "2026-06-01"}, "range_too_long"),
        ({"from": "1899-12-31", "to": "1900-01-02"}, "out_of_range"),
        ({"from": "2200-12-30T00:00:00Z", "to": "2201-01-01T00:00:00Z"}, "out_of_range"),
    ],
)
def test_bad_periods_are_400s(
    runtime: Runtime, admin_headers: dict[str, str], query: dict[str, str], code: str
) -> None:
    answer = client_for(runtime).get(STATS, params=query, headers=admin_headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    if code == "invalid_time":  # says which value, as it was given
        assert any(repr(value) in error["message"] for value in query.values())


def test_a_leap_year_is_not_too_long(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    body = _stats(client_for(runtime), admin_headers, **{"from": "2028-01-01", "to": "2028-12-31"})
    assert (body["from"], body["to"]) == ("2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z")


def test_stats_need_the_admin_token(runtime: Runtime) -> None:
    client = client_for(runtime)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        answer = client.get(STATS, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"


def test_openapi_documents_stats(runtime: Runtime) -> None:
    operation = client_for(runtime).get("/api/v1/openapi.json").json()["paths"][STATS]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"from", "to"}
    assert {"200", "400", "401"} <= set(operation["responses"])
