"""Conflicts resolved from the console and the API, calendars synced from the console,
and an operator of one tenant kept out of another's rows (404, never 403)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from core.db.models import AuditEntry, Conflict
from core.runtime import Runtime
from tests.conftest import DATA
from tests.integration.api.helpers import Clock, client_for, hold_body, make_provider
from tests.integration.console.helpers import add_operator, make_tenant, post_form, sign_in
from tests.integration.sync.conftest import FeedServer, serving
from tests.integration.sync.feeds import all_day, calendar

NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def _double_booked(client: Any, headers: dict[str, str], feeds: FeedServer) -> tuple[str, str]:
    """A unit whose Airbnb and Booking.com calendars both hold a guest on 4–6 June."""
    unit = make_provider(client, headers, "casa")
    airbnb = feeds.put("/a.ics", (DATA / "feeds" / "airbnb.ics").read_bytes())
    stay = all_day("b1@booking.com", date(2025, 6, 4), 2, "Guest stay")
    booking = feeds.put("/b.ics", calendar(stay, prodid="-//Booking.com//Calendar//EN"))
    ids = []
    for url in (airbnb, booking):
        made = client.post(f"/api/v1/providers/{unit}/sources", json={"url": url}, headers=headers)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
        assert client.post(f"/api/v1/sources/{ids[-1]}/sync", headers=headers).status_code == 200
    return unit, ids[0]


def _open_conflicts(client: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/conflicts", params={"status": "open"}, headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_a_manager_keeps_one_side_of_a_double_booking_from_the_console(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime, Clock(NOW))
    add_operator(client, admin_headers, "default", "viewer@example.org", "viewer")
    add_operator(client, admin_headers, "default", "manager@example.org", "manager")
    with serving(FeedServer()) as feeds:
        _double_booked(client, admin_headers, feeds)
        [conflict] = _open_conflicts(client, admin_headers)

        viewer = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
        sign_in(viewer, runtime, "viewer@example.org")
        assert re.search(r'id="open-conflicts" href="/admin/conflicts"><span class="n">1<',
                         viewer.get("/admin").text)  # fmt: skip
        seen = viewer.get("/admin/conflicts").text
        assert f'id="conflict-{conflict["id"]}"' in seen and "Keep the first" not in seen
        action = f"/admin/conflicts/{conflict['id']}/resolve"
        refused = post_form(viewer, "/admin/conflicts", action, keep="first")
        assert refused.status_code == 403

        manager = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
        sign_in(manager, runtime, "manager@example.org")
        page = manager.get("/admin/conflicts").text
        assert "Keep the first" in page and "Both are real" in page
        done = post_form(manager, "/admin/conflicts", action, keep="second")
        assert done.status_code == 200 and "Conflict resolved." in done.text
        assert "No conflicts need review." in done.text
        # A later poll of a changed feed settles conflicts again, and keeps the person's.
        stays = [all_day("b1@booking.com", date(2025, 6, 4), 2, "Guest stay"),
                 all_day("b2@booking.com", date(2025, 6, 25), 2, "Guest stay")]  # fmt: skip
        feeds.put("/b.ics", calendar(*stays, prodid="-//Booking.com//Calendar//EN"))
        for source in client.get("/api/v1/sources", headers=admin_headers).json()["items"]:
            synced = client.post(f"/api/v1/sources/{source['id']}/sync", headers=admin_headers)
            assert synced.status_code == 200, synced.text
        assert sum(s["events"] for s in client.get("/api/v1/sources",
                   headers=admin_headers).json()["items"]) >= 5  # fmt: skip
    with runtime.sessions() as session:
        row = session.get(Conflict, conflict["id"])
        assert row is not None and row.resolution == "keep_second"
        assert row.winner_id == conflict["second"]["event_id"] and row.resolved_at is not None
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "conflict.resolved"))
        [entry] = audit.all()
    assert entry.subject_id == str(conflict["id"]) and entry.data["keep"] == "second"
    assert entry.actor.startswith("operator:opr_")
    log = manager.get("/admin/audit").text
    assert "conflict.resolved" in log and "manager@example.org" in log
    resolved = manager.get("/admin/conflicts?status=resolved").text
    assert "keep_second" in resolved


def test_resolving_over_the_api_needs_a_manager_and_happens_once(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime, Clock(NOW))
    keys = {}
    for role in ("staff", "manager"):
        made = client.post("/api/v1/tenants/default/api-keys", json={"role": role},
                           headers=admin_headers)  # fmt: skip
        keys[role] = {"Authorization": f"Bearer {made.json()['key']}"}
    with serving(FeedServer()) as feeds:
        _double_booked(client, admin_headers, feeds)
    [conflict] = _open_conflicts(client, admin_headers)
    path = f"/api/v1/conflicts/{conflict['id']}/resolve"
    staff = client.post(path, json={"keep": "both"}, headers=keys["staff"])
    assert staff.status_code == 403 and staff.json()["error"]["code"] == "forbidden"
    bad = client.post(path, json={"keep": "neither"}, headers=keys["manager"])
    assert bad.status_code == 400
    done = client.post(path, json={"keep": "both"}, headers=keys["manager"])
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "resolved" and body["resolution"] == "keep_both"
    assert body["winner_event_id"] is None and body["resolved_by"].startswith("key:")
    again = client.post(path, json={"keep": "first"}, headers=keys["manager"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_resolved"
    assert client.post("/api/v1/conflicts/999999/resolve", json={"keep": "first"},
                       headers=keys["manager"]).status_code == 404  # fmt: skip
    assert _open_conflicts(client, admin_headers) == []


def test_staff_syncs_a_calendar_now_and_sees_its_health(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime, Clock(NOW))
    add_operator(client, admin_headers, "default", "staff@example.org", "staff")
    add_operator(client, admin_headers, "default", "viewer@example.org", "viewer")
    unit = make_provider(client, admin_headers, "casa")
    with serving(FeedServer()) as feeds:
        url = feeds.put("/down.ics", "oops", status=503)
        made = client.post(f"/api/v1/providers/{unit}/sources", json={"url": url, "name": "Studio"},
                           headers=admin_headers)  # fmt: skip
        source = made.json()["id"]
        staff = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
        sign_in(staff, runtime, "staff@example.org")
        assert re.search(r'id="stale-calendars" href="[^"]+"><span class="n">1<',
                         staff.get("/admin").text)  # fmt: skip
        page = staff.get("/admin/calendars?stale=1").text
        assert f'id="source-{source}"' in page and "never" in page and "Sync now" in page
        failed = post_form(staff, "/admin/calendars", f"/admin/calendars/{source}/sync")
        assert "The sync failed" in failed.text
        assert "The calendar server had a problem" in failed.text  # the error in plain words
        feeds.put("/down.ics", calendar(all_day("x@test", date(2025, 6, 9), 2, "Busy")))
        synced = post_form(staff, "/admin/calendars", f"/admin/calendars/{source}/sync")
        assert "Synced." in synced.text and "1 event" in synced.text
        assert 'data-status="ok"' in synced.text
        assert "No calendars are stale." in staff.get("/admin/calendars?stale=1").text
        viewer = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
        sign_in(viewer, runtime, "viewer@example.org")
        assert "Sync now" not in viewer.get("/admin/calendars").text
        refused = post_form(viewer, "/admin/calendars", f"/admin/calendars/{source}/sync")
        assert refused.status_code == 403


def test_an_operator_of_tenant_b_cannot_open_tenant_a_rows(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    acme = make_tenant(client, admin_headers)
    home = make_provider(client, admin_headers, "anna")
    hold = client.post("/api/v1/holds", json=hold_body(home, "2027-03-02T09:00:00Z",
                                                       "2027-03-02T09:30:00Z"))  # fmt: skip
    booking = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm").json()["booking"]
    add_operator(client, admin_headers, "default", "a@example.org", "owner")
    add_operator(client, admin_headers, acme, "b@acme.example", "owner")
    mine = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    sign_in(mine, runtime, "a@example.org")
    assert mine.get(f"/admin/bookings/{booking['id']}").status_code == 200
    found = mine.get("/admin/bookings", params={"q": booking["uid"]}).text
    assert f'href="/admin/bookings/{booking["id"]}"' in found

    theirs = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    sign_in(theirs, runtime, "b@acme.example")
    assert "Acme Clinic" in theirs.get("/admin").text
    page = theirs.get(f"/admin/bookings/{booking['id']}")
    assert page.status_code == 404 and booking["uid"] not in page.text
    assert booking["id"] not in theirs.get("/admin/bookings", params={"q": booking["uid"]}).text
    assert booking["id"] not in theirs.get("/admin/bookings").text
    assert "anna@example.org" not in theirs.get("/admin/providers").text
    assert "anna@example.org" not in theirs.get("/admin/mail?box=out").text
    with runtime.sessions() as session:
        audit_booking = session.scalar(select(AuditEntry.subject_id).limit(1))
    assert audit_booking is not None and audit_booking not in theirs.get("/admin/audit").text
    assert theirs.get("/admin/mail/in/1/raw").status_code == 404
    cross = post_form(theirs, "/admin", "/admin/conflicts/1/resolve", keep="first")
    assert cross.status_code == 404
