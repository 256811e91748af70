"""The outbox: written once per key, delivered through a local relay with retries, or to Maildir."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from core.services.outbox import claim_due, enqueue_message, mark_sent_many, retry_delay
from mailagent.dkim import dkim_domain_passes
from mailagent.outbox import OutboxSender
from tests.conftest import free_port
from tests.integration.mail.helpers import NOW, mail, rsa_key, server_in_thread


class Relay:
    """A relay that answers 451 while `failing`, else keeps every message it accepts."""

    def __init__(self) -> None:
        self.failing = False
        self.permanent: set[str] = set()
        self.received: list[bytes] = []
        self.logins: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope,
                          address: str, options: list[str]) -> str:  # fmt: skip
        if address in self.permanent:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self.failing:
            return "451 4.3.0 Try again later"
        self.received.append(bytes(envelope.original_content or b""))
        return "250 2.0.0 Queued"

    def authenticate(self, server: Any, session: Any, envelope: Any,
                     mechanism: str, data: Any) -> AuthResult:  # fmt: skip
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"u", b"p w")
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)

    def factory(self) -> Callable[[], SMTP]:
        return lambda: SMTP(self, decode_data=False, authenticator=self.authenticate,
                            auth_require_tls=False)  # fmt: skip


def _queue(runtime: Runtime, count: int, **extra: Any) -> None:
    with runtime.sessions.begin() as session:
        for i in range(count):
            enqueue_message(
                session, idempotency_key=f"k{i}", kind="invitation", uid=f"u{i}", sequence=0,
                attendee=f"a{i}@example.net", method="REQUEST", booking_id=None,
                recipient=extra.get("recipient", f"a{i}@example.net"),
                message=mail(message_id=f"<out{i}@parley.localhost>", to=f"a{i}@example.net"),
                message_id=f"<out{i}@parley.localhost>", now=NOW,
            )  # fmt: skip


def _rows(runtime: Runtime) -> list[OutboundMessage]:
    with runtime.sessions() as session:
        return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def _sender(runtime: Runtime, clock: list[datetime], **settings: Any) -> OutboxSender:
    values = runtime.settings.model_dump() | settings
    return OutboxSender(type(runtime.settings)(**values), runtime.sessions, lambda: clock[0])


def test_enqueue_is_once_per_key(runtime: Runtime) -> None:
    _queue(runtime, 2)
    with runtime.sessions.begin() as session:
        again = enqueue_message(
            session, idempotency_key="k0", kind="invitation", uid="u0", sequence=0,
            attendee="a0@example.net", method="REQUEST", booking_id=None,
            recipient="a0@example.net", message=b"other", message_id="<x@y>", now=NOW,
        )  # fmt: skip
    assert again is False
    assert [(r.idempotency_key, r.status) for r in _rows(runtime)] == [
        ("k0", "pending"),
        ("k1", "pending"),
    ]


def test_retry_delay_starts_within_30s_and_caps_at_an_hour() -> None:
    assert 15 <= retry_delay(1, lambda: 0.99) <= retry_delay(1, lambda: 0.0) <= 30
    assert retry_delay(2, lambda: 0.0) > retry_delay(1, lambda: 0.0)
    assert retry_delay(40, lambda: 0.0) == 3600


def test_refused_then_451_then_recovery_delivers_each_exactly_once(runtime: Runtime) -> None:
    _queue(runtime, 5)
    relay, port = Relay(), free_port()
    clock = [NOW]
    url = f"smtp://u:p%20w@127.0.0.1:{port}"
    # 1. Nothing listens: connection refused, every row retried within 30 s.
    report = asyncio.run(_sender(runtime, clock, smtp_relay_url=url).run())
    assert (report.sent, report.retried) == (0, 5)
    first = _rows(runtime)
    assert {r.status for r in first} == {"pending"} and {r.attempts for r in first} == {1}
    assert all(NOW < r.next_attempt_at <= NOW + timedelta(seconds=30) for r in first)
    assert "Connect" in (first[0].last_error or "") or "refused" in (first[0].last_error or "")
    # Not due yet: a run now sends nothing.
    assert asyncio.run(_sender(runtime, clock, smtp_relay_url=url).run()).attempted == 0
    relay.failing = True

    with server_in_thread(relay.factory()) as bound:
        url = f"smtp://u:p%20w@127.0.0.1:{bound}"
        # 2. The relay answers 451: retried again, with a longer delay.
        clock[0] = NOW + timedelta(seconds=31)
        report = asyncio.run(_sender(runtime, clock, smtp_relay_url=url).run())
        assert (report.sent, report.retried) == (0, 5)
        second = _rows(runtime)
        assert all(r.last_error and r.last_error.startswith("451") for r in second)
        assert all(r.next_attempt_at - clock[0] >= timedelta(seconds=30) for r in second)
        # 3. Recovered: every message arrives, once.
        relay.failing = False
        clock[0] = NOW + timedelta(minutes=5)
        report = asyncio.run(_sender(runtime, clock, smtp_relay_url=url).run())
        assert report.sent == 5
        clock[0] = NOW + timedelta(hours=5)
        assert asyncio.run(_sender(runtime, clock, smtp_relay_url=url).run()).attempted == 0
    ids = sorted(message_from_bytes(m)["Message-ID"] for m in relay.received)
    assert ids == sorted(f"<out{i}@parley.localhost>" for i in range(5))
    assert relay.logins and set(relay.logins) <= {"LOGIN", "PLAIN"}
    assert {(r.status, r.attempts) for r in _rows(runtime)} == {("sent", 3)}


class CountingRelay(Relay):
    """A relay that notes which connection each message came over."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[Any, str, str]] = []  # (peer, recipient, Message-ID)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        await asyncio.sleep(0.002)  # a relay's round trip: what connections side by side hide
        message = message_from_bytes(bytes(envelope.original_content or b""))
        self.arrivals.append((session.peer, envelope.rcpt_tos[0], str(message["Message-ID"])))
        return await super().handle_DATA(server, session, envelope)


