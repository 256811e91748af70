"""Every text of the console stays readable in dark and light mode (WCAG AA), with rows of
every state on the pages: an ignored reply, pending mail, a failing calendar."""

from __future__ import annotations

from typing import Any

import pytest

from core.runtime import Runtime
from tests.e2e.browser import ARTIFACTS
from tests.e2e.test_dark_mode import _poor_contrast, _scheme
from tests.integration.api.helpers import served
from tests.integration.console.helpers import add_operator, sign_in
from tests.integration.console.test_mailbox import _guest_plus_address, _send_over_smtp
from tests.integration.negotiation import mails
from tests.integration.negotiation.helpers import booked
from tests.integration.sync.conftest import FeedServer, serving


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_console_pages_are_readable(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any, scheme: str
) -> None:
    api, booking_id = booked(runtime, admin_headers)
    uid = api.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()["uid"]
    to = _guest_plus_address(runtime, booking_id)
    raw = mails.gmail(method="REPLY", uid=uid, sequence=0, attendee="friend@else.example",
                      to=to, partstat="DECLINED")  # fmt: skip
    _send_over_smtp(runtime, raw, to)
    add_operator(api, admin_headers, "default", "ops@example.org", "owner")
    providers = api.get("/api/v1/providers", headers=admin_headers).json()["items"]
    with serving(FeedServer()) as feeds:
        url = feeds.put("/down.ics", "oops", status=503)
        source = api.post(f"/api/v1/providers/{providers[0]['id']}/sources", json={"url": url},
                          headers=admin_headers).json()["id"]  # fmt: skip
        api.post(f"/api/v1/sources/{source}/sync", headers=admin_headers)
    sign_in(api, runtime, "ops@example.org")
    cookie = api.cookies.get("parley_admin", path="/admin")
    driver = browser
    _scheme(driver, scheme)
    ARTIFACTS.mkdir(exist_ok=True)
    with served(runtime) as base:
        driver.get(f"{base}/admin")
        labels, poor = _poor_contrast(driver, scheme)
        assert not poor and any("button#send-link" in label for label in labels), poor
        driver.add_cookie({"name": "parley_admin", "value": cookie, "path": "/admin"})
        for name in ("admin", "admin/mail?box=in", "admin/mail?box=out", "admin/bookings",
                     f"admin/bookings/{booking_id}", "admin/providers", "admin/calendars",
                     "admin/conflicts", "admin/audit"):  # fmt: skip
            driver.get(f"{base}/{name}")
            labels, poor = _poor_contrast(driver, scheme)
            assert any("button#sign-out" in label for label in labels), (name, labels)
            assert not poor, (name, poor)
        driver.get(f"{base}/admin/mail?box=in")
        driver.save_screenshot(str(ARTIFACTS / f"{scheme}_admin_mail.png"))
