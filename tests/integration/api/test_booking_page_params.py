"""The booking page's query parameters, its window's end, its words for request-to-book
providers and its zone picker, read as HTML over the app's HTTP interface."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import unquote

import pytest

from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, make_provider

# NOW is Monday 1 March 2027 08:00 UTC; the provider's window is 60 days (to 30 April).
ABSURD = [
    "9999-12-25", "0001-01-01", "2201-01-01", "2199-12-31", "1900-01-01", "2027-02-30",
    "2027-13-01", "20270301", "2027-W10-1", "+2027-03-01", "2027-03-01T10:00", "x" * 5000,
    "١٢٣٤-٠١-٠١", "%", "2027-05-01", "2026-12-31", "",
]  # fmt: skip
TZS = [
    "", "Factory", "localtime", "W-SU", "posixrules", "../../etc/passwd", "Europe/Berlin/x",
    "Etc/GMT+14", "EST", "a" * 10_000, "Europe%2FBerlin", "\u202eEurope/Berlin", "US/Eastern",
]  # fmt: skip


def _page(client: TestClient, status: int = 200, **params: str) -> str:
    answer = client.get("/book/ada", params=params)
    assert answer.status_code == status, (params, answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html"), params
    return answer.text


def _first_day(html: str) -> str:
    found = re.search(r'<h2 id="day-title">([^<]+)</h2>', html)
    return found[1] if found else ""


def _problem(html: str) -> str:
    found = re.search(r'data-problem="([^"]+)"', html)
    return found[1] if found else ""


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> TestClient:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    return client


def test_a_bad_parameter_is_an_html_4xx_never_a_500_or_json(client: TestClient) -> None:
    # Catches: a far, malformed or non-ASCII date or zone ending in a 500 with a JSON body,
    # or quietly showing other dates than the address asked for.
    for value in ABSURD:
        if not value:
            assert _first_day(_page(client, **{"from": value})) == "Tuesday, 2 March 2027"
            continue
        for name in ("day", "from"):
            html = _page(client, 400, **{name: value})
            assert _problem(html) in ("day", "day_range"), (name, value)
            assert 'href="/book/ada"' in html and '"error"' not in html
            assert "x" * 50 not in html and "٢٣" not in html  # the address is not repeated
    far = _page(client, 400, day="2027-05-01")
    assert "from Monday, 1 March 2027 to Friday, 30 April 2027" in far
    for value in TZS:
        if value in ("", "W-SU", "US/Eastern", "EST"):  # none, or a link zoneinfo knows
            assert "Book a time with Ada Host" in _page(client, tz=value), value
        else:
            assert _problem(_page(client, 400, tz=value)) == "zone", value
    for name, value in (("view", "year"), ("view", "WEEK"), ("h", "13"), ("h", "12h")):
        assert _problem(_page(client, 400, **{name: value})) in ("view", "hours")
    weird = {"m": "x" * 3000, "weeks": "-1", "weeks ": "9" * 50, "duration": "0", "slot": "?"}
    for name, value in weird.items():
        _page(client, **{name: value})
    _page(client, **{"from": "2027-03-08", "tz": "Asia/Tokyo", "m": "taken", "from ": "x"})
    repeated = client.get("/book/ada?from=2027-03-08&from=9999-01-01&tz=UTC&tz=Factory")
    assert repeated.status_code in (200, 400)
    assert repeated.headers["content-type"].startswith("text/html")


def test_a_zone_the_browser_reports_falls_back_instead_of_failing(client: TestClient) -> None:
    # The page's script marks the zone it read from the browser with auto=1.
    html = _page(client, tz="Mars/Olympus_Mons", auto="1")
    assert 'id="shown-zone">Europe/Berlin' in html


def test_a_date_inside_the_window_is_kept(client: TestClient) -> None:
    html = _page(client, **{"from": "2027-03-10", "tz": "UTC"})
    assert _first_day(html) == "Wednesday, 10 March 2027"
    assert _first_day(_page(client, day="2027-03-10", tz="UTC")) == "Wednesday, 10 March 2027"


def test_only_known_message_codes_show_a_message(client: TestClient) -> None:
    # Catches: ?m=<any text> printed in the alert box, a phishing aid.
    for text in ("Call +1 555 0100 to pay", "taken ", "TAKEN", "<b>x</b>", "__class__", "get"):
        html = _page(client, m=text)
        assert 'role="alert"' not in html, text
        assert "555 0100" not in html
    taken = _page(client, m="taken")
    assert re.search(r'role="alert">Sorry, that time was just taken', taken)


def test_a_taken_slot_redirects_with_a_code(
    runtime: Runtime, client: TestClient, admin_headers: dict[str, str]
) -> None:
    html = _page(client, tz="UTC", **{"from": "2027-03-02"})
    start, end = re.findall(r'name="(?:start|end)" value="([^"]+)"', html)[:2]
    form = {"start": start, "end": end, "tz": "UTC"}
    first = client.post("/book/ada/hold", data=form, follow_redirects=False)
    assert "/hold/" in first.headers["location"]
    again = client.post("/book/ada/hold", data=form, follow_redirects=False)
    location = unquote(again.headers["location"])
    assert location == "/book/ada?tz=UTC&m=taken", location
    assert "Sorry, that time was just taken" in client.get(location).text
    bad = client.post("/book/ada/hold", data={**form, "start": "soon"}, follow_redirects=False)
    assert bad.headers["location"].endswith("&m=unavailable")
    assert "That time cannot be booked" in client.get(bad.headers["location"]).text


def _walk(client: TestClient, **params: str) -> tuple[str, int]:
    """Follow the strip's "next" link to its end: the last page and how many were followed."""
    html, pages = _page(client, **params), 0
    while (later := re.search(r'id="later" href="([^"]+)"', html)) is not None:
        assert "Bookable up to" not in html
        answer = client.get(unescape(later[1]))
        assert answer.status_code == 200
        html, pages = answer.text, pages + 1
        assert pages < 20, "Later never ends"
    return html, pages


