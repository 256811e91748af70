"""axe-core (Deque's accessibility engine, from npm) over every public and provider page
in headless Chromium, in light and in dark mode (``prefers-color-scheme`` emulated): the
landing page, a booking page, a meeting type's page, the hold, done and manage pages, a
page-address error, link problem pages, and the /me pages signed in. Any serious or
critical violation fails the test, with the rule, its help text and the elements named.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from core.runtime import Runtime
from tests.e2e.test_dark_mode import _scheme
from tests.integration.api.helpers import make_provider, served
from tests.integration.me.helpers import sign_in
from tests.integration.negotiation.helpers import GUEST, booked, links, outbox

AXE = Path(__file__).resolve().parents[1] / "unit/mailagent/js/node_modules/axe-core/axe.min.js"
FAILING = ("serious", "critical")
_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  r => done(r.violations.map(v => [v.id, v.impact, v.help,
                                   v.nodes.slice(0, 5).map(n => n.target.join(' '))])),
  e => done([['axe-error', 'critical', String(e), []]]));
"""
ME_PAGES = ("/me", "/me/availability", "/me/preview", "/me/calendars", "/me/types", "/me/bookings",
            "/me/connect", "/me/sessions")  # fmt: skip


def _paths(runtime: Runtime, admin_headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """A client, and the path of each kind of public page with its state filled in."""
    api, booking_id = booked(runtime, admin_headers, slug="ada")
    reschedule = links(next(r for r in outbox(runtime) if r.recipient == GUEST))["reschedule"]
    bea = make_provider(api, admin_headers, slug="bea", instant_book=False)
    kind = {
        "slug": "planning",
        "title": "Planning call",
        "durations": [30, 60],
        "location": "https://meet.example/bea",
        "description": "Bring your questions.",
    }
    made = api.post(f"/api/v1/providers/{bea}/meeting-types", json=kind, headers=admin_headers)
    assert made.status_code == 201, made.text
    looks = {"accent_colour": "#ffd33d", "photo_url": "https://cdn.example/bea.png"}
    assert api.patch(f"/api/v1/providers/{bea}", json=looks, headers=admin_headers).is_success
    page = api.get("/book/bea/planning", params={"tz": "UTC", "day": "2027-03-03"}).text
    start, end = re.findall(r'name="(?:start|end)" value="([^"]+)"', page)[:2]
    form = {"start": start, "end": end, "tz": "UTC", "type": "planning"}
    held = api.post("/book/bea/hold", data=form)
    bad_email = api.post(str(held.url.path), data={"email": "not an address", "tz": "UTC"})
    assert bad_email.status_code == 400
    done = api.post(str(held.url.path), data={"email": "gus@example.net", "tz": "UTC"})
    manage = re.search(r'id="manage" href="([^"]+)"', done.text)
    assert manage is not None, done.text
    return api, {
        "landing": "/",
        "booking": "/book/ada?tz=Asia/Tokyo&m=taken",
        "booking_month": "/book/ada?tz=UTC&view=month&h=12",
        "types": "/book/bea",
        "type": "/book/bea/planning?tz=UTC&duration=60",
        "hold": f"{held.url.path}?tz=Europe/Berlin",
        "request_sent": f"{done.url.path}?{done.url.query.decode()}",
        "manage": manage[1].replace("&amp;", "&"),
        "bad_address": "/book/ada?day=9999-12-25",
        "not_found": "/book/nobody",
        "reschedule": f"/reschedule?r={reschedule}",
        "link_problem": "/approve?t=nonsense",
        "sign_in": "/me",
        "me_booking": f"/me/bookings/{booking_id}",
    }


def _violations(driver: Any) -> list[Any]:
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    found: list[Any] = driver.execute_async_script(_RUN)
    return [v for v in found if v[1] in FAILING]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_or_critical_axe_violation(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any, scheme: str, tmp_path: Path
) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core missing: run `npm ci` in tests/unit/mailagent/js")
    api, paths = _paths(runtime, admin_headers)
    sign_in(api, runtime, "ada@example.org")
    cookie = api.cookies.get("parley_session", path="/me")
    driver = browser
    driver.set_script_timeout(60)
    _scheme(driver, scheme)
    failures: dict[str, list[Any]] = {}
    checked = []
    with served(runtime) as base:
        for name, path in paths.items():
            if name == "me_booking":
                driver.add_cookie({"name": "parley_session", "value": cookie, "path": "/me"})
            driver.get(base + path)
            if found := _violations(driver):
                failures[name] = found
            checked.append(name)
            driver.save_screenshot(str(tmp_path / f"axe_{scheme}_{name}.png"))
        for path in ME_PAGES:
            driver.get(base + path)
            assert "sign-out" in driver.page_source, path  # signed in, not the sign-in page
            if found := _violations(driver):
                failures[path] = found
            checked.append(path)
    assert not failures, failures
    assert len(checked) == len(paths) + len(ME_PAGES)
