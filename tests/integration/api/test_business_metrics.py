"""Business metrics and ``cal.*`` events after real actions, read the way an admin reads them.

Each test scrapes ``/metrics`` over HTTP before and after driving the public API, and
asserts the change, so counts left by other tests in this process do not matter. The
structured log is captured with structlog's own test helper and its tags are asserted.
"""

from __future__ import annotations

from datetime import timedelta

from structlog.testing import capture_logs

from core.runtime import Runtime
from core.services.expiry import expire_holds
from tests.integration.api.helpers import Clock, client_for, hold_body, make_provider
from tests.metrics import events, measured

MON = "2027-03-08"


def test_slot_search_is_timed_and_logged_with_the_seed_tags(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    # 1 March 08:00 UTC now, lead time 24 h: the first day asked for is partly cut off.
    query = {"start": "2027-03-01T00:00:00Z", "end": "2027-03-06T00:00:00Z", "duration": 30}
    with measured(client) as box, capture_logs() as logs:
        found = client.get(f"/api/v1/providers/{provider}/slots", params=query)
    assert found.status_code == 200
    delta = box[0]
    assert delta("parley_feasibility_seconds_count", surface="api") == 1
    assert delta("parley_feasibility_slots_count", surface="api") == 1
    assert delta("parley_feasibility_slots_sum", surface="api") == len(found.json()["slots"])
    assert delta("parley_feasibility_truncated_total", surface="api") == 1
    (event,) = events(logs, "cal.feasible.generated")
    assert event["slot_count"] == len(found.json()["slots"]) > 0
    assert event["truncated"] is True and event["surface"] == "api"
    # Tuesday 2 to Friday 5 March (local) hold one window each; the cut Monday one more.
    assert event["candidate_windows"] >= 4 and event["duration_ms"] >= 0

    with measured(client) as box, capture_logs() as logs:
        page = client.get("/book/ada", params={"from": "2027-03-08"})
    assert page.status_code == 200
    assert box[0]("parley_feasibility_seconds_count", surface="page") == 1
    assert events(logs, "cal.feasible.generated")[0]["truncated"] is False


def test_hold_book_cancel_and_refusals_move_their_counters(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    body = hold_body(provider, f"{MON}T09:00:00+01:00", f"{MON}T09:30:00+01:00")
    with measured(client) as box, capture_logs() as logs:
        hold = client.post("/api/v1/holds", json=body)
        taken = client.post("/api/v1/holds", json=body)
    assert hold.status_code == 201 and taken.status_code == 409
    delta = box[0]
    assert delta("parley_holds_created_total", source="api") == 1
    assert delta("parley_hold_overlap_refusals_total", source="api") == 1
    (created,) = events(logs, "cal.hold.created")
    ttl_minutes = runtime.settings.hold_ttl_seconds / 60
    assert created["source"] == "api" and created["ttl_minutes"] == ttl_minutes
    assert created["overlap_detected"] is False
    (refused,) = events(logs, "cal.hold.refused")
    assert refused["overlap_detected"] is True and refused["provider_id"] == provider

    hold_id = hold.json()["id"]
    with measured(client) as box, capture_logs() as logs:
        booked = client.post(f"/api/v1/holds/{hold_id}/confirm", json={})
        cancelled = client.post(
            f"/api/v1/bookings/{booked.json()['booking']['id']}/cancel",
            json={},
            headers=admin_headers,
        )
    assert booked.status_code in (200, 201) and cancelled.status_code == 200
    delta = box[0]
    assert delta("parley_holds_converted_total") == 1
    assert delta("parley_booking_attempts_total", mode="instant", outcome="ok") == 1
    assert delta("parley_bookings_created_total", mode="instant") == 1
    assert delta("parley_bookings_confirmed_total", mode="instant") == 1
    assert delta("parley_bookings_cancelled_total") == 1
    assert events(logs, "cal.hold.converted")[0]["booking_id"] == booked.json()["booking"]["id"]
    assert events(logs, "cal.event.confirmed")[0]["mode"] == "instant"
    assert events(logs, "cal.event.cancelled")[0]["booking_id"] == booked.json()["booking"]["id"]

    # A hold confirmed after its TTL is an attempt refused.
    late = client.post(
        "/api/v1/holds",
        json={**body, "start": f"{MON}T10:00:00+01:00", "end": f"{MON}T10:30:00+01:00"},
    )
    assert late.status_code == 201
    clock = Clock(runtime.clock() + timedelta(seconds=runtime.settings.hold_ttl_seconds + 1))
    runtime.clock = clock
    with measured(client) as box, capture_logs() as logs:
        expired = expire_holds(runtime.sessions, clock.now)
        refused_late = client.post(f"/api/v1/holds/{late.json()['id']}/confirm", json={})
    assert expired == 1 and refused_late.status_code == 409
    assert refused_late.json()["error"]["code"] == "hold_expired"
    assert box[0]("parley_holds_expired_total") == 1
    assert box[0]("parley_booking_attempts_total", mode="instant", outcome="refused") == 1
    assert events(logs, "cal.hold.expired")[0]["ttl_minutes"] == ttl_minutes


def test_request_to_book_counts_by_mode_until_approved(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, instant_book=False)
    body = hold_body(provider, f"{MON}T11:00:00+01:00", f"{MON}T11:30:00+01:00")
    with measured(client) as box, capture_logs() as logs:
        hold = client.post("/api/v1/holds", json=body)
        booking = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json={}).json()[
            "booking"
        ]
        approved = client.post(f"/api/v1/bookings/{booking['id']}/approve", headers=admin_headers)
    assert booking["status"] == "requested" and approved.status_code == 200
    delta = box[0]
    assert delta("parley_booking_attempts_total", mode="request", outcome="ok") == 1
    assert delta("parley_bookings_created_total", mode="request") == 1
    assert delta("parley_bookings_confirmed_total", mode="request") == 1
    assert delta("parley_bookings_confirmed_total", mode="instant") == 0
    assert events(logs, "cal.event.requested")[0]["mode"] == "request"
    assert events(logs, "cal.event.confirmed")[0]["change"] == "approved"


def test_rule_updates_and_exceptions_are_logged_with_their_tags(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    with capture_logs() as logs:
        make_provider(
            client,
            admin_headers,
            exceptions=[
                {"date": "2027-03-10", "kind": "unavailable"},
                {"date": "2027-03-13", "kind": "available", "start": "10:00", "end": "12:00"},
            ],
        )
    (rule,) = events(logs, "cal.rule.updated")
    assert rule["weekday_mask"] == 0b11111 and rule["timezone"] == "Europe/Berlin"
    assert rule["lead_time_hours"] == 24
    spans = {(e["kind"], e["span_minutes"]) for e in events(logs, "cal.exception.upserted")}
    assert spans == {("unavailable", 1440), ("available", 120)}


def test_feed_downloads_token_regenerations_and_bad_links(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    url = f"/api/v1/providers/{provider}/feed-token"
    with measured(client) as box, capture_logs() as logs:
        client.post(url, json={"include_holds": False}, headers=admin_headers)
        made = client.post(url, json={"include_holds": True}, headers=admin_headers)
        path = "/" + made.json()["url"].split("://", 1)[1].split("/", 1)[1]
        feed = client.get(path)
        unknown = client.get("/feeds/not-a-token.ics")
        approve = client.get("/approve", params={"t": "forged"})
        propose = client.post(
            "/api/v1/reschedule/propose",
            json={
                "token": "forged-token-xyz",
                "start": f"{MON}T09:00:00Z",
                "end": f"{MON}T09:30:00Z",
            },
        )
    assert feed.status_code == 200 and unknown.status_code == 404
    assert approve.status_code == 404 and propose.status_code == 404
    delta = box[0]
    assert delta("parley_feed_token_regenerations_total") == 2
    assert delta("parley_feed_downloads_total", format="standard") == 1
    assert delta("parley_link_rejections_total", purpose="feed", reason="invalid") == 1
    assert delta("parley_link_rejections_total", purpose="approve", reason="invalid") == 1
    assert delta("parley_link_rejections_total", purpose="reschedule", reason="invalid") == 1
    issued = events(logs, "cal.ics.feed.token_issued")
    assert [e["regenerated"] for e in issued] == [False, True]
    (requested,) = events(logs, "cal.ics.feed.requested")
    assert requested["include_holds"] is True and requested["format"] == "standard"