def test_the_strip_stops_at_the_end_of_the_booking_window(client: TestClient) -> None:
    # Catches: "Later" offered forever past the provider's booking window.
    html, weeks = _walk(client, tz="UTC")
    assert weeks == 8  # the weeks of 1 March … 26 April; the window ends Friday 30 April
    assert 'id="window-end">Bookable up to 60 days ahead.' in html
    assert 'data-day="2027-04-30" data-times="3"' in html  # to 08:00 UTC, 60 days from now
    assert re.search(r'<span class="day none" data-day="2027-05-01"', html)
    assert 'id="earlier"' in html and "Previous week" in html
    html, months = _walk(client, tz="UTC", view="month")
    assert months == 1 and "April 2027" in html and 'id="window-end"' in html


def test_the_strip_shows_a_week_or_a_month_and_the_chosen_days_times_only(
    client: TestClient,
) -> None:
    # Catches: three weeks of buttons in one 5,400-px list.
    html = _page(client, tz="UTC", day="2027-03-03")
    days = re.findall(r'data-day="([0-9-]+)" data-times="([0-9]+)"', html)
    assert [d for d, _ in days] == [f"2027-03-0{n}" for n in range(1, 8)]
    assert dict(days) == {
        "2027-03-01": "0", "2027-03-02": "16", "2027-03-03": "16", "2027-03-04": "16",
        "2027-03-05": "16", "2027-03-06": "0", "2027-03-07": "0",
    }  # fmt: skip
    starts = re.findall(r'data-start="([^"]+)"', html)
    assert len(starts) == 16 and {s[:10] for s in starts} == {"2027-03-03"}
    assert re.search(
        r'aria-label="Wednesday, 3 March 2027: 16 free times" aria-current="date"', html
    )
    link = re.search(r'href="([^"]+)" data-day="2027-03-04"', html)
    assert link is not None and unescape(link[1]) == "/book/ada?tz=UTC&h=24&day=2027-03-04"
    month = _page(client, tz="UTC", day="2027-03-03", view="month")
    shown = [d for d, _ in re.findall(r'data-day="([0-9-]+)" data-times="([0-9]+)"', month)]
    assert shown[0] == "2027-03-01" and shown[-1] == "2027-03-31" and len(shown) == 31
    assert "view=month" in unescape(re.findall(r'href="([^"]+)" data-day', month)[0])


def test_a_twelve_hour_clock_and_accessible_slot_names(client: TestClient) -> None:
    html = _page(client, tz="America/New_York", day="2027-03-02", h="12")
    labels = re.findall(r'class="slot" data-start="[^"]+" aria-label="([^"]+)">([^<]+)<', html)
    assert labels[0] == ("Book Tuesday, 2 March 2027, 3:00 AM", "3:00 AM")  # 09:00 in Berlin
    assert labels[-1][1] == "10:30 AM"
    assert 'value="12" checked' in html
    assert (
        re.findall(r'class="slot"[^>]*>([^<]+)<', _page(client, tz="UTC", day="2027-03-02"))[-1]
        == "15:30"
    )