def test_a_batch_goes_over_several_connections_each_recipient_in_order(runtime: Runtime) -> None:
    recipients = [f"r{n}@example.net" for n in range(5)]
    with runtime.sessions.begin() as session:
        for i in range(60):
            enqueue_message(
                session, idempotency_key=f"k{i}", kind="invitation", uid=f"u{i}", sequence=0,
                attendee=recipients[i % 5], method="REQUEST", booking_id=None,
                recipient=recipients[i % 5],
                message=mail(message_id=f"<out{i}@parley.localhost>", to=recipients[i % 5]),
                message_id=f"<out{i}@parley.localhost>", now=NOW,
            )  # fmt: skip
    relay = CountingRelay()
    with server_in_thread(relay.factory()) as bound:
        url = f"smtp://u:p%20w@127.0.0.1:{bound}"
        sender = _sender(runtime, [NOW], smtp_relay_url=url, outbox_connections=3)
        report = asyncio.run(sender.run())
    assert report.sent == 60
    assert {(r.status, r.attempts) for r in _rows(runtime)} == {("sent", 1)}
    assert sorted(m for _, _, m in relay.arrivals) == sorted(
        f"<out{i}@parley.localhost>" for i in range(60)
    )
    assert 1 < len({peer for peer, _, _ in relay.arrivals}) <= 3
    for recipient in recipients:  # each recipient's mail arrives in the order it was queued
        order = [int(m[4:].split("@")[0]) for _, r, m in relay.arrivals if r == recipient]
        assert order == sorted(order) and len(order) == 12


def test_each_message_is_marked_sent_before_its_connection_sends_the_next(
    runtime: Runtime,
) -> None:
    """A crash at any moment re-sends at most the message in flight on each connection."""
    _queue(runtime, 60)
    relay = CountingRelay()
    unsettled: list[int] = []  # accepted before this arrival, not yet marked sent

    def sent_ids() -> set[str]:
        with runtime.sessions() as session:
            rows = session.scalars(
                select(OutboundMessage.message_id).where(OutboundMessage.status == "sent")
            )
            return set(rows)

    def check(peer: Any) -> None:
        accepted = {m for _, _, m in relay.arrivals}
        unsettled.append(len(accepted - sent_ids()))
        earlier_here = {m for p, _, m in relay.arrivals if p == peer}
        assert earlier_here <= sent_ids(), "sent again on a connection before it was settled"

    class CheckingRelay(CountingRelay):
        async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
            check(session.peer)  # before this one counts as accepted
            return await super().handle_DATA(server, session, envelope)

    relay = CheckingRelay()
    with server_in_thread(relay.factory()) as bound:
        url = f"smtp://u:p%20w@127.0.0.1:{bound}"
        sender = _sender(runtime, [NOW], smtp_relay_url=url, outbox_connections=3)
        report = asyncio.run(sender.run())
    assert report.sent == 60 and len(unsettled) == 60
    assert max(unsettled) <= 2  # the other two connections' last messages, at most
    assert {(r.status, r.locked_by) for r in _rows(runtime)} == {("sent", None)}


class BreakingSigner:
    """Signs nothing and fails on the message given: a key that broke in the middle of a run."""

    def __init__(self, fail_at: int) -> None:
        self.calls, self.fail_at = 0, fail_at

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("the signing key broke")
        return message


def test_a_lane_that_fails_stops_the_batch_and_what_was_sent_is_settled(runtime: Runtime) -> None:
    _queue(runtime, 40)
    relay = CountingRelay()
    with server_in_thread(relay.factory()) as bound:
        url = f"smtp://u:p%20w@127.0.0.1:{bound}"
        sender = _sender(runtime, [NOW], smtp_relay_url=url, outbox_connections=3)
        sender.signer = BreakingSigner(fail_at=30)  # type: ignore[assignment]
        with pytest.raises(RuntimeError, match="signing key"):
            asyncio.run(sender.run())
    rows = _rows(runtime)
    delivered = {m for _, _, m in relay.arrivals}
    sent = {r.message_id for r in rows if r.status == "sent"}
    # 29 were signed; at most the two other lanes had one in flight when the third failed.
    # The relay may have taken such a message just as its lane was cancelled, before the
    # lane heard the 250: it stays leased and goes again (one per other lane at most).
    assert len(sent) >= 27 and sent <= delivered  # settled as sent only what the relay took
    assert len(delivered - sent) <= 2
    assert {r.status for r in rows if r.message_id not in sent} <= {"sending"}  # lease: retried


