"""A guest in Tokyo books from the date strip in headless Chromium: the page takes the
browser's zone and clock, the zone search narrows the picker, a day picked on the strip
shows that day's times only, each time matches its instant in Asia/Tokyo, a bad email
moves focus to the error, and the booking is made. Screenshots go to pytest's tmp dir."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from core.runtime import Runtime
from tests.e2e.browser import page_wait
from tests.integration.api.helpers import Clock, client_for, make_provider, served
from web.pages.booking import clock_label, day_label

TOKYO = ZoneInfo("Asia/Tokyo")


def _query(driver: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(driver.current_url).query).items()}


def _shown_times(driver: Any) -> list[tuple[str, datetime, str]]:
    from selenium.webdriver.common.by import By

    buttons = driver.find_elements(By.CSS_SELECTOR, "button.slot")
    return [
        (
            b.text,
            datetime.fromisoformat(b.get_attribute("data-start")),
            b.get_attribute("aria-label"),
        )
        for b in buttons
    ]


def test_a_guest_in_tokyo_books_from_the_strip(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    make_provider(client_for(runtime), admin_headers, slug="ada", lead_time_hours=1)
    runtime.clock = Clock(datetime.now(UTC))
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    wait = page_wait(browser)
    with served(runtime) as base:
        browser.get(f"{base}/book/ada")
        wait.until(lambda d: d.find_element(By.ID, "shown-zone").text == "Asia/Tokyo")
        query = _query(browser)
        assert query["tz"] == "Asia/Tokyo" and query["auto"] == "1" and query["h"] in ("12", "24")
        hours = int(query.get("h", "24"))
        browser.save_screenshot(str(tmp_path / "strip_1_detected.png"))

        search = browser.find_element(By.ID, "tz-filter")
        assert search.is_displayed()  # the script shows it; without script, the select alone
        search.send_keys("tokyo")
        visible = browser.execute_script(
            "return [...document.querySelectorAll('#tz option')].filter(o => !o.hidden)"
            ".map(o => o.value)"
        )
        assert visible == ["Asia/Tokyo"], visible

        chosen = browser.find_element(By.CSS_SELECTOR, "a.day.chosen").get_attribute("data-day")
        other = next(
            a for a in browser.find_elements(By.CSS_SELECTOR, "a.day:not(.chosen)")
            if a.get_attribute("data-day") > chosen
        )  # fmt: skip
        day, count = other.get_attribute("data-day"), int(other.get_attribute("data-times"))
        other.click()
        wait.until(lambda d: _query(d).get("day") == day)
        assert browser.find_element(By.CSS_SELECTOR, "a.day.chosen").get_attribute(
            "data-day"
        ) == day and browser.find_element(By.CSS_SELECTOR, "[aria-current=date]")
        times = _shown_times(browser)
        assert len(times) == count > 0
        for label, start, name in times:
            local = start.astimezone(TOKYO)
            assert local.date().isoformat() == day, (label, start)
            assert label == clock_label(local, hours), (label, local)
            assert name.endswith(f"{day_label(local.date())}, {label}"), name
        browser.save_screenshot(str(tmp_path / "strip_2_day.png"))

        label, start, _ = times[0]
        browser.find_elements(By.CSS_SELECTOR, "button.slot")[0].click()
        wait.until(lambda d: d.find_elements(By.ID, "email"))
        assert f"{label}" in browser.find_element(By.CSS_SELECTOR, ".notice strong").text
        browser.find_element(By.ID, "email").send_keys("not an address")
        browser.execute_script("document.getElementById('email').removeAttribute('type')")
        browser.find_element(By.ID, "confirm").click()
        wait.until(lambda d: d.find_elements(By.ID, "email-error"))
        assert browser.switch_to.active_element.get_attribute("id") == "email-error"
        email = browser.find_element(By.ID, "email")
        assert email.get_attribute("aria-describedby") == "email-error"
        browser.save_screenshot(str(tmp_path / "strip_3_error.png"))
        email.clear()
        email.send_keys("hana@example.jp")
        browser.find_element(By.ID, "confirm").click()
        wait.until(lambda d: d.find_elements(By.ID, "result"))
        assert browser.find_element(By.ID, "result").text == "You're booked"
        when = browser.find_element(By.CSS_SELECTOR, ".notice strong").text
        local = start.astimezone(TOKYO)
        assert when.startswith(f"{day_label(local.date())}, {clock_label(local, hours)}"), when
        assert "(Asia/Tokyo)" in browser.find_element(By.CSS_SELECTOR, ".notice").text
        browser.save_screenshot(str(tmp_path / "strip_4_booked.png"))
        browser.set_window_size(390, 844)  # a phone: the strip and times fit, no sideways scroll
        browser.get(f"{base}/book/ada?tz=Asia/Tokyo&view=month&h={hours}")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, overflow
        browser.save_screenshot(str(tmp_path / "strip_5_phone_month.png"))
    print(f"screenshots in {tmp_path}")
