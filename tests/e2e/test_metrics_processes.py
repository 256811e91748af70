"""Metrics across processes, scraped as Prometheus scrapes them.

`parley serve` books over HTTP and sends the invitations through a real relay; a bounce
for the guest comes back over SMTP. A separate `parley worker` serves /metrics on
PARLEY_WORKER_METRICS_PORT. The bounce is counted once in all (by whichever process
settled it: Prometheus sums counters over instances), and the database gauges read the
same in both processes.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.helpers import parley_env, start
from tests.e2e.inbound import book_many
from tests.e2e.relay import running_relay
from tests.e2e.test_negotiation_smtp import Parley, serve_parley, stop_parley
from tests.metrics import Samples, scrape

pytestmark = pytest.mark.slow


@pytest.fixture
def parley(tmp_path: Path, db_url: str) -> Iterator[Parley]:
    with running_relay() as (sink, relay_port):
        proc, parley_ = serve_parley(tmp_path, db_url, sink, relay_port)
        try:
            yield parley_
        finally:
            parley_.http.close()
            stop_parley(proc)


def bounce_for(recipient: str, organizer: str, message_id: str) -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    boundary = "7E1D.1778000000/mx.parley.example"
    return f"""Return-Path: <>
From: MAILER-DAEMON@mx.parley.example (Mail Delivery System)
To: {organizer}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 01 Mar 2027 09:00:00 +0000
Message-ID: <bounce-{time.monotonic_ns()}@mx.parley.example>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

<{recipient}>: host mx.guests.example said: 550 5.1.1 no such user

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.parley.example

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1

--{boundary}
Content-Type: text/rfc822-headers

To: {recipient}
Subject: Invitation
Message-ID: {message_id}

--{boundary}--
""".replace("\n", "\r\n").encode()


def metrics_of(url: str) -> Samples:
    with httpx.Client(base_url=url, timeout=10) as client:
        return scrape(client)


def wait_for_worker_metrics(url: str, timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return metrics_of(url)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def total(name: str, *samples: Samples, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return sum(s.get(key, 0.0) for s in samples)


def test_a_bounce_is_counted_once_and_gauges_agree_across_processes(
    parley: Parley, tmp_path: Path
) -> None:
    (invited,) = book_many(parley.base, parley.relay, 1)
    guest_invite = next(m for m in parley.relay.snapshot() if m.recipient == invited.guest)
    port = free_port()
    env = parley_env(
        tmp_path / "worker-data",
        PARLEY_DATABASE_URL=parley.db_url,
        PARLEY_WORKER_METRICS_PORT=str(port),
        PARLEY_WORKER_POLL_SECONDS="0.2",
        PARLEY_SECRET_KEY="e2e-secret-key-0123456789abcdef0123",
        PARLEY_LOG_LEVEL="warning",
    )
    worker = start(["worker"], env, tmp_path)
    worker_url = f"http://127.0.0.1:{port}"
    try:
        before = (metrics_of(parley.base), wait_for_worker_metrics(worker_url))
        raw = bounce_for(invited.guest, invited.to("guest"), guest_invite.message["Message-ID"])
        with smtplib.SMTP("127.0.0.1", parley.smtp_port, timeout=30) as client:
            assert client.sendmail("", [invited.to("guest")], raw) == {}
        deadline = time.monotonic() + 30
        while True:
            after = (metrics_of(parley.base), metrics_of(worker_url))
            if total("parley_mail_bounces_total", *after) > total(
                "parley_mail_bounces_total", *before
            ):
                break
            assert time.monotonic() < deadline, "the bounce was never counted"
            time.sleep(0.2)
        bounced = total("parley_mail_inbound_total", *after, outcome="bounce")
        assert bounced - total("parley_mail_inbound_total", *before, outcome="bounce") == 1
        assert (
            total("parley_mail_bounces_total", *after) - total("parley_mail_bounces_total", *before)
            == 1
        )
        web, work = after
        for name in ("parley_database_gauges_up", "parley_holds_active", "parley_sources_active",
                     "parley_outbox_failed", "parley_inbound_failed"):  # fmt: skip
            assert web[(name, ())] == work[(name, ())], name
        assert web[("parley_database_gauges_up", ())] == 1
    finally:
        worker.terminate()
        assert worker.wait(timeout=15) == 0
