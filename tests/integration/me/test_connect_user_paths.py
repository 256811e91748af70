"""/me/connect as its provider uses it: the app password shown on the page signs a calendar
app in over CalDAV (the caldav client against a real server) until it is revoked on the
page, and the feed URL made there with holds shows a guest's hold. The twin in
test_pages.py only reads the pages back."""

from __future__ import annotations

import re
from collections.abc import Iterator

import caldav
import pytest
from caldav.lib.error import AuthorizationError

from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, hold_body, make_provider
from tests.integration.dav.conftest import dav_base  # noqa: F401  (fixture)
from tests.integration.me.helpers import csrf_of, sign_in


@pytest.fixture
def me(runtime: Runtime, admin_headers: dict[str, str]) -> tuple[TestClient, str]:
    client = client_for(runtime)
    provider_id = make_provider(client, admin_headers, slug="ada", lead_time_hours=0)
    sign_in(client, runtime, "ada@example.org")
    return client, provider_id


@pytest.fixture
def opened() -> Iterator[list[caldav.DAVClient]]:
    clients: list[caldav.DAVClient] = []
    yield clients
    for client in clients:
        client.close()


def test_the_password_shown_on_the_page_signs_a_calendar_app_in_until_revoked(
    me: tuple[TestClient, str],
    dav_base: str,  # noqa: F811
    opened: list[caldav.DAVClient],
) -> None:
    # Catches: the page showing a user name or password that CalDAV does not accept (say,
    # the e-mail instead of the dav user name), and "apps using it are signed out" being
    # untrue after the page's revoke.
    client, _ = me
    page = client.get("/me/connect")
    username = re.search(r'id="dav-username">([^<]+)<', page.text)
    assert username is not None
    made = client.post(
        "/me/connect/app-passwords", data={"csrf": csrf_of(page.text), "label": "phone"}
    )
    password = re.search(r'id="app-password">([^<]+)<', made.text)
    assert password is not None

    def app() -> caldav.DAVClient:
        opened.append(caldav.DAVClient(url=f"{dav_base}/dav/", username=username[1],
                                       password=password[1]))  # fmt: skip
        return opened[-1]

    names = sorted(str(c.url).rstrip("/").rsplit("/", 1)[1] for c in app().principal().calendars())
    assert names == ["blocks", "bookings"]
    password_id = re.findall(r"/me/connect/app-passwords/(apw_\w+)/revoke", made.text)[0]
    revoked = client.post(
        f"/me/connect/app-passwords/{password_id}/revoke", data={"csrf": csrf_of(made.text)}
    )
    assert "App password revoked" in revoked.text
    with pytest.raises(AuthorizationError):
        app().principal()


def test_the_feed_made_on_the_page_with_holds_shows_a_guests_hold(
    me: tuple[TestClient, str],
) -> None:
    # Catches: the include_holds box on the page not reaching the feed token it makes.
    client, provider_id = me
    page = client.get("/me/connect")
    made = client.post("/me/connect/feed", data={"csrf": csrf_of(page.text), "include_holds": "on"})
    url = re.search(r'id="feed-url">([^<]+)<', made.text)
    assert url is not None
    path = "/" + url[1].split("://", 1)[1].split("/", 1)[1]
    assert "BEGIN:VEVENT" not in client.get(path).text
    body = hold_body(provider_id, "2027-03-02T09:00:00Z", "2027-03-02T10:00:00Z")
    assert client.post("/api/v1/holds", json=body).status_code == 201
    feed = client.get(path).text
    assert feed.count("BEGIN:VEVENT") == 1 and "DTSTART:20270302T090000Z" in feed
