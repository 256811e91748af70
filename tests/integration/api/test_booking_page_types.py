"""The booking page of a provider with meeting types, as a guest reads it: cards on
/book/{slug}, each type's own page /book/{slug}/{type} with its title, place, description,
lengths and times, and the hold it makes; the provider's accent colour and photo set over
PATCH /providers/{id} and shown on the page."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from core.runtime import Runtime
from core.services.page_look import contrast, text_on
from tests.integration.api.helpers import TestClient, client_for, make_provider

PLANNING = {
    "slug": "planning",
    "title": "Planning call",
    "durations": [45, 90],
    "location": "https://meet.example/dana",
    "description": "Bring your list of questions.\nAnd a pen.",
    "lead_time_hours": 72,
}
INTRO = {"slug": "intro", "title": "Intro chat", "durations": [15]}


@pytest.fixture
def typed(runtime: Runtime, admin_headers: dict[str, str]) -> tuple[TestClient, str]:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, slug="ada")
    for body in (PLANNING, INTRO, {**INTRO, "slug": "old", "title": "Old", "active": False}):
        made = client.post(
            f"/api/v1/providers/{provider}/meeting-types", json=body, headers=admin_headers
        )
        assert made.status_code == 201, made.text
    return client, provider


def _starts(html: str) -> list[str]:
    return re.findall(r'data-start="([^"]+)"', html)


def test_the_page_lists_the_active_types_as_cards(typed: tuple[TestClient, str]) -> None:
    client, _ = typed
    page = client.get("/book/ada", params={"tz": "UTC", "h": "12"})
    assert page.status_code == 200
    cards = re.findall(r'<h2><a href="([^"]+)">([^<]+)</a></h2>', page.text)
    assert [(unescape(h), t) for h, t in cards] == [
        ("/book/ada/planning?tz=UTC&h=12", "Planning call"),
        ("/book/ada/intro?tz=UTC&h=12", "Intro chat"),
    ]
    assert "45 or 90 minutes · https://meet.example/dana" in page.text
    assert "Old" not in page.text and not _starts(page.text)


def test_a_provider_without_types_still_books_directly(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="bea")
    page = client.get("/book/bea", params={"tz": "UTC"})
    assert 'class="card type-card"' not in page.text and len(_starts(page.text)) == 16


def test_a_types_page_shows_it_and_holds_with_it(typed: tuple[TestClient, str]) -> None:
    # Catches: every booking called "Session", the place and description nowhere.
    client, _ = typed
    page = client.get("/book/ada/planning", params={"tz": "UTC"})
    assert page.status_code == 200, page.text
    text = page.text
    assert "<h1>Planning call with Ada Host</h1>" in text
    assert 'id="type-description">Bring your list of questions.\nAnd a pen.</p>' in text
    assert 'href="https://meet.example/dana"' in text
    assert "45 minutes · times shown in" in text
    starts = _starts(text)
    assert starts and starts[0].startswith("2027-03-04")  # 72 h lead time: Thursday first
    ends = re.findall(r'name="end" value="([^"]+)"', text)
    assert ends[0].startswith("2027-03-04T08:45")
    lengths = re.findall(r'<a href="([^"]+)"(?: aria-current="true")?>(\d+) minutes</a>', text)
    assert [n for _, n in lengths] == ["45", "90"]
    longer = client.get(unescape(lengths[1][0]))
    assert "90 minutes · times shown in" in longer.text
    assert re.findall(r'name="end" value="([^"]+)"', longer.text)[0].startswith("2027-03-04T09:30")
    assert re.search(r'href="[^"]*duration=90[^"]*" data-day=', longer.text)  # strip keeps it

    form = {"start": starts[0], "end": ends[0], "tz": "UTC", "type": "planning"}
    held = client.post("/book/ada/hold", data=form)
    assert held.status_code == 200 and "/hold/" in str(held.url), held.text
    assert 'id="type-title"><strong>Planning call</strong>' in held.text
    assert 'name="type" value="planning"' in held.text
    done = client.post(str(held.url.path), data={"email": "grace@example.net", "tz": "UTC"})
    assert "You're booked" in done.text and "Planning call" in done.text
    again = client.post("/book/ada/hold", data=form, follow_redirects=False)
    assert again.headers["location"] == "/book/ada/planning?tz=UTC&m=taken"
    single = client.get("/book/ada/intro", params={"tz": "UTC"}).text
    assert 'id="lengths"' not in single and "15 minutes" in single


def test_a_bad_type_or_length_is_an_html_error(typed: tuple[TestClient, str]) -> None:
    client, _ = typed
    for path in ("/book/ada/nothing", "/book/ada/old", "/book/ada/%00", "/book/nobody/intro"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Page not found" in answer.text
    for duration in ("30", "0", "abc", "45.0", "٤٥", "9" * 40):
        answer = client.get("/book/ada/planning", params={"duration": duration})
        assert answer.status_code == 400, duration
        assert 'data-problem="duration"' in answer.text
    far = client.get("/book/ada/planning", params={"day": "2030-01-01"})
    assert far.status_code == 400 and 'href="/book/ada/planning"' in far.text


def _patch(client: TestClient, provider: str, headers: dict[str, str], **body: Any) -> Any:
    return client.patch(f"/api/v1/providers/{provider}", json=body, headers=headers)


def test_accent_colour_and_photo_are_checked_and_shown(
    typed: tuple[TestClient, str], admin_headers: dict[str, str]
) -> None:
    client, provider = typed
    for bad in ({"accent_colour": "red"}, {"accent_colour": "#12345"},
                {"accent_colour": "#1234567"}, {"accent_colour": "#12345g"},
                {"accent_colour": "#123456;}"}, {"photo_url": "http://example.org/a.png"},
                {"photo_url": "javascript:alert(1)"}, {"photo_url": "https://"},
                {"photo_url": 'https://x.example/a" onerror="x'},
                {"photo_url": "https://user@x.example/a.png"}, {"photo_url": "data:image/png,x"},
                {"photo_url": "https://x.example/" + "a" * 500}):  # fmt: skip
        answer = _patch(client, provider, admin_headers, **bad)
        assert answer.status_code in (400, 422), (bad, answer.text)
    good = _patch(client, provider, admin_headers, accent_colour="#FFD33D",
                  photo_url="https://cdn.example/ada.jpg")  # fmt: skip
    assert good.status_code == 200, good.text
    assert good.json()["accent_colour"] == "#ffd33d"
    assert good.json()["photo_url"] == "https://cdn.example/ada.jpg"
    for path in ("/book/ada", "/book/ada/intro"):
        html = client.get(path).text
        assert ":root { --accent: #ffd33d; --accent-fg: #000000; }" in html, path
        assert '<img src="https://cdn.example/ada.jpg" alt=""' in html
    untouched = _patch(client, provider, admin_headers, name="Ada Host")
    assert untouched.json()["accent_colour"] == "#ffd33d"  # not named: kept
    cleared = _patch(client, provider, admin_headers, accent_colour=None, photo_url=None)
    assert cleared.json()["accent_colour"] is None and cleared.json()["photo_url"] is None
    assert "--accent-fg: #" not in client.get("/book/ada").text.split("</style>", 1)[1]


@pytest.mark.parametrize("colour", ["#000000", "#ffffff", "#777777", "#ffd33d", "#0969da"])
def test_the_text_on_any_accent_passes_aa(colour: str) -> None:
    assert contrast(colour, text_on(colour)) >= 4.5
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
