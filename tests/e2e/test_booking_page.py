"""The booking page in headless Chromium, used as a guest would: pick, hold, fill in, confirm."""

from __future__ import annotations

from datetime import UTC, datetime

from core.runtime import Runtime
from tests.e2e.browser import ARTIFACTS, page_wait
from tests.integration.api.helpers import Clock, client_for, make_provider, served


def test_guest_books_a_slot_in_their_own_zone(
    runtime: Runtime, admin_headers: dict[str, str], browser: object
) -> None:
    from selenium.webdriver.common.by import By

    driver: object = browser
    make_provider(client_for(runtime), admin_headers, slug="ada", lead_time_hours=1)
    runtime.clock = Clock(datetime.now(UTC))
    with served(runtime) as base:
        driver.get(f"{base}/book/ada?tz=America/New_York")  # type: ignore[attr-defined]
        assert "America/New_York" in driver.find_element(By.ID, "shown-zone").text  # type: ignore[attr-defined]
        first = driver.find_elements(By.CSS_SELECTOR, "button.slot")[0]  # type: ignore[attr-defined]
        shown, start = first.text, datetime.fromisoformat(first.get_attribute("data-start"))
        first.click()
        wait = page_wait(driver, 15)
        wait.until(lambda d: "Almost done" in d.page_source or "alert" in d.page_source)
        assert "Almost done" in driver.page_source, driver.page_source  # type: ignore[attr-defined]
        assert shown in driver.page_source  # type: ignore[attr-defined]
        driver.find_element(By.ID, "name").send_keys("Grace Guest")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "email").send_keys("grace@example.net")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "confirm").click()  # type: ignore[attr-defined]
        wait.until(lambda d: d.find_elements(By.ID, "result"))
        result = driver.find_element(By.ID, "result").text  # type: ignore[attr-defined]
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"booking_page_{runtime.engine.dialect.name}.png"))  # type: ignore[attr-defined]
        assert result == "You're booked"
        driver.get(f"{base}/book/ada?tz=America/New_York")  # type: ignore[attr-defined]
        starts = [
            b.get_attribute("data-start")
            for b in driver.find_elements(By.CSS_SELECTOR, "button.slot")
        ]  # type: ignore[attr-defined]
    assert start.isoformat() not in starts
