"""The operator console in headless Chromium, used as an operator would: sign in from the
emailed link (read from the Maildir), see on the overview that a mail fails and retry it,
find in the mailbox why a reply was ignored and open its booking's story, resolve a
double booking, and read the overview on a phone-sized screen. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import smtplib
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.db.models import Invitation
from core.runtime import Runtime, utc_now
from core.services.bookings import actor_of
from core.services.mail_in import AuthPolicy, ProcessingContext, process_pending
from mailagent.outbox import OutboxSender, deliver_outbox
from mailagent.smtp import InboundHandler, RecipientPolicy, smtp_factory
from parley.handlers import MAIL_READER
from tests.e2e.browser import ARTIFACTS, page_wait
from tests.integration.api.helpers import client_for, hold_body, make_provider, served
from tests.integration.console.helpers import add_operator
from tests.integration.mail.helpers import server_in_thread
from tests.integration.mail.test_outbox import Relay
from tests.integration.negotiation import mails
from tests.integration.sync.conftest import FeedServer, serving
from tests.integration.sync.feeds import all_day, calendar

GUEST = "grace@guests.example"
ORGANIZER = "scheduling@parley.localhost"


def _book(api: Any, headers: dict[str, str]) -> dict[str, Any]:
    """A confirmed booking of ada a few days from now, with Grace as the guest."""
    provider = make_provider(api, headers, slug="ada", lead_time_hours=0, booking_window_days=30)
    now = datetime.now(UTC)
    slots = api.get(f"/api/v1/providers/{provider}/slots", params={
        "start": now.isoformat(), "end": (now + timedelta(days=14)).isoformat(), "duration": "30",
    }).json()["slots"]  # fmt: skip
    body = hold_body(provider, slots[0]["start"], slots[0]["end"], guest_email=GUEST,
                     guest_name="Grace Guest")  # fmt: skip
    hold = api.post("/api/v1/holds", json=body)
    booking: dict[str, Any] = api.post(f"/api/v1/holds/{hold.json()['id']}/confirm").json()
    return booking["booking"]


def _refuse_the_guest(runtime: Runtime) -> None:
    """The relay refuses Grace's address for good: her invitation fails."""
    relay = Relay()
    relay.permanent.add(GUEST)
    with server_in_thread(relay.factory()) as port:
        settings = runtime.settings.model_copy(
            update={"smtp_relay_url": f"smtp://127.0.0.1:{port}"}
        )
        asyncio.run(OutboxSender(settings, runtime.sessions, runtime.clock).run())


def _forwarded_reply(runtime: Runtime, booking: dict[str, Any]) -> None:
    """Grace forwarded her invitation; a friend declines it through the SMTP listener."""
    with runtime.sessions() as session:
        tag = session.scalar(
            select(Invitation.plus_tag).where(
                Invitation.booking_id == booking["id"], Invitation.role == "guest"
            )
        )
    to = f"scheduling+{tag}@parley.localhost"
    raw = mails.gmail(method="REPLY", uid=booking["uid"], sequence=0,
                      attendee="friend@else.example", to=to, partstat="DECLINED")  # fmt: skip
    handler = InboundHandler(
        runtime.sessions, RecipientPolicy.single(ORGANIZER), clock=runtime.clock
    )
    with (
        server_in_thread(smtp_factory(handler, data_size_limit=1_000_000)) as port,
        smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
    ):
        client.sendmail("friend@else.example", [to], raw)
    process_pending(ProcessingContext(
        runtime.sessions, runtime.settings, AuthPolicy(), runtime.clock,
        actor_of(runtime, "mailbox"), reader=MAIL_READER,
    ))  # fmt: skip


def _double_booking(api: Any, headers: dict[str, str], feeds: FeedServer) -> None:
    unit = make_provider(api, headers, slug="casa")
    first = date.today() + timedelta(days=10)
    airbnb = calendar(all_day("r1@airbnb.com", first, 3, "Reserved",
                              DESCRIPTION="Reservation URL: https://www.airbnb.com/hosting/"
                              "reservations/details/HMABCD1234"),
                      prodid="-//Airbnb Inc//Hosting Calendar 0.8.8//EN")  # fmt: skip
    stay = calendar(all_day("b1@booking.com", first + timedelta(days=1), 2, "Guest stay"),
                    prodid="-//Booking.com//Calendar//EN")  # fmt: skip
    for path, body in (("/a.ics", airbnb), ("/b.ics", stay)):
        made = api.post(f"/api/v1/providers/{unit}/sources", json={"url": feeds.put(path, body)},
                        headers=headers)  # fmt: skip
        assert api.post(f"/api/v1/sources/{made.json()['id']}/sync", headers=headers).json()


