"""Two tenants' organizer mailboxes on one `parley serve`, over real SMTP both ways.

The default tenant sends as scheduling@parley.test; a second tenant, created over the API
while Parley runs, as bookings@clinic.test. Both have a provider with slug "ada" and the
same host and guest addresses. Each tenant's invitations come from its own address (the
envelope sender too), the listener accepts the new tenant's addresses at once and refuses
others with 550, and an answer sent to one tenant's address never touches the other
tenant's booking, even when it carries that booking's UID.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.relay import running_relay
from tests.e2e.test_negotiation_smtp import (
    ADMIN,
    GUEST,
    ORGANIZER,
    Booked,
    Parley,
    book,
    event_of,
    serve_parley,
    stop_parley,
)
from tests.integration.negotiation import mails

pytestmark = pytest.mark.slow

CLINIC = "bookings@clinic.test"
# The receiving MTA's verdict Parley trusts (PARLEY_INBOUND_AUTH=authres:<id>): with it a
# guest's answer may come to the bare organizer address, so only the tenant of the
# address it was sent to keeps it away from another tenant's booking with the same UID.
AUTHSERV = "mx.parley.test"
VOUCHED = f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=guestmail.example\r\n"


@pytest.fixture
def parley(tmp_path: Path, db_url: str) -> Iterator[Parley]:
    with running_relay() as (sink, relay_port):
        proc, running = serve_parley(
            tmp_path, db_url, sink, relay_port, PARLEY_INBOUND_AUTH=f"authres:{AUTHSERV}"
        )
        try:
            yield running
        finally:
            running.http.close()
            stop_parley(proc)


class TenantParley(Parley):
    """The same `parley serve`, addressed as the system token acting in one tenant."""

    tenant: str = "default"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**ADMIN, "X-Parley-Tenant": self.tenant}
        return self.http.request(method, f"{self.base}/api/v1{path}", headers=headers, **kwargs)


def in_tenant(parley: Parley, slug: str) -> TenantParley:
    other = TenantParley(parley.base, parley.smtp_port, parley.relay, parley.db_url, parley.http)
    other.tenant = slug
    return other


def _clinic(parley: Parley) -> TenantParley:
    created = parley.api(
        "POST",
        "/tenants",
        json={"name": "Clinic", "slug": "clinic", "organizer_email": CLINIC,
              "organizer_name": "Clinic Bookings"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["organizer_email"] == CLINIC
    return in_tenant(parley, "clinic")


def _rcpt(parley: Parley, address: str) -> int:
    with smtplib.SMTP("127.0.0.1", parley.smtp_port, timeout=10) as client:
        client.ehlo()
        client.mail(GUEST)
        code, _ = client.rcpt(address)
        return code


def _guest_partstat(parley: Parley, booking_id: str) -> str:
    return str(parley.booking(booking_id)["guest"]["partstat"])


def _tentative(parley: Parley, booked: Booked, *, uid: str, to: str) -> tuple[str, str | None]:
    raw = VOUCHED.encode() + mails.outlook(
        method="REPLY", uid=uid, sequence=0, attendee=GUEST, to=to, partstat="TENTATIVE"
    )
    parley.send(raw, to=to, sender=GUEST)
    return parley.inbound_outcome(raw)


def test_each_tenant_mails_from_and_is_answered_at_its_own_address(parley: Parley) -> None:
    clinic = _clinic(parley)
    # Accepted at once after the tenant was made; still 550 for anyone else's address.
    assert _rcpt(parley, CLINIC) == 250
    assert _rcpt(parley, "bookings+a1b2c3@clinic.test") == 250
    assert _rcpt(parley, "reception@clinic.test") == 550
    assert _rcpt(parley, ORGANIZER) == 250

    home = book(parley, "ada")
    theirs = book(clinic, "ada")
    assert home.id != theirs.id

    for booked, organizer, name in ((home, ORGANIZER, None), (theirs, CLINIC, "Clinic Bookings")):
        for received in booked.invitations.values():
            local, _, domain = organizer.partition("@")
            assert received.mail_from == organizer
            sender = received.message["From"].addresses[0]
            assert sender.domain == domain and sender.username.startswith(f"{local}+")
            if name is not None:
                assert sender.display_name == name
            assert booked.organizer_of("guest").endswith(f"@{domain}")
            assert str(event_of(received)["ORGANIZER"]).endswith(f"@{domain}")

    # The clinic's private address for its guest, carrying the default tenant's UID.
    crossed = _tentative(parley, theirs, uid=home.uid, to=theirs.organizer_of("guest"))
    assert crossed == ("ignored", f"no booking has UID {home.uid!r}"), crossed
    # The bare addresses, each with the other tenant's UID (From is vouched for).
    for uid, to in ((home.uid, CLINIC), (theirs.uid, ORGANIZER)):
        outcome = _tentative(parley, theirs, uid=uid, to=to)
        assert outcome == ("ignored", f"no booking has UID {uid!r}"), outcome
    assert _guest_partstat(parley, home.id) == "accepted"
    assert _guest_partstat(clinic, theirs.id) == "accepted"

    # The clinic's own answer at its own address is applied to its booking only.
    applied = _tentative(parley, theirs, uid=theirs.uid, to=CLINIC)
    assert applied[0] == "itip", applied
    assert _guest_partstat(clinic, theirs.id) == "tentative"
    assert _guest_partstat(parley, home.id) == "accepted"

    # The inbound list of each tenant shows only the mail sent to it.
    listed = clinic.api("GET", "/inbound-messages")
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == 3
    assert len(parley.api("GET", "/inbound-messages").json()["items"]) == 1
