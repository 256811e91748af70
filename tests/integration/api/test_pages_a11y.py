"""What assistive technology reads on the public and provider pages: errors tied to their
inputs (aria-invalid, aria-describedby) and marked as the summary focus moves to, slot
buttons named with their date, and aria-current on the navigation of /me and /admin."""

from __future__ import annotations

import re

from core.runtime import Runtime
from tests.integration.api.helpers import client_for, make_provider
from tests.integration.console import helpers as console
from tests.integration.me import helpers as me


def _input(html: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert found is not None, name
    return found[0]


def _current(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" aria-current="page">', html)


def test_a_bad_email_on_the_hold_page_is_tied_to_its_input(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    page = client.get("/book/ada", params={"tz": "UTC", "day": "2027-03-02"}).text
    names = re.findall(r'class="slot" data-start="[^"]+" aria-label="([^"]+)"', page)
    assert names[0] == "Book Tuesday, 2 March 2027, 08:00" and len(set(names)) == len(names)
    start, end = re.findall(r'name="(?:start|end)" value="([^"]+)"', page)[:2]
    held = client.post("/book/ada/hold", data={"start": start, "end": end, "tz": "UTC"})
    assert "aria-invalid" not in _input(held.text, "email")
    for email in ("", "not an address"):
        bad = client.post(str(held.url.path), data={"email": email, "tz": "UTC"})
        assert bad.status_code == 400
        field = _input(bad.text, "email")
        assert 'aria-invalid="true"' in field and 'aria-describedby="email-error"' in field
        assert re.search(
            r'id="email-error" role="alert" tabindex="-1" data-error-summary>', bad.text
        )
        assert 'querySelector("[data-error-summary]")' in bad.text  # the script that focuses it


def test_the_provider_pages_mark_the_current_one_and_tie_their_errors(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    me.sign_in(client, runtime, "ada@example.org")
    for path in ("/me", "/me/availability", "/me/bookings", "/me/connect"):
        assert _current(client.get(path).text) == [path], path
    page = client.get("/me/availability").text
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    form.update({"w-0-0-start": "25:00", "action": "save"})
    saved = client.post("/me/availability", data=form)
    assert "data-error-summary" in saved.text, saved.text[:2000]
    field = _input(saved.text, "w-0-0-start")
    assert 'aria-invalid="true"' in field and 'aria-describedby="error-w-0-0"' in field
    assert 'id="error-w-0-0"' in saved.text
    assert "aria-invalid" not in _input(saved.text, "w-1-0-start")


def test_the_console_marks_the_current_page(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    console.add_operator(client, admin_headers, "default", "ops@example.org", "owner")
    console.sign_in(client, runtime, "ops@example.org")
    assert _current(client.get("/admin").text) == ["/admin"]
    assert _current(client.get("/admin/providers").text) == ["/admin/providers"]
    assert _current(client.get("/admin/mail").text) == ["/admin/mail"]
