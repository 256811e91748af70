"""Reschedule → approve in headless Chromium, clicked through as people would.

`parley serve` runs as a subprocess with a local relay sink (see test_negotiation_smtp).
The guest opens the "Request a new time" link from their invitation, picks a free time
and sends it; the host opens the approve link from the mail that arrives, which by
itself changes nothing, and presses the button; both get the updated invitation.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.e2e.browser import ARTIFACTS, page_wait
from tests.e2e.test_negotiation_smtp import (
    GUEST,
    HOST,
    Parley,
    book,
    event_of,
    is_itip,
    links,
    new_mail,
    parley,
    views,
)

__all__ = ["parley"]  # a fixture, used by name


def _shot(driver: object, name: str, parley: Parley) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    backend = "postgresql" if parley.db_url.startswith("postgresql") else "sqlite"
    driver.save_screenshot(str(ARTIFACTS / f"negotiation_{name}_{backend}.png"))  # type: ignore[attr-defined]


def test_guest_asks_for_a_new_time_and_the_host_approves_in_the_browser(
    parley: Parley, browser: object
) -> None:
    from selenium.webdriver.common.by import By

    driver: object = browser
    wait = page_wait(driver)
    booked = book(parley)
    reschedule = links(booked.invitations["guest"])["reschedule"]

    driver.get(reschedule)  # type: ignore[attr-defined]
    assert driver.find_element(By.TAG_NAME, "h1").text == "Request a new time"  # type: ignore[attr-defined]
    choices = driver.find_elements(By.CSS_SELECTOR, "input[name=slot]:not([value=other])")  # type: ignore[attr-defined]
    assert choices, "free candidate times are offered"
    offered = [datetime.fromisoformat(c.get_attribute("value")) for c in choices]
    assert booked.start not in offered
    pick = choices[3]
    picked = datetime.fromisoformat(pick.get_attribute("value"))
    pick.click()
    driver.find_element(By.ID, "note").send_keys("An hour later would suit me better.")  # type: ignore[attr-defined]
    _shot(driver, "1_reschedule", parley)
    before = len(parley.relay.snapshot())
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[attr-defined]
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Proposal sent")
    _shot(driver, "2_sent", parley)

    (request,) = new_mail(parley.relay, before, lambda m: "approve" in links(m), 1)
    assert request.recipient == HOST
    assert all(GUEST.casefold() not in v for v in views(request))
    driver.get(links(request)["approve"])  # type: ignore[attr-defined]
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form button"))
    assert "Approve the new time?" in driver.page_source  # type: ignore[attr-defined]
    assert "An hour later would suit me better." in driver.page_source  # type: ignore[attr-defined]
    _shot(driver, "3_approve_page", parley)
    # Opening the link (as a mail scanner would) changed nothing.
    booking = parley.booking(booked.id)
    assert booking["sequence"] == 0
    assert datetime.fromisoformat(booking["start"]) == booked.start

    before = len(parley.relay.snapshot())
    driver.find_element(By.CSS_SELECTOR, "form button").click()  # type: ignore[attr-defined]
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Approved")
    assert "The new time is set" in driver.page_source  # type: ignore[attr-defined]
    _shot(driver, "4_approved", parley)

    updates = new_mail(parley.relay, before, lambda m: is_itip(m, "REQUEST"), 2)
    assert {m.recipient for m in updates} == {HOST, GUEST}
    for message in updates:
        event = event_of(message)
        assert str(event["UID"]) == booked.uid
        assert int(event["SEQUENCE"]) == 1
        assert event.decoded("DTSTART") == picked
        assert event.decoded("DTEND") == picked + timedelta(minutes=30)
    booking = parley.booking(booked.id)
    assert booking["sequence"] == 1 and datetime.fromisoformat(booking["start"]) == picked

    driver.get(links(request)["approve"])  # type: ignore[attr-defined]
    assert "already used" in driver.page_source  # type: ignore[attr-defined]
    _shot(driver, "5_used_link", parley)
