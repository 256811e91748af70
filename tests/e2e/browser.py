"""Headless Chromium for the browser tests: Debian's chromium driven through selenium."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Without the background-networking flags Chromium keeps dialling hosts this machine
# cannot reach; a fresh profile keeps runs independent.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A Chrome WebDriver; skips with the reason when chromium or its driver is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        print("skipping: Debian's chromium and chromium-driver are not installed")
        pytest.skip("chromium or chromedriver missing (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="parley-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_wait(driver: Any, seconds: float = 20) -> Any:
    """A wait for the page a click leads to.

    A click does not wait for the next page, and an element read while Chromium replaces
    the page goes stale, or is reported as not belonging to the document (a plain
    ``WebDriverException``). Both only mean "not there yet", so the wait polls on.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    ignored = (StaleElementReferenceException, WebDriverException)
    return WebDriverWait(driver, seconds, ignored_exceptions=ignored)