def test_the_fall_back_hour_names_its_offset(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada", weekly=[
        {"days": ["sun"], "start": "00:00", "end": "04:00"}], booking_window_days=300)  # fmt: skip
    html = _page(client, tz="Europe/Berlin", day="2027-10-31")
    labels = re.findall(r'class="slot"[^>]*>([^<]+)<', html)
    assert "02:00 CEST" in labels and "02:00 CET" in labels and "01:30" in labels


def test_request_to_book_says_so_on_every_step(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: request-to-book guests told "an invitation goes to …" when none does.
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada", instant_book=False)
    page = _page(client, tz="UTC", **{"from": "2027-03-02"})
    assert "Ada Host confirms each request" in page
    start, end = re.findall(r'name="(?:start|end)" value="([^"]+)"', page)[:2]
    held = client.post("/book/ada/hold", data={"start": start, "end": end, "tz": "UTC"})
    assert "Ada Host confirms each request" in held.text
    assert "Send request to Ada Host" in held.text and "Confirm booking" not in held.text
    hold_path = str(held.url.path)
    done = client.post(hold_path, data={"name": "Grace", "email": "grace@example.net", "tz": "UTC"})
    assert done.status_code == 200 and "/done/" in str(done.url)
    assert 'id="result">Request sent' in done.text
    assert "Nothing is booked yet" in done.text
    assert "An invitation goes to" not in done.text
    assert "If Ada Host confirms, a calendar invitation goes to grace@example.net" in done.text


def test_instant_book_keeps_the_booking_words(client: TestClient) -> None:
    page = _page(client, tz="UTC", **{"from": "2027-03-02"})
    assert "confirms each request" not in page
    start, end = re.findall(r'name="(?:start|end)" value="([^"]+)"', page)[:2]
    held = client.post("/book/ada/hold", data={"start": start, "end": end, "tz": "UTC"})
    assert "Confirm booking" in held.text and "Send request" not in held.text
    done = client.post(str(held.url.path), data={"email": "grace@example.net", "tz": "UTC"})
    assert "You're booked" in done.text and "An invitation goes to grace@example.net" in done.text


def _options(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', html)


def test_the_zone_picker_lists_canonical_zones_with_offsets(client: TestClient) -> None:
    # Catches: the raw 599-entry list with Factory, localtime, W-SU and links.
    options = _options(_page(client, tz="Asia/Tokyo"))
    names = [name for name, _ in options]
    assert 250 < len(names) < 400 and len(set(names)) == len(names)
    for junk in ("Factory", "localtime", "W-SU", "US/Eastern", "Asia/Calcutta", "GB", "EST"):
        assert junk not in names, junk
    for zone in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Tokyo"):
        assert zone in names, zone
    labels = dict(options)
    assert labels["UTC"] == "UTC" and names[0] == "UTC"
    assert labels["Asia/Kolkata"].endswith("(UTC+05:30)")
    assert labels["America/St_Johns"].endswith("(UTC-03:30)")  # 1 March: standard time
    assert labels["Europe/Berlin"].startswith("Berlin — Germany")
    assert labels["America/New_York"] == "New York — United States (UTC-05:00)"
    groups = re.findall(r'<optgroup label="([^"]+)">', _page(client))
    assert groups[:3] == ["UTC", "Africa", "America"] and groups == [groups[0], *sorted(groups[1:])]
    selected = re.findall(r'<option value="([^"]+)" selected>', _page(client, tz="Asia/Tokyo"))
    assert selected == ["Asia/Tokyo"]


def test_a_linked_zone_from_the_browser_is_kept_and_shown(client: TestClient) -> None:
    html = _page(client, tz="Europe/Stockholm")
    assert 'id="shown-zone">Europe/Stockholm' in html
    assert re.findall(r'<option value="([^"]+)" selected>', html) == ["Europe/Stockholm"]
    assert _page(client, tz="Factory", auto="1").count('id="shown-zone">Europe/Berlin') == 1


def test_the_hold_and_done_pages_take_any_zone(client: TestClient) -> None:
    html = _page(client, tz="UTC", **{"from": "2027-03-02"})
    start, end = re.findall(r'name="(?:start|end)" value="([^"]+)"', html)[:2]
    held = client.post("/book/ada/hold", data={"start": start, "end": end, "tz": "UTC"})
    done = client.post(str(held.url.path), data={"email": "grace@example.net", "tz": "UTC"})
    for path in (str(held.url.path), str(done.url.path)):
        for value in TZS:
            answer = client.get(path, params={"tz": value, "m": "taken", "from": "9999-01-01"})
            assert answer.status_code == 200, (path, value, answer.status_code)
            assert answer.headers["content-type"].startswith("text/html")
