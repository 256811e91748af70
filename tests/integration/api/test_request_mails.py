"""A request-to-book guest is told each step by mail; an unanswered request lapses (#19 item 3).

Through the API and the worker's job, reading what the outbox holds the way a mail
reader would: "request sent" at once with the booking's own page, "not booked" with the
reason when the host declines, a lapse after PARLEY_BOOKING_REQUEST_TTL_MINUTES that
frees the slot and tells both; a host's cancel reason reaches the guest in the CANCEL.
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.jobs import JobContext
from core.runtime import Runtime
from parley.handlers import job_handlers
from tests.integration.api.helpers import (
    NOW,
    Clock,
    TestClient,
    client_for,
    hold_body,
    make_provider,
)

WED = "2027-03-03"


def _mails(runtime: Runtime, kind: str) -> list[tuple[str, str, str]]:
    """(recipient, subject, text) of each outbox message of kind, oldest first."""
    with runtime.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == kind).order_by(OutboundMessage.id)
        ).all()
        found = []
        for row in rows:
            message = email.message_from_bytes(row.mime, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = " ".join((body.get_content() if body else "").split())
            found.append((row.recipient, str(message["Subject"]), text))
    return found


def _request(client: TestClient, provider: str, hour: int) -> dict[str, Any]:
    start, end = f"{WED}T{hour:02}:00:00Z", f"{WED}T{hour:02}:30:00Z"
    hold = client.post("/api/v1/holds", json=hold_body(provider, start, end, guest_name="Grace"))
    assert hold.status_code == 201, hold.text
    made = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm")
    assert made.status_code == 201, made.text
    booking: dict[str, Any] = made.json()["booking"]
    assert booking["status"] == "requested"
    return booking


def _free(client: TestClient, provider: str, start: str) -> bool:
    answer = client.get(f"/api/v1/providers/{provider}/slots",
                        params={"start": f"{WED}T00:00:00Z", "end": f"{WED}T23:00:00Z",
                                "duration": "30"})  # fmt: skip
    return start in [s["start"] for s in answer.json()["slots"]]


def test_a_request_is_acknowledged_then_declined_with_the_reason(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, slug="dana", instant_book=False)
    booking = _request(client, provider, 9)
    ((to, subject, text),) = _mails(runtime, "notice.request_received")
    assert to == "guest@example.net" and subject.startswith("Request sent: Session with Ada Host")
    assert "confirms each request" in text and "/booking?m=" in text
    assert [m[0] for m in _mails(runtime, "notice.booking_request")] == ["dana@example.org"]

    declined = client.post(f"/api/v1/bookings/{booking['id']}/decline", headers=admin_headers)
    assert declined.status_code == 200, declined.text
    ((to, subject, text),) = _mails(runtime, "notice.request_declined")
    assert to == "guest@example.net" and subject.startswith("Not booked")
    assert "declined by the provider" in text and "/book/dana" in text
    assert _mails(runtime, "itip.cancellation") == []  # nobody had an event to remove


def test_an_unanswered_request_lapses_and_both_are_told(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    clock = Clock(NOW)
    client = client_for(runtime, clock)
    provider = make_provider(client, admin_headers, slug="dana", instant_book=False)
    booking = _request(client, provider, 10)
    assert not _free(client, provider, f"{WED}T10:00:00Z")

    def expire(at: Any) -> None:
        context = JobContext(sessions=runtime.sessions, now=at, services={"runtime": runtime})
        job_handlers()["bookings.expire_requests"](context, {})

    expire(NOW + timedelta(hours=47))  # within PARLEY_BOOKING_REQUEST_TTL_MINUTES (48 h)
    assert client.get(f"/api/v1/bookings/{booking['id']}", headers=admin_headers).json()[
        "status"] == "requested"  # fmt: skip
    expire(NOW + timedelta(hours=48, minutes=1))
    shown = client.get(f"/api/v1/bookings/{booking['id']}", headers=admin_headers).json()
    assert shown["status"] == "cancelled"
    assert shown["cancel_reason"] == "nobody answered the request in time"
    assert _free(client, provider, f"{WED}T10:00:00Z")
    ((guest, _, text),) = _mails(runtime, "notice.request_declined")
    assert guest == "guest@example.net" and "nobody answered" in text
    ((host, subject, _),) = _mails(runtime, "notice.request_lapsed")
    assert host == "dana@example.org" and subject.startswith("Request lapsed")
    expire(NOW + timedelta(hours=49))  # nothing twice
    assert len(_mails(runtime, "notice.request_lapsed")) == 1


def test_the_hosts_cancel_reason_reaches_the_guest(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, slug="ada")
    hold = client.post("/api/v1/holds", json=hold_body(provider, f"{WED}T09:00:00Z",
                                                        f"{WED}T09:30:00Z"))  # fmt: skip
    booking = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm").json()["booking"]
    cancelled = client.post(f"/api/v1/bookings/{booking['id']}/cancel",
                            json={"reason": "I am ill, sorry."}, headers=admin_headers)  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    texts = {to: text for to, _, text in _mails(runtime, "itip.cancellation")}
    assert "Reason: I am ill, sorry." in texts["guest@example.net"]
