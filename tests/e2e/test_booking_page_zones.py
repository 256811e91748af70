"""The booking page's zone picker in headless Chromium: the browser's zone is picked up by
the small script (a backward-compatible link name too), and without JavaScript the select
and its button still change the zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.runtime import Runtime
from tests.e2e.browser import page_wait
from tests.integration.api.helpers import Clock, client_for, make_provider, served


def _shown_zone(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "shown-zone").text)


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Europe/Stockholm"])
def test_the_guests_own_zone_is_picked_up(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any, zone: str
) -> None:
    # Catches: a browser zone missing from the canonical list (a link) never applied.
    from selenium.webdriver.support.ui import Select

    make_provider(client_for(runtime), admin_headers, slug="ada", lead_time_hours=1)
    runtime.clock = Clock(datetime.now(UTC))
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": zone})
    with served(runtime) as base:
        week_on = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
        browser.get(f"{base}/book/ada?day={week_on}")
        page_wait(browser).until(lambda d: _shown_zone(d) == zone)
        assert "tz=" in browser.current_url
        assert f"day={week_on}" in browser.current_url  # the date asked for is kept
        select = Select(browser.find_element("id", "tz"))
        assert select.first_selected_option.get_attribute("value") == zone


def test_the_picker_works_without_javascript(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    make_provider(client_for(runtime), admin_headers, slug="ada", lead_time_hours=1)
    runtime.clock = Clock(datetime.now(UTC))
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    with served(runtime) as base:
        browser.get(f"{base}/book/ada")
        assert _shown_zone(browser) == "Europe/Berlin"  # no script: the provider's zone
        picker = Select(browser.find_element(By.ID, "tz"))
        picker.select_by_value("America/New_York")
        label = picker.first_selected_option.text
        assert label.startswith("New York — United States (UTC-0")
        browser.find_element(By.CSS_SELECTOR, "#zone-form button").click()
        page_wait(browser).until(lambda d: _shown_zone(d) == "America/New_York")
        first = browser.find_elements(By.CSS_SELECTOR, "button.slot")[0]
        start = datetime.fromisoformat(first.get_attribute("data-start"))
        assert first.text == start.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")