def test_permanent_5xx_fails_with_reason_and_old_rows_give_up(runtime: Runtime) -> None:
    _queue(runtime, 2)
    relay = Relay()
    relay.permanent.add("a0@example.net")
    relay.failing = True
    clock = [NOW]
    with server_in_thread(relay.factory()) as port:
        url = f"smtp://127.0.0.1:{port}"
        report = asyncio.run(_sender(runtime, clock, smtp_relay_url=url).run())
        assert (report.failed, report.retried) == (1, 1)
        clock[0] = NOW + timedelta(hours=73)
        report = asyncio.run(_sender(runtime, clock, smtp_relay_url=url).run())
        assert report.failed == 1
    rows = _rows(runtime)
    assert rows[0].status == "failed" and (rows[0].last_error or "").startswith("550")
    assert rows[1].status == "failed" and "gave up after 2 attempts" in (rows[1].last_error or "")
    assert relay.received == []


def test_no_relay_writes_eml_files_into_the_maildir(runtime: Runtime) -> None:
    _queue(runtime, 3)
    clock = [NOW]
    report = asyncio.run(_sender(runtime, clock).run())
    assert report.sent == 3
    maildir: Path = runtime.settings.maildir
    files = sorted((maildir / "new").iterdir())
    assert len(files) == 3 and all(f.suffix == ".eml" for f in files)
    assert list((maildir / "tmp").iterdir()) == []
    ids = sorted(message_from_bytes(f.read_bytes())["Message-ID"] for f in files)
    assert ids == [f"<out{i}@parley.localhost>" for i in range(3)]


def test_dkim_signature_verifies_against_the_published_key(
    runtime: Runtime, tmp_path: Path
) -> None:
    private, txt = rsa_key(tmp_path)
    (tmp_path / "dkim.pem").write_bytes(private)
    _queue(runtime, 1)
    relay = Relay()
    with server_in_thread(relay.factory()) as port:
        sender = _sender(
            runtime, [NOW], smtp_relay_url=f"smtp://127.0.0.1:{port}", dkim_selector="s1",
            dkim_domain="parley.localhost", dkim_key_file=str(tmp_path / "dkim.pem"),
        )  # fmt: skip
        assert asyncio.run(sender.run()).sent == 1
    signed = relay.received[0]
    assert signed.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt if name == b"s1._domainkey.parley.localhost." else None

    assert dkim_domain_passes(signed, "parley.localhost", dns)
    assert not dkim_domain_passes(signed.replace(b"Hi there", b"Hi thera"), "parley.localhost", dns)


@pytest.mark.parametrize("bad", ["http://x", "smtp://"])
def test_bad_relay_url_is_refused(runtime: Runtime, bad: str) -> None:
    with pytest.raises(ValueError):
        _sender(runtime, [NOW], smtp_relay_url=bad)


def test_claims_lease_each_row_once_until_the_lease_lapses(runtime: Runtime) -> None:
    _queue(runtime, 40)
    claims = [claim_due(runtime.sessions, now=NOW, lease_seconds=60, limit=5) for _ in range(2)]
    assert [i.idempotency_key for i in claims[0]] == [f"k{i}" for i in range(5)]
    assert {i.attempts for items in claims for i in items} == {1}
    # Concurrent senders never lease the same row.
    with ThreadPoolExecutor(4) as pool:
        racing = list(pool.map(
            lambda _: claim_due(runtime.sessions, now=NOW, lease_seconds=60, limit=5), range(8)
        ))  # fmt: skip
    keys = [i.idempotency_key for items in [*claims, *racing] for i in items]
    assert sorted(keys) == sorted(f"k{i}" for i in range(40))
    assert claim_due(runtime.sessions, now=NOW + timedelta(seconds=30), lease_seconds=60,
                     limit=50) == []  # fmt: skip
    with runtime.sessions.begin() as session:
        mark_sent_many(session, claims[0], now=NOW)
    # The lapsed leases come back (attempts counted again); the settled rows do not.
    later = NOW + timedelta(seconds=61)
    again = claim_due(runtime.sessions, now=later, lease_seconds=60, limit=50)
    assert sorted(i.idempotency_key for i in again) == sorted(f"k{i}" for i in range(5, 40))
    assert {i.attempts for i in again} == {2}
    sent = [r for r in _rows(runtime) if r.status == "sent"]
    assert [r.idempotency_key for r in sent] == [f"k{i}" for i in range(5)]
    assert {(r.sent_at, r.locked_until) for r in sent} == {(NOW, None)}
