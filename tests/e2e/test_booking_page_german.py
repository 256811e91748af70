"""A guest in Berlin books on the booking page in German in headless Chromium (#19 item 4):
?lang=de turns the page German (the cookie keeps the hold and done pages German), the
strip's month, weekday heads and chosen day are written the German way, the clock can be
switched between 24 and 12 hours and the times follow, and the confirmation says
"Sie sind gebucht" with the German date. Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.formatting import format_clock, format_long_day, format_month, format_weekday
from core.runtime import Runtime
from tests.e2e.browser import ARTIFACTS, page_wait
from tests.integration.api.helpers import Clock, client_for, make_provider, served

BERLIN = "Europe/Berlin"


def test_a_guest_books_in_german_on_either_clock(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    make_provider(client_for(runtime), admin_headers, slug="ada", lead_time_hours=1)
    runtime.clock = Clock(datetime.now(UTC))
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": BERLIN})
    wait = page_wait(browser, 15)
    ARTIFACTS.mkdir(exist_ok=True)
    dialect = runtime.engine.dialect.name
    with served(runtime) as base:
        browser.get(f"{base}/book/ada?lang=de&tz={BERLIN}&h=24")
        wait.until(lambda d: d.find_elements(By.ID, "day-title"))
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de"
        assert browser.find_element(By.TAG_NAME, "h1").text == "Termin mit Ada Host buchen"
        chosen = browser.find_element(By.CSS_SELECTOR, "a.day.chosen").get_attribute("data-day")
        day = datetime.fromisoformat(chosen).date()
        assert browser.find_element(By.ID, "strip-title").text == format_month(day, "de")
        heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.days th")]
        assert heads == ["Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."]
        assert browser.find_element(By.ID, "day-title").text == format_long_day(day, "de")
        slot = browser.find_elements(By.CSS_SELECTOR, "button.slot")[0]
        start = datetime.fromisoformat(slot.get_attribute("data-start"))
        assert slot.text == format_clock(start, BERLIN, "de")  # "09:00"
        assert slot.get_attribute("aria-label").endswith(" buchen")
        browser.save_screenshot(str(ARTIFACTS / f"book_de_24_{dialect}.png"))

        browser.find_element(By.CSS_SELECTOR, 'input[name="h"][value="12"]').click()
        browser.find_element(By.CSS_SELECTOR, "#zone-form button[type=submit]").click()
        wait.until(lambda d: "h=12" in d.current_url)
        slot = browser.find_elements(By.CSS_SELECTOR, "button.slot")[0]
        twelve = format_clock(start, BERLIN, "de", hours=12)
        assert slot.text == twelve and twelve.endswith("AM"), (slot.text, twelve)
        assert browser.find_element(By.ID, "day-title").text == format_long_day(day, "de")
        browser.save_screenshot(str(ARTIFACTS / f"book_de_12_{dialect}.png"))

        slot.click()
        wait.until(lambda d: d.find_elements(By.ID, "email"))
        assert browser.find_element(By.TAG_NAME, "h1").text == "Fast geschafft"
        local = start.astimezone(ZoneInfo(BERLIN))
        when = browser.find_element(By.CSS_SELECTOR, ".notice strong").text
        assert when.startswith(f"{format_long_day(local.date(), 'de')}, {twelve}"), when
        browser.find_element(By.ID, "email").send_keys("lena@example.de")
        browser.find_element(By.ID, "confirm").click()
        wait.until(lambda d: d.find_elements(By.ID, "result"))
        assert browser.find_element(By.ID, "result").text == "Sie sind gebucht"
        assert "Eine Einladung geht an lena@example.de." in browser.page_source
        assert format_weekday(local.date(), "de") in heads
        browser.save_screenshot(str(ARTIFACTS / f"book_de_done_{dialect}.png"))
