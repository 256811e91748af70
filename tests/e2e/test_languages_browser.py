"""A guest switches the pages to German in headless Chromium, and the choice sticks (#19 item 4).

The booking's own page opens in English (the browser asks for nothing else); the footer's
"Deutsch" link turns it German, with the time in the guest's zone written the German way;
the next page ("Neuen Termin anfragen", reached by the page's own button) stays German
because the switch was remembered. Screenshots of both pages go to test-artifacts/.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.formatting import format_range
from core.runtime import Runtime
from tests.e2e.browser import ARTIFACTS, page_wait
from tests.integration.api.helpers import client_for, hold_body, make_provider, served

START, END = datetime(2027, 3, 3, 10, 0, tzinfo=UTC), datetime(2027, 3, 3, 10, 30, tzinfo=UTC)
NEW_YORK = "America/New_York"


def _manage_path(runtime: Runtime) -> str:
    with runtime.sessions() as session:
        row = session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.kind == "itip.invitation",
                OutboundMessage.recipient == "guest@example.net",
            )
        ).one()
    message = email.message_from_bytes(row.mime, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    found = re.search(r"https?://[^/\s]+(/booking\?m=\S+)", body.get_content() if body else "")
    assert found
    return found[1]


def test_a_guest_switches_to_german_and_the_next_page_stays_german(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    api = client_for(runtime)
    provider = make_provider(api, admin_headers, slug="ada")
    body = hold_body(provider, START.isoformat(), END.isoformat(), guest_timezone=NEW_YORK)
    hold = api.post("/api/v1/holds", json=body)
    assert api.post(f"/api/v1/holds/{hold.json()['id']}/confirm").status_code == 201
    driver, wait = browser, page_wait(browser, 15)
    ARTIFACTS.mkdir(exist_ok=True)
    with served(runtime) as base:
        driver.get(base + _manage_path(runtime))
        assert driver.find_element(By.ID, "state").text == "You're booked"
        assert driver.find_element(By.ID, "when").text == "Wed, 3 Mar 2027, 05:00–05:30 EST"
        driver.find_element(By.CSS_SELECTOR, '#languages a[hreflang="de"]').click()
        wait.until(lambda d: d.find_element(By.ID, "state").text == "Sie sind gebucht")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de"
        shown = driver.find_element(By.ID, "when").text
        assert (
            shown
            == format_range(START, END, NEW_YORK, "de")
            == ("Mi., 3. März 2027, 05:00–05:30 EST")
        )
        current = driver.find_element(By.CSS_SELECTOR, '#languages a[aria-current="true"]')
        assert current.text == "Deutsch"
        driver.save_screenshot(str(ARTIFACTS / f"manage_de_{runtime.engine.dialect.name}.png"))
        driver.find_element(By.ID, "new-time").click()
        wait.until(lambda d: d.find_elements(By.ID, "current"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "Neuen Termin anfragen"
        assert driver.find_element(By.ID, "current").text == shown
        driver.save_screenshot(str(ARTIFACTS / f"reschedule_de_{runtime.engine.dialect.name}.png"))
