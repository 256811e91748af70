"""kill -9 of `parley serve` during a burst of answers, twice, on PostgreSQL.

500 guests decline over SMTP (each answer retried by its sender until it gets a 250, as
a mail server does) while the server is killed twice and restarted on the same data
folder. Every answer is applied once (one cancellation per booking, two CANCELs), the
relay gets no more duplicates than the outbox has connections per kill, and the restarted
server delivers the backlog at once: the jobs and mail the dead process held are its own.
"""

from __future__ import annotations

import collections
import contextlib
import email
import re
import signal
import smtplib
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core.db.models import (
    AuditEntry,
    Booking,
    InboundMessage,
    Invitation,
    Job,
    OutboundMessage,
)
from core.runtime import Runtime
from core.services.bookings import actor_of
from core.services.holds import HoldRequest, confirm_hold, create_hold
from tests.conftest import free_port
from tests.e2e.helpers import parley_env, start, wait_healthy
from tests.e2e.inbound import ALL_DAY as AROUND_THE_CLOCK
from tests.e2e.relay import Received, RelaySink, running_relay
from tests.e2e.test_negotiation_smtp import ADMIN_TOKEN, ORGANIZER, stop_parley
from tests.integration.api.helpers import Clock, client_for
from tests.integration.negotiation import mails

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
]

ANSWERS = 500
CONNECTIONS = 4
SENDERS = 8
SEEDERS = 4
ALL_DAY = {**AROUND_THE_CLOCK, "booking_window_days": 60}