def _link_from_maildir(runtime: Runtime) -> str:
    deliver_outbox(runtime.settings, runtime.sessions, runtime.clock)
    delivered = (runtime.settings.maildir / "new").iterdir()
    for path in sorted(delivered, key=lambda p: p.stat().st_mtime, reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body else ""
        found = re.search(r"https?://\S+/admin/link\?t=[A-Za-z0-9_\-]+", text)
        if found:
            return found[0]
    raise AssertionError("no console sign-in link in the Maildir")


def _shot(driver: Any, runtime: Runtime, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"admin_{name}_{runtime.engine.dialect.name}.png"))


def _wait(driver: Any, selector: str, text: str = "") -> Any:
    from selenium.webdriver.common.by import By

    def ready(d: Any) -> Any:
        found = d.find_elements(By.CSS_SELECTOR, selector)
        return found[0] if found and text in found[0].text else False

    return page_wait(driver, 15).until(ready)


def test_an_operator_works_through_the_console(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    api = client_for(runtime)
    runtime.clock = utc_now
    booking = _book(api, admin_headers)
    _refuse_the_guest(runtime)
    _forwarded_reply(runtime, booking)
    add_operator(api, admin_headers, "default", "ops@example.org", "manager")
    with serving(FeedServer()) as feeds, served(runtime) as base:
        _double_booking(api, admin_headers, feeds)
        runtime.settings = runtime.settings.model_copy(update={"base_url": base})
        driver.get(f"{base}/admin")
        driver.find_element(By.ID, "email").send_keys("ops@example.org")
        driver.find_element(By.ID, "send-link").click()
        _wait(driver, "#check-mail")
        driver.get(_link_from_maildir(runtime))
        _wait(driver, "h1", "ops@example.org")
        driver.find_element(By.ID, "sign-in").click()
        _wait(driver, "#who", "manager of")
        failing = driver.find_element(By.CSS_SELECTOR, "#mail-failing .n")
        assert failing.text == "1"
        assert driver.find_element(By.CSS_SELECTOR, "#open-conflicts .n").text == "1"
        _shot(driver, runtime, "overview")

        driver.find_element(By.ID, "mail-failing").click()
        row = _wait(driver, '.outbound[data-status="failed"]', GUEST)
        assert "550" in row.text
        _shot(driver, runtime, "outbox")
        row.find_element(By.CSS_SELECTOR, "button.retry").click()
        _wait(driver, "#notice", "queued to be sent again")
        assert not driver.find_elements(By.CSS_SELECTOR, '.outbound[data-status="failed"]')

        driver.find_element(By.ID, "tab-in").click()
        ignored = _wait(driver, '.inbound[data-outcome="ignored"]', "friend@else.example")
        assert "never invited" in ignored.find_element(By.CSS_SELECTOR, ".why").text
        _shot(driver, runtime, "inbox")
        ignored.find_element(By.CSS_SELECTOR, "a.booking-link").click()
        _wait(driver, "#uid", booking["uid"])
        assert "friend@else.example" in driver.find_element(By.ID, "answers").text
        assert GUEST in driver.find_element(By.ID, "invitations").text
        _shot(driver, runtime, "booking")

        driver.get(f"{base}/admin")
        driver.find_element(By.ID, "open-conflicts").click()
        conflict = _wait(driver, ".conflict", "airbnb")
        conflict.find_element(By.CSS_SELECTOR, "button.keep-first").click()
        _wait(driver, "#notice", "Conflict resolved.")
        assert driver.find_element(By.ID, "no-conflicts").text == "No conflicts need review."
        driver.get(f"{base}/admin/audit")
        assert "conflict.resolved" in _wait(driver, "#entries", "ops@example.org").text
        _shot(driver, runtime, "audit")

        driver.set_window_size(390, 844)  # a phone
        driver.get(f"{base}/admin")
        _wait(driver, "#figures")
        wide = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0, f"the overview scrolls sideways on a phone by {wide}px"
        _shot(driver, runtime, "phone")
        driver.get(f"{base}/admin/mail?box=out")
        _wait(driver, "#outbound")
        wide = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0, f"the mailbox scrolls sideways on a phone by {wide}px"
        _shot(driver, runtime, "phone_mail")
