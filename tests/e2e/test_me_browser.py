"""The provider pages in headless Chromium, used as a provider would: sign in through the
emailed link (read from the Maildir), edit availability and watch the preview change, add a
feed served by a local HTTP server, make an app password and use it with the caldav client,
approve a request-to-book. Screenshots of the main pages go to test-artifacts/."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from core.runtime import Runtime, utc_now
from mailagent.outbox import deliver_outbox
from tests.e2e.browser import ARTIFACTS, page_wait
from tests.integration.api.helpers import client_for, hold_body, make_provider, served
from tests.integration.me.helpers import serve_feed


def _ics_tomorrow() -> str:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=11, minute=0, second=0)
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Feed//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:e2e-1@test\r\nDTSTAMP:{start:{stamp}}\r\n"
        f"DTSTART:{start:{stamp}}\r\nDTEND:{start + timedelta(hours=1):{stamp}}\r\n"
        "SUMMARY:Busy\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _link_from_maildir(runtime: Runtime) -> str:
    """Deliver the outbox in-process (Maildir, no relay) and read the sign-in link."""
    report = deliver_outbox(runtime.settings, runtime.sessions, runtime.clock)
    assert report is not None
    newest = max((runtime.settings.maildir / "new").iterdir(), key=lambda p: p.stat().st_mtime)
    message = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"https?://\S+/me/link\?t=[A-Za-z0-9_\-]+", body.get_content())
    assert found, "no sign-in link in the delivered mail"
    return found[0]


def _shot(driver: Any, runtime: Runtime, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"me_{name}_{runtime.engine.dialect.name}.png"))


def _wait(driver: Any, selector: str, text: str = "") -> Any:
    """The element once the page after a click shows it (clicks do not wait for loads)."""
    from selenium.webdriver.common.by import By

    def ready(d: Any) -> Any:
        found = d.find_elements(By.CSS_SELECTOR, selector)
        return found[0] if found and text in found[0].text else False

    return page_wait(driver, 15).until(ready)


def _slot_count(driver: Any) -> int:
    from selenium.webdriver.common.by import By

    return int(driver.find_element(By.ID, "preview").get_attribute("data-slot-count"))


def test_provider_uses_the_self_service_pages(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any
) -> None:
    import caldav
    from selenium.webdriver.common.by import By

    driver = browser
    api = client_for(runtime)
    provider_id = make_provider(api, admin_headers, slug="ada", lead_time_hours=0)
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
        _shot(driver, runtime, "home")

        driver.get(f"{base}/me/availability")
        before = _slot_count(driver)
        driver.find_element(By.NAME, "w-5-0-start").send_keys("10:00")
        driver.find_element(By.NAME, "w-5-0-end").send_keys("12:00")
        driver.find_element(By.ID, "instant_book").click()  # requests from now on
        driver.find_element(By.ID, "save").click()
        _wait(driver, "#notice", "Saved.")
        assert _slot_count(driver) > before
        _shot(driver, runtime, "availability")

        with serve_feed(_ics_tomorrow()) as url:
            driver.get(f"{base}/me/calendars")
            driver.find_element(By.ID, "url").send_keys(url)
            driver.find_element(By.ID, "name").send_keys("Studio calendar")
            driver.find_element(By.ID, "add-calendar").click()
            _wait(driver, "#notice", "Calendar added")
            card = driver.find_element(By.CSS_SELECTOR, ".source")
            assert card.get_attribute("data-status") == "ok", card.text
            assert "Studio calendar" in card.text and "1 event" in card.text
            _shot(driver, runtime, "calendars")
        driver.get(f"{base}/me/preview")
        assert driver.find_elements(By.CSS_SELECTOR, '.busy[data-kind="external"]')
        _shot(driver, runtime, "preview")

        driver.get(f"{base}/me/connect")
        driver.find_element(By.ID, "label").send_keys("laptop")
        driver.find_element(By.ID, "create-password").click()
        password = _wait(driver, "#app-password").text.strip()
        username = driver.find_element(By.ID, "dav-username").text.strip()
        dav_url = driver.find_element(By.ID, "dav-url").text.strip()
        _shot(driver, runtime, "connect")
        with caldav.DAVClient(url=dav_url, username=username, password=password) as client:
            assert client.principal().calendars()
        # The copy button puts the password on the clipboard; a reload makes no second one.
        driver.execute_cdp_cmd(
            "Browser.grantPermissions",
            {"origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
        )
        copy = driver.find_element(By.ID, "copy-app-password")
        assert copy.is_displayed()
        copy.click()
        _wait(driver, "#copy-app-password", "Copied")
        pasted = driver.execute_async_script(
            "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('!' + e));"
        )
        assert pasted == password
        driver.refresh()
        assert not driver.find_elements(By.ID, "app-password")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".app-password")) == 1

        slots = api.get(
            f"/api/v1/providers/{provider_id}/slots",
            params={
                "start": datetime.now(UTC).isoformat(),
                "end": (datetime.now(UTC) + timedelta(days=14)).isoformat(),
                "duration": "30",
            },
        ).json()["slots"]
        first = slots[0]
        hold = api.post("/api/v1/holds", json=hold_body(provider_id, first["start"], first["end"]))
        booking = api.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json={}).json()
        assert booking["booking"]["status"] == "requested"
        driver.get(f"{base}/me")
        driver.find_element(By.CSS_SELECTOR, "#requested a").click()
        _wait(driver, "#approve").click()
        _wait(driver, "#notice", "Approved")
        assert driver.find_element(By.ID, "status").text == "confirmed"
        _shot(driver, runtime, "booking")
        driver.get(f"{base}/me/bookings")
        _shot(driver, runtime, "bookings")
