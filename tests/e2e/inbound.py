"""Many bookings at once for the inbound-mail tests and benchmarks, and what became of mail.

``book_many`` books sessions over the JSON API of a running Parley (one provider, open
around the clock) and reads each invitation the relay got for its UID and its private
ORGANIZER address, the one a calendar app answers to. ``outcomes`` reads the settled
inbound messages straight from the database.
"""

from __future__ import annotations

import email
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy

import httpx
from sqlalchemy import text

from core.db.engine import make_engine
from tests.e2e.relay import Received, RelaySink

ADMIN = {"Authorization": "Bearer e2e-admin-token"}  # serve_parley's admin token
HOST = "ada.host@hostmail.example"
ALL_DAY = {
    "timezone": "UTC",
    "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "00:00", "end": "24:00"}],
    "lead_time_hours": 1, "booking_window_days": 365, "min_duration_minutes": 30,
    "slot_step_minutes": 30, "instant_book": True,
}  # fmt: skip
_UNFOLD = re.compile(r"\r?\n[ \t]")


@dataclass(frozen=True)
class Invited:
    """A confirmed booking whose two invitations reached the relay."""

    id: str
    uid: str
    guest: str
    organizer: dict[str, str]  # private ORGANIZER address, by role

    def to(self, role: str) -> str:
        return self.organizer[role]


def book_many(
    base: str, relay: RelaySink, count: int, *, slug: str = "ada", zone: str = "UTC"
) -> list[Invited]:
    """count confirmed 30-minute bookings, guest i each, once both invitations arrived;
    zone is the provider's (the host's) time zone."""
    before = len(relay.snapshot())
    with httpx.Client(base_url=f"{base}/api/v1", headers=ADMIN, timeout=30) as http:
        created = http.post(
            "/providers",
            json={"name": "Ada Host", "email": HOST, "timezone": zone, "slug": slug},
        )
        assert created.status_code == 201, created.text
        provider_id = created.json()["id"]
        hours = http.put(
            f"/providers/{provider_id}/availability", json={**ALL_DAY, "timezone": zone}
        )
        assert hours.status_code == 200, hours.text
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)

    def one(index: int) -> tuple[str, str, str]:
        start = first + timedelta(minutes=30 * index)
        guest = f"guest{index}@guests.example"
        body = {
            "provider_id": provider_id, "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(), "guest_email": guest,
            "guest_name": f"Guest {index}", "guest_timezone": "UTC",
        }  # fmt: skip
        with httpx.Client(base_url=f"{base}/api/v1", headers=ADMIN, timeout=30) as client:
            hold = client.post("/holds", json=body)
            assert hold.status_code == 201, hold.text
            done = client.post(f"/holds/{hold.json()['id']}/confirm")
            assert done.status_code == 201, done.text
            booking = done.json()["booking"]
            return booking["id"], booking["uid"], guest

    with ThreadPoolExecutor(4) as pool:
        booked = list(pool.map(one, range(count)))
    got = relay.wait_count(before + 2 * count, timeout=30 + count / 10)[before:]
    organizers: dict[str, dict[str, str]] = {}
    for message in got:
        uid, organizer = calendar_fields(message)
        organizers.setdefault(uid, {})[message.recipient] = organizer
    return [
        Invited(b_id, uid, guest, {"guest": organizers[uid][guest], "host": organizers[uid][HOST]})
        for b_id, uid, guest in booked
    ]


def calendar_fields(message: Received) -> tuple[str, str]:
    """(UID, ORGANIZER address) of an invitation's inline calendar part."""
    parsed = email.message_from_bytes(message.raw, policy=policy.compat32)
    for part in parsed.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            ics = _UNFOLD.sub("", payload.decode("utf-8"))
            uid = re.search(r"^UID:(.+?)\r?$", ics, re.MULTILINE)
            organizer = re.search(r"^ORGANIZER[^\n]*?mailto:(.+?)\r?$", ics, re.MULTILINE | re.I)
            assert uid and organizer, ics
            return uid.group(1), organizer.group(1).lower()
    raise AssertionError(f"no calendar part in {message.message['Subject']}")


@dataclass(frozen=True)
class Settled:
    id: int
    message_key: str
    subject: str | None
    outcome: str
    reason: str | None
    booking_id: str | None


def outcomes(db_url: str) -> list[Settled]:
    """Every stored inbound message with its outcome, oldest first."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, message_key, subject, outcome, outcome_reason, booking_id"
                    " FROM inbound_messages ORDER BY id"
                )
            )
            return [Settled(*row) for row in rows]
    finally:
        engine.dispose()


def wait_settled(db_url: str, count: int, timeout: float) -> list[Settled]:
    """All stored messages once at least count are stored and none is pending."""
    deadline = time.monotonic() + timeout
    while True:
        found = outcomes(db_url)
        if len(found) >= count and all(s.outcome != "pending" for s in found):
            return found
        if time.monotonic() > deadline:
            pending = sum(s.outcome == "pending" for s in found)
            raise TimeoutError(f"{pending} of {len(found)} still pending after {timeout} s")
        time.sleep(0.1)


def booking_statuses(db_url: str, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(ids)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, status FROM bookings"))
            return {b_id: status for b_id, status in rows if b_id in wanted}
    finally:
        engine.dispose()
