"""The booking page as a guest uses it, forms and redirects only: a hold taken there leaves
the page, lapses back onto it when it expires (before any expiry job runs), and an
imported calendar that never synced turns "You're booked" into "Request sent". The twins
call expire_holds and create_hold (services/test_expiry.py) or the JSON API only
(services/test_freshness_gate.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote

from core.runtime import Runtime
from tests.integration.api.helpers import Clock, TestClient, client_for, make_provider

TUE = "2027-03-02"


def _offered(client: TestClient) -> list[str]:
    page = client.get("/book/ada", params={"tz": "UTC", "from": TUE})
    assert page.status_code == 200, page.text
    return re.findall(r'data-start="([^"]+)"', page.text)


def _pick(client: TestClient, start: str) -> str:
    """Press the slot's button; the hold page's path the redirect leads to."""
    end = (
        re.search(rf'value="{re.escape(start)}">\s*<input type="hidden" name="end" value="([^"]+)"',
                  client.get("/book/ada", params={"tz": "UTC", "from": TUE}).text)
    )  # fmt: skip
    assert end is not None
    held = client.post(
        "/book/ada/hold", data={"start": start, "end": end[1], "tz": "UTC"}, follow_redirects=False
    )
    assert held.status_code == 303 and "/book/ada/hold/" in held.headers["location"], held.text
    return held.headers["location"].split("?", 1)[0]


def _confirm(client: TestClient, hold_path: str) -> str:
    answer = client.post(
        hold_path,
        data={"name": "Grace", "email": "grace@example.net", "tz": "UTC"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return unquote(answer.headers["location"])


def test_a_hold_taken_on_the_page_lapses_back_onto_it(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: the booking page offering a time a guest holds, and an expired hold kept
    # off the page (or confirmable) until the expiry job happens to run.
    clock = Clock()
    client = client_for(runtime, clock)
    make_provider(client, admin_headers, slug="ada")
    first = _offered(client)[4]  # not the first: the clock moves past its lead time
    hold_path = _pick(client, first)
    assert first not in _offered(client)
    assert "more minutes" in client.get(hold_path).text
    clock.now += timedelta(seconds=runtime.settings.hold_ttl_seconds + 1)
    assert first in _offered(client)
    assert "This hold has expired" in client.get(hold_path).text
    late = _confirm(client, hold_path)
    assert late.startswith("/book/ada?") and late.endswith("&m=expired")
    assert "Your hold has expired" in client.get(late).text
    again = _confirm(client, _pick(client, first))
    assert "/book/ada/done/" in again
    assert first not in _offered(client)


def test_a_calendar_never_synced_makes_the_page_ask_instead_of_book(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: the booking page confirming instantly while the provider's imported
    # calendar is unknown (the freshness gate applied on the JSON API only).
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, slug="ada")
    done = client.get(_confirm(client, _pick(client, _offered(client)[0])))
    assert 'id="result">You\'re booked' in done.text
    added = client.post(
        f"/api/v1/providers/{provider}/sources",
        json={"url": "http://127.0.0.1:9/never-synced.ics", "kind": "ics"},
        headers=admin_headers,
    )
    assert added.status_code == 201, added.text
    asked = client.get(_confirm(client, _pick(client, _offered(client)[0])))
    assert 'id="result">Request sent' in asked.text, asked.text