def seed(runtime: Runtime, count: int) -> list[tuple[str, str, str]]:
    """count confirmed bookings, their invitations already delivered; (id, uid, guest).

    The providers over the API, the bookings through the services from a few threads
    (one provider each, so they do not wait for each other's lock): the seed is not what
    is tested, and the HTTP round trips would double its time.
    """
    runtime.settings = runtime.settings.model_copy(update={"public_rate_limit_per_minute": 0})
    headers = {"Authorization": f"Bearer {runtime.settings.admin_token}"}
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    client = client_for(runtime, Clock(now))
    providers = []
    for n in range(SEEDERS):
        created = client.post("/api/v1/providers", headers=headers, json={
            "name": f"Unit {n}", "email": f"unit{n}@host.example", "timezone": "UTC",
            "slug": f"unit-{n}",
        })  # fmt: skip
        assert created.status_code == 201, created.text
        provider = created.json()["id"]
        put = client.put(
            f"/api/v1/providers/{provider}/availability", json=ALL_DAY, headers=headers
        )
        assert put.status_code == 200, put.text
        providers.append(provider)
    actor = actor_of(runtime, "guest")

    def book(n: int) -> tuple[str, str, str]:
        begin = now + timedelta(days=1, minutes=30 * (n // SEEDERS))
        guest = f"guest{n}@guests.example"
        request = HoldRequest(providers[n % SEEDERS], begin, begin + timedelta(minutes=30), guest)
        with runtime.sessions.begin() as session:
            hold = create_hold(session, request, now, ttl_seconds=600).hold
        with runtime.sessions.begin() as session:
            booking = confirm_hold(session, hold.id, actor, now)
            return booking.id, booking.uid, guest

    with ThreadPoolExecutor(SEEDERS) as pool:
        booked = list(pool.map(book, range(count)))
    with runtime.sessions.begin() as session:  # the invitations went out long ago
        session.execute(update(OutboundMessage).values(status="sent", sent_at=now))
    return booked


def declines(runtime: Runtime, booked: list[tuple[str, str, str]]) -> list[tuple[str, bytes]]:
    """(envelope to, raw) of each guest's DECLINED reply to their private address."""
    local, _, domain = ORGANIZER.partition("@")
    with runtime.sessions() as session:
        tags = dict(
            session.execute(
                select(Invitation.booking_id, Invitation.plus_tag).where(Invitation.role == "guest")
            ).all()
        )
    out = []
    for booking_id, uid, guest in booked:
        to = f"{local}+{tags[booking_id]}@{domain}"
        out.append(
            (to, mails.apple(uid=uid, sequence=0, attendee=guest, to=to, partstat="DECLINED"))
        )
    return out


class Server:
    """`parley serve` on fixed ports, so senders reach each incarnation at the same address."""

    def __init__(self, tmp_path: Path, db_url: str, relay_port: int) -> None:
        self.http, self.smtp = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http}"
        self.env = parley_env(
            tmp_path / "data",
            PARLEY_DATABASE_URL=db_url, PARLEY_HTTP_PORT=str(self.http), PARLEY_BASE_URL=self.base,
            PARLEY_SMTP_PORT=str(self.smtp), PARLEY_SMTP_RELAY_URL=f"smtp://127.0.0.1:{relay_port}",
            PARLEY_ORGANIZER_EMAIL=ORGANIZER, PARLEY_WORKER_POLL_SECONDS="0.2",
            PARLEY_ADMIN_TOKEN=ADMIN_TOKEN, PARLEY_SECRET_KEY="e2e-secret-key-0123456789abcdef0123",
            PARLEY_OUTBOX_CONNECTIONS=str(CONNECTIONS), PARLEY_LOG_LEVEL="warning",
        )  # fmt: skip
        self.tmp_path = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start(["serve"], self.env, self.tmp_path)
        wait_healthy(self.base, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def send_until_accepted(port: int, share: list[tuple[str, bytes]], stop: threading.Event) -> None:
    """Each message until it got its 250, reconnecting after a refused or dropped connection."""
    client: smtplib.SMTP | None = None
    for to, raw in share:
        sender = str(email.message_from_bytes(raw)["From"])
        while not stop.is_set():
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
                client.sendmail(sender, [to], raw)
                break
            except (OSError, smtplib.SMTPException):
                client = None
                time.sleep(0.1)
    if client is not None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()


def state(runtime: Runtime) -> str:
    """The queues, for a failure message: inbound outcomes, outbox statuses, job leases."""
    with runtime.sessions() as session:
        inbound = session.execute(
            select(InboundMessage.outcome, func.count()).group_by(InboundMessage.outcome)
        ).all()
        outbox = session.execute(
            select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
        ).all()
        jobs = session.execute(
            select(Job.kind, Job.status, Job.locked_by, Job.run_at).where(
                Job.dedup_key.is_not(None)
            )
        ).all()
    return f"inbound {dict(inbound)}, outbox {dict(outbox)}, jobs {[tuple(j) for j in jobs]}"


_CANCEL = re.compile(rb"(?i)method[=:]\"?cancel")
_MESSAGE_ID = re.compile(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)")


class Cancels:
    """A relay listener: the Message-ID of each CANCEL as it arrives (once per arrival),
    read from the raw bytes, so waiting on the count costs nothing per message."""

    def __init__(self, sink: RelaySink) -> None:
        self.arrived: list[str] = []
        self.times: list[float] = []  # time.monotonic() of each arrival
        sink.listeners.append(self)

    def __call__(self, item: Received) -> None:
        if _CANCEL.search(item.raw):
            found = _MESSAGE_ID.search(item.raw)
            self.arrived.append(found.group(1).decode() if found else "?")
            self.times.append(item.at)

    def __len__(self) -> int:
        return len(self.arrived)

    def unique(self) -> int:
        return len(set(self.arrived))


def test_killed_twice_during_a_burst_every_answer_applied_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    booked = seed(runtime, ANSWERS)
    answers = declines(runtime, booked)
    with running_relay() as (sink, relay_port):
        arrived = Cancels(sink)
        server = Server(tmp_path, runtime.settings.database_url, relay_port)
        server.start()
        stop = threading.Event()
        senders = [
            threading.Thread(
                target=send_until_accepted, args=(server.smtp, answers[i::SENDERS], stop)
            )
            for i in range(SENDERS)
        ]
        try:
            for thread in senders:
                thread.start()
            for kill_at in (ANSWERS // 3, ANSWERS):  # CANCELs out when each kill comes
                try:
                    sink.wait_for(lambda got, n=kill_at: len(arrived) >= n, timeout=60)
                except TimeoutError:
                    raise AssertionError(f"{len(arrived)} CANCELs; {state(runtime)}") from None
                server.kill()
                server.start()
                restarted = time.monotonic()
            for thread in senders:
                thread.join(timeout=60)
            expected = 2 * ANSWERS
            try:
                sink.wait_for(lambda got: arrived.unique() >= expected, timeout=60)
            except TimeoutError:
                raise AssertionError(f"{len(arrived)} CANCELs; {state(runtime)}") from None
            backlog_seconds = time.monotonic() - restarted
        finally:
            stop.set()
            if server.proc is not None:
                stop_parley(server.proc)
    duplicates = len(arrived) - arrived.unique()
    print(f"duplicates {duplicates}, backlog delivered {backlog_seconds:.1f} s after restart")
    assert arrived.unique() == 2 * ANSWERS
    assert duplicates <= 2 * CONNECTIONS, collections.Counter(arrived.arrived).most_common(10)
    assert backlog_seconds < 30  # not the leases' 120 s / 300 s
    with runtime.sessions() as session:
        statuses = collections.Counter(session.scalars(select(Booking.status)))
        assert statuses == {"cancelled": ANSWERS}
        actions = session.execute(
            select(AuditEntry.action, func.count())
            .where(AuditEntry.action.in_(("imip.reply", "booking.cancelled")))
            .group_by(AuditEntry.action)
        ).all()
        assert dict(actions) == {"imip.reply": ANSWERS, "booking.cancelled": ANSWERS}
        per_booking = session.execute(
            select(func.count(func.distinct(AuditEntry.subject_id))).where(
                AuditEntry.action == "booking.cancelled"
            )
        ).scalar_one()
        assert per_booking == ANSWERS
        outcomes = collections.Counter(session.scalars(select(InboundMessage.outcome)))
        assert outcomes == {"itip": ANSWERS}
