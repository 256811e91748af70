"""A provider makes a meeting type on /me in headless Chromium and a guest books it: the
type's card on the booking page, its own page with its place, the hold and done pages
naming it, and the invitation that reaches the guest (delivered to the Maildir) carrying
its title as SUMMARY and its place as LOCATION. Screenshots go to test-artifacts/."""

from __future__ import annotations

import email
import email.policy
from typing import Any

from core.runtime import Runtime, utc_now
from mailagent.outbox import deliver_outbox
from tests.e2e.test_me_browser import _link_from_maildir, _shot, _wait
from tests.integration.api.helpers import client_for, make_provider, served


def _invitation_to(runtime: Runtime, address: str) -> str:
    deliver_outbox(runtime.settings, runtime.sessions, runtime.clock)
    for path in (runtime.settings.maildir / "new").iterdir():
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address in str(message["To"]):
            for part in message.walk():
                if part.get_content_type() == "text/calendar":
                    return str(part.get_content())
    raise AssertionError(f"no invitation to {address} in the Maildir")


def test_a_provider_offers_a_type_and_a_guest_books_it(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    make_provider(client_for(runtime), admin_headers, slug="ada", lead_time_hours=0,
                  weekly=[{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                           "start": "00:00", "end": "24:00"}])  # fmt: skip
    runtime.clock = utc_now
    with served(runtime) as base:
        runtime.settings = runtime.settings.model_copy(update={"base_url": base})
        driver.get(f"{base}/me")
        driver.find_element(By.ID, "email").send_keys("ada@example.org")
        driver.find_element(By.ID, "send-link").click()
        _wait(driver, "#check-mail")
        driver.get(_link_from_maildir(runtime))
        driver.find_element(By.ID, "sign-in").click()
        _wait(driver, "h1", "Hello, Ada Host")

        driver.find_element(By.LINK_TEXT, "Meeting types").click()
        _wait(driver, "#no-types")
        for field, value in (("new-title", "Planning call"), ("new-slug", "planning"),
                             ("new-durations", "30, 60"),
                             ("new-location", "https://meet.example/ada")):  # fmt: skip
            driver.find_element(By.ID, field).send_keys(value)
        driver.find_element(By.ID, "add-type-button").click()
        _wait(driver, "#notice", "Meeting type added")
        _shot(driver, runtime, "meeting_types")

        driver.get(f"{base}/book/ada")
        driver.find_element(By.CSS_SELECTOR, "#type-planning a").click()
        _wait(driver, "#type-location", "meet.example")
        _shot(driver, runtime, "type_page")
        driver.find_element(By.CSS_SELECTOR, "button.slot").click()
        _wait(driver, "#type-title", "Planning call")
        driver.find_element(By.ID, "name").send_keys("Grace Guest")
        driver.find_element(By.ID, "email").send_keys("grace@example.net")
        driver.find_element(By.ID, "confirm").click()
        _wait(driver, "#result")
        assert "Planning call" in driver.find_element(By.ID, "type-title").text
        _shot(driver, runtime, "type_done")

    invitation = _invitation_to(runtime, "grace@example.net")
    assert "SUMMARY:Planning call" in invitation
    assert "LOCATION:https://meet.example/ada" in invitation
