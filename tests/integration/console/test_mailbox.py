"""The console's mailbox as an operator uses it: why a reply was ignored, retrying a mail
the relay refused, and what a viewer may not do."""

from __future__ import annotations

import asyncio
import re
import smtplib

from sqlalchemy import select

from core.db.models import Invitation, OutboundMessage
from core.runtime import Runtime
from core.services.bookings import actor_of
from core.services.mail_in import AuthPolicy, ProcessingContext, process_pending
from mailagent.outbox import OutboxSender
from mailagent.smtp import InboundHandler, RecipientPolicy, smtp_factory
from parley.handlers import MAIL_READER
from tests.integration.api.helpers import client_for
from tests.integration.console.helpers import add_operator, post_form, sign_in
from tests.integration.mail.helpers import server_in_thread
from tests.integration.mail.test_outbox import Relay
from tests.integration.negotiation import mails
from tests.integration.negotiation.helpers import GUEST, booked

ORGANIZER = "scheduling@parley.localhost"


def _guest_plus_address(runtime: Runtime, booking_id: str) -> str:
    with runtime.sessions() as session:
        guest = session.scalar(
            select(Invitation).where(
                Invitation.booking_id == booking_id, Invitation.role == "guest"
            )
        )
        assert guest is not None
        return f"scheduling+{guest.plus_tag}@parley.localhost"


def _send_over_smtp(runtime: Runtime, raw: bytes, to: str) -> None:
    """Through the real SMTP listener, then processed by the worker's job function."""
    handler = InboundHandler(
        runtime.sessions, RecipientPolicy.single(ORGANIZER), clock=runtime.clock
    )
    with (
        server_in_thread(smtp_factory(handler, data_size_limit=1_000_000)) as port,
        smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
    ):
        assert client.sendmail("friend@else.example", [to], raw) == {}
    context = ProcessingContext(
        runtime.sessions, runtime.settings, AuthPolicy(), runtime.clock,
        actor_of(runtime, "mailbox"), reader=MAIL_READER,
    )  # fmt: skip
    process_pending(context)


def test_the_mailbox_says_why_a_forwarded_reply_was_ignored(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, booking_id = booked(runtime, admin_headers)
    uid = client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()["uid"]
    add_operator(client, admin_headers, "default", "viewer@example.org", "viewer")
    to = _guest_plus_address(runtime, booking_id)
    raw = mails.gmail(method="REPLY", uid=uid, sequence=0, attendee="friend@else.example", to=to,
                      partstat="DECLINED")  # fmt: skip
    _send_over_smtp(runtime, raw, to)

    sign_in(client, runtime, "viewer@example.org")
    overview = client.get("/admin").text
    assert re.search(
        r'id="answers-processed" href="/admin/mail\?box=in"><span class="n">1<', overview
    )
    page = client.get("/admin/mail?box=in").text
    row = re.search(
        r'<li class="inbound" id="in-(\d+)" data-outcome="ignored">(.*?)</li>', page, re.S
    )
    assert row, page
    assert "friend@else.example" in row[2]
    why = re.search(r'<span class="why">([^<]+)</span>', row[2])
    assert why and "never invited" in why[1], row[2]
    assert f'href="/admin/bookings/{booking_id}"' in row[2]
    download = client.get(f"/admin/mail/in/{row[1]}/raw")
    assert download.status_code == 200 and download.content == raw
    assert download.headers["content-disposition"].startswith("attachment")
    assert 'data-outcome="ignored"' in client.get("/admin/mail?box=in&outcome=ignored").text
    assert "No messages received" in client.get("/admin/mail?box=in&outcome=itip").text
    story = client.get(f"/admin/bookings/{booking_id}").text
    assert "friend@else.example" in story and "confirmed" in story
    assert GUEST in story and "booking.confirmed" in story


def _fail_guest_mail(runtime: Runtime) -> OutboundMessage:
    """Deliver the outbox through a relay that refuses the guest's address for good."""
    relay = Relay()
    relay.permanent.add(GUEST)
    with server_in_thread(relay.factory()) as port:
        settings = runtime.settings.model_copy(
            update={"smtp_relay_url": f"smtp://127.0.0.1:{port}"}
        )
        asyncio.run(OutboxSender(settings, runtime.sessions, runtime.clock).run())
    with runtime.sessions() as session:
        failed = session.scalars(
            select(OutboundMessage).where(OutboundMessage.status == "failed")
        ).one()
    assert failed.recipient == GUEST and (failed.last_error or "").startswith("550")
    return failed


def test_a_manager_retries_a_refused_mail_and_a_viewer_may_not(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, _booking_id = booked(runtime, admin_headers)
    add_operator(client, admin_headers, "default", "viewer@example.org", "viewer")
    add_operator(client, admin_headers, "default", "manager@example.org", "manager")
    failed = _fail_guest_mail(runtime)

    viewer = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    sign_in(viewer, runtime, "viewer@example.org")
    assert re.search(
        r'id="mail-failing" href="[^"]+"><span class="n">1<', viewer.get("/admin").text
    )
    listed = viewer.get("/admin/mail?box=out&status=failed").text
    assert f'id="out-{failed.id}" data-status="failed"' in listed
    assert "550" in listed and "Retry now" not in listed
    refused = post_form(viewer, "/admin/mail?box=out", f"/admin/mail/out/{failed.id}/retry")
    assert refused.status_code == 403 and "A viewer may not do this" in refused.text

    manager = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    sign_in(manager, runtime, "manager@example.org")
    page = manager.get("/admin/mail?box=out&status=failed").text
    assert f'action="/admin/mail/out/{failed.id}/retry"' in page and "Retry now" in page
    done = post_form(manager, "/admin/mail?box=out", f"/admin/mail/out/{failed.id}/retry")
    assert done.status_code == 200 and "queued to be sent again" in done.text
    with runtime.sessions() as session:
        row = session.get(OutboundMessage, failed.id)
        assert row is not None and (row.status, row.attempts) == ("pending", 0)
    again = post_form(manager, "/admin/mail?box=out", f"/admin/mail/out/{failed.id}/retry")
    assert "has not failed" in again.text
