"""Console lists page through the list services' cursors; bookings are found by address
or UID and by the overview's links."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from core.runtime import Runtime
from core.services.expiry import expire_holds
from tests.integration.api.helpers import NOW, Clock, client_for, hold_body, make_provider
from tests.integration.console.helpers import add_operator, sign_in


def test_providers_page_through_the_cursor_without_repeats(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    for index in range(53):
        made = client.post("/api/v1/providers", json={
            "name": f"Unit {index}", "email": f"u{index}@example.org",
            "timezone": "UTC", "slug": f"u{index}",
        }, headers=admin_headers)  # fmt: skip
        assert made.status_code == 201, made.text
    add_operator(client, admin_headers, "default", "ops@example.org", "viewer")
    sign_in(client, runtime, "ops@example.org")
    seen: list[str] = []
    page = client.get("/admin/providers").text
    while True:
        seen += re.findall(r"<strong>(Unit \d+)</strong>", page)
        more = re.search(r'id="next-page" href="([^"]+)"', page)
        if more is None:
            break
        page = client.get("/admin/providers" + html.unescape(more[1])).text
    assert len(seen) == 53 and len(set(seen)) == 53
    bad = client.get("/admin/providers?cursor=garbage")
    assert bad.status_code == 400 and "not one this API gave out" in bad.text
    assert bad.headers["content-type"].startswith("text/html")


def test_bookings_are_found_by_address_uid_and_the_overview(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    clock = Clock(NOW)
    client = client_for(runtime, clock)
    ada = make_provider(client, admin_headers, "ada", lead_time_hours=0)
    made = []
    for hour, guest in ((9, "grace@example.net"), (11, "linus@example.net")):
        start, end = f"2027-03-01T{hour:02}:00:00Z", f"2027-03-01T{hour:02}:30:00Z"
        hold = client.post("/api/v1/holds", json=hold_body(ada, start, end, guest_email=guest))
        assert hold.status_code == 201, hold.text
        made.append(client.post(f"/api/v1/holds/{hold.json()['id']}/confirm").json()["booking"])
    add_operator(client, admin_headers, "default", "ops@example.org", "viewer")
    sign_in(client, runtime, "ops@example.org")

    def ids(**params: str) -> list[str]:
        page = client.get("/admin/bookings", params=params).text
        return re.findall(r'href="/admin/bookings/(bkg_\w+)"', page)

    assert ids(q="GRACE@example.net") == [made[0]["id"]]
    assert ids(q=made[1]["uid"]) == [made[1]["id"]]
    assert ids(q="no-such-uid") == []
    assert sorted(ids(day="today")) == sorted(b["id"] for b in made)
    overview = client.get("/admin").text
    assert re.search(r'id="bookings-today" href="/admin/bookings\?day=today"><span class="n">2<',
                     overview)  # fmt: skip
    clock.now = clock.now.replace(day=3)
    assert ids(day="today") == []


def test_the_overview_shows_the_kpis_of_the_stats_api_for_a_chosen_period(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # #17 item 3: the same KPI numbers on the console overview as GET /api/v1/stats.
    clock = Clock(NOW)
    client = client_for(runtime, clock)
    ada = make_provider(client, admin_headers, "ada", lead_time_hours=0)
    for hour in (9, 10, 11):
        start, end = f"2027-03-01T{hour:02}:00:00Z", f"2027-03-01T{hour:02}:30:00Z"
        hold = client.post("/api/v1/holds", json=hold_body(ada, start, end))
        assert hold.status_code == 201, hold.text
        if hour != 11:  # the third hold is left to expire
            assert client.post(f"/api/v1/holds/{hold.json()['id']}/confirm").status_code == 201
    clock.now = NOW + timedelta(hours=1)
    expire_holds(runtime.sessions, clock.now)  # the worker's holds.expire job
    add_operator(client, admin_headers, "default", "ops@example.org", "viewer")
    sign_in(client, runtime, "ops@example.org")
    start = (clock.now - timedelta(days=1)).isoformat()
    api = client.get("/api/v1/stats", params={"from": start, "to": clock.now.isoformat()},
                     headers=admin_headers).json()  # fmt: skip
    page = client.get("/admin", params={"days": "1"}).text
    assert "How it went over the last day" in page

    def cell(name: str) -> str:
        found = re.search(rf'id="kpi-{name}">([^<]*)<', page)
        assert found, name
        return found[1].strip()

    assert api["instant_book_success_rate"] == 1.0 and cell("ib") == "100 %"
    expired = api["holds_expired_unused_ratio"]
    assert expired is not None and cell("holds") == f"{expired * 100:.0f} %"
    assert cell("bookings").startswith("2 / 0 / 0")
    assert client.get("/admin", params={"days": "99999"}).status_code == 200  # falls back
