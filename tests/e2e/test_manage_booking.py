"""A guest in control of their booking, in headless Chromium (#19 item 3).

A guest in Tokyo books from the booking page, follows the confirmation's link to the
booking's own page, sees the time in their zone, downloads the .ics and finds the
add-to-calendar links, asks for a new time (and can again while that proposal waits),
then cancels with a reason: the booking is cancelled for both, the reason is kept for the
host, and each of them is sent a CANCEL. A made-up link gets the link-problem page.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import icalendar
from sqlalchemy import select

from core.db.models import OutboundMessage
from core.formatting import format_datetime
from core.runtime import Runtime
from tests.e2e.browser import ARTIFACTS, page_wait
from tests.integration.api.helpers import Clock, client_for, make_provider, served

TOKYO = "Asia/Tokyo"


def _book(driver: Any, base: str) -> datetime:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/book/ada?tz={TOKYO}")
    first = driver.find_elements(By.CSS_SELECTOR, "button.slot")[0]
    start = datetime.fromisoformat(first.get_attribute("data-start"))
    first.click()
    wait = page_wait(driver, 15)
    wait.until(lambda d: d.find_elements(By.ID, "email"))
    driver.find_element(By.ID, "name").send_keys("Grace Guest")
    driver.find_element(By.ID, "email").send_keys("grace@example.net")
    driver.find_element(By.ID, "confirm").click()
    wait.until(lambda d: d.find_elements(By.ID, "manage"))
    driver.find_element(By.ID, "manage").click()
    wait.until(lambda d: d.find_elements(By.ID, "state"))
    return start


def _mailed_manage_links(runtime: Runtime) -> dict[str, str]:
    """recipient → the /booking?m=… path in each invitation mail's text."""
    found = {}
    with runtime.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == "itip.invitation")
        ).all()
        for row in rows:
            message = email.message_from_bytes(row.mime, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            match = re.search(r"https?://[^/\s]+(/booking\?m=[A-Za-z0-9_\-%.~]+)", text)
            if match:
                found[row.recipient] = match.group(1)
    return found


def test_a_guest_sees_adds_reschedules_and_cancels_their_booking(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    api = client_for(runtime)
    provider = make_provider(api, admin_headers, slug="ada", lead_time_hours=1)
    runtime.clock = Clock(datetime.now(UTC))
    with served(runtime) as base:
        start = _book(driver, base)
        wait = page_wait(driver, 15)
        assert driver.find_element(By.ID, "state").text == "You're booked"
        local = start.astimezone(ZoneInfo(TOKYO))
        shown = driver.find_element(By.ID, "when").text
        assert shown.startswith(format_datetime(local, TOKYO, "en", "date")), shown
        assert f"{local:%H:%M}–" in shown and shown.endswith(" JST"), shown
        assert TOKYO in driver.page_source
        manage_url = driver.current_url

        ics = httpx.get(driver.find_element(By.ID, "ics").get_attribute("href"))
        assert ics.status_code == 200 and "attachment" in ics.headers["content-disposition"]
        (event,) = icalendar.Calendar.from_ical(ics.text).walk("VEVENT")
        assert event["DTSTART"].dt == start and "Ada Host" in str(event["SUMMARY"])
        end = event["DTEND"].dt
        google = parse_qs(
            urlsplit(driver.find_element(By.ID, "google").get_attribute("href")).query
        )
        assert google["dates"] == [f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}"]
        assert "outlook.live.com" in driver.find_element(By.ID, "outlook").get_attribute("href")

        driver.find_element(By.ID, "new-time").click()
        wait.until(lambda d: "/reschedule" in d.current_url)
        choice = driver.find_elements(By.CSS_SELECTOR, "input[type=radio]")
        assert choice, driver.page_source
        choice[0].click()
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(lambda d: "Proposal sent" in d.page_source)
        driver.get(manage_url)
        wait.until(lambda d: d.find_elements(By.ID, "pending"))
        driver.find_element(By.ID, "new-time").click()  # again, while one is pending
        wait.until(lambda d: "/reschedule" in d.current_url)
        assert "already been used" not in driver.page_source

        driver.get(manage_url)
        wait.until(lambda d: d.find_elements(By.ID, "reason"))
        driver.find_element(By.ID, "reason").send_keys("My flight was moved.")
        driver.find_element(By.ID, "cancel").click()
        wait.until(lambda d: d.find_elements(By.ID, "done"))
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"manage_booking_{runtime.engine.dialect.name}.png"))
        assert driver.find_element(By.ID, "state").text == "Cancelled"
        assert "My flight was moved." in driver.find_element(By.ID, "reason").text
        assert not driver.find_elements(By.ID, "cancel")

        driver.get(f"{base}/booking?m=made-up")
        assert "does not work" in driver.page_source

        # The guest's invitation mail carries a link to the same page (the host's does not).
        mailed = _mailed_manage_links(runtime)
        assert list(mailed) == ["grace@example.net"], mailed
        driver.get(base + mailed["grace@example.net"])
        wait.until(lambda d: d.find_elements(By.ID, "state"))
        assert driver.find_element(By.ID, "state").text == "Cancelled"

    listed = api.get("/api/v1/bookings", params={"provider_id": provider}, headers=admin_headers)
    (booking,) = listed.json()["items"]
    assert booking["status"] == "cancelled"
    assert booking["cancel_reason"] == "cancelled by Grace Guest: My flight was moved."
    mails = api.get("/api/v1/outbound-messages", headers=admin_headers).json()["items"]
    cancels = {m["recipient"] for m in mails if m["kind"] == "itip.cancellation"}
    assert cancels == {"ada@example.org", "grace@example.net"}, mails
