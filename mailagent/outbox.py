"""The outbox sender: claims due rows, signs, delivers and settles each one.

Runs as the worker's "outbox.deliver" job. A batch is sent over a few relay connections
side by side (``outbox_connections``), each kept for the whole batch: one connection
waits for every 250 in turn, so the relay's round trips, not Parley, would set the pace.
Each message is marked sent as soon as the relay has accepted it, and its connection
sends nothing more until that is committed: a crash re-sends at most the one message in
flight on each connection (same Message-ID, which receivers deduplicate), never a
settled one. The lanes' results are committed together (a group commit: what arrives
while one commit is under way goes into the next), so the commits keep pace with the
connections rather than one per message.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from core.logging import get_logger
from core.services.mailboxes import Mailboxes
from core.services.outbox import (
    OutboxItem,
    SentMarks,
    Settled,
    claim_due,
    mark_unsent,
)
from core.settings import Settings
from mailagent.delivery import (
    DeliveryResult,
    MaildirWriter,
    RelayClient,
    RelayConfig,
    client_tls,
)
from mailagent.dkim import DkimSigner
from mailagent.imap import ImapConfig, append_sent
from mailagent.metrics import DELIVERY_LATENCY, OUTBOUND

_log = get_logger("parley.outbox")
Done = tuple[OutboxItem, bytes, DeliveryResult]


@dataclass
class DeliveryReport:
    """Counts of one run of the sender."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    sent_messages: list[bytes] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retried + self.failed


class OutboxSender:
    """Delivers the outbox of one deployment through its relay or into its Maildir."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        relay_tls: ssl.SSLContext | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        # The envelope sender of each row is its tenant's organizer (bounces go back there).
        self.mailboxes = Mailboxes.of_settings(settings, sessions)
        self.owner = owner  # the lease owner of the rows it claims (the worker's name)
        self.sessions = sessions
        self.clock = clock
        self.signer = _signer(settings)
        self.relays: list[RelayClient] = []
        if settings.smtp_relay_url:
            relay = RelayConfig.from_url(settings.smtp_relay_url)
            tls = relay_tls or client_tls(settings.smtp_relay_ca_file)
            timeout = settings.smtp_relay_timeout_seconds
            self.relays = [
                RelayClient(relay, timeout=timeout, tls=tls)
                for _ in range(settings.outbox_connections)
            ]
        self.maildir = MaildirWriter(settings.maildir)
        # Copies for the IMAP Sent folder are only kept when there is an IMAP mailbox.
        self.keep_sent = bool(settings.imap_url)

    async def run(self, *, max_batches: int = 50) -> DeliveryReport:
        """Deliver due rows, batch after batch, until none is due (or max_batches ran)."""
        report = DeliveryReport()
        try:
            for _ in range(max_batches):
                items = await asyncio.to_thread(
                    claim_due,
                    self.sessions,
                    now=self.clock(),
                    lease_seconds=self.settings.outbox_lease_seconds,
                    limit=self.settings.outbox_batch_size,
                    owner=self.owner,
                )
                if not items:
                    break
                await self._deliver_batch(items, report)
        finally:
            await asyncio.gather(*(relay.close() for relay in self.relays))
        return report

    async def _deliver_batch(self, items: list[OutboxItem], report: DeliveryReport) -> None:
        """Send items over the relay connections side by side, each settled once accepted.

        Each recipient's messages share one lane, so they reach the relay in the order
        they were queued (an update is never overtaken by the cancellation after it).
        A lane signs its next message while the last one's result is being committed,
        and sends it only after that commit.
        """
        relays: list[RelayClient | None] = [*self.relays[: len(items)]] or [None]
        lanes: list[deque[OutboxItem]] = [deque() for _ in relays]
        for item in items:
            lanes[zlib.crc32(item.recipient.lower().encode()) % len(lanes)].append(item)
        marks = SentMarks(self.sessions)
        settler = _GroupCommit(lambda done: self._settle_all(done, report, marks))

        async def send(relay: RelayClient | None, waiting: deque[OutboxItem]) -> None:
            settled: asyncio.Future[None] | None = None
            while waiting:
                item = waiting.popleft()
                message = self.signer.sign(item.mime) if self.signer else item.mime
                if settled is not None:
                    await settled  # the last one is committed before this one goes out
                result = await self._deliver(relay, item, message)
                settled = settler.add((item, message, result))
            if settled is not None:
                await settled

        sending = [
            asyncio.ensure_future(send(relay, lane))
            for relay, lane in zip(relays, lanes, strict=True)
        ]
        try:
            await asyncio.gather(*sending)
        except BaseException:  # one lane failed (a broken DKIM key…): stop the others too
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)
            for relay in relays:
                if relay is not None:
                    relay.abort()
            raise
        finally:  # what was sent is settled, even when a lane failed
            await settler.drained()
            await asyncio.to_thread(marks.close)

    def _settle_all(self, done: list[Done], report: DeliveryReport, marks: SentMarks) -> None:
        """The sent rows in one committed statement, then each unsent one (rare) on its own."""
        now = self.clock()
        sent = [(item, message) for item, message, result in done if result.ok]
        marks.mark([item for item, _ in sent], now=now)
        self._count_sent(sent, report, now)
        failed = [(item, result) for item, _, result in done if not result.ok]
        if not failed:
            return
        with self.sessions.begin() as session:
            unsent = [
                (item, result, self._unsent(session, item, result, now)) for item, result in failed
            ]
        for item, result, settled in unsent:
            self._count_unsent(item, result, settled, report)

    async def _deliver(
        self, relay: RelayClient | None, item: OutboxItem, message: bytes
    ) -> DeliveryResult:
        if relay is None:
            try:
                await asyncio.to_thread(
                    self.maildir.deliver,
                    item.message_id,
                    message,
                    timestamp=item.created_at.timestamp(),
                )
            except OSError as exc:
                return DeliveryResult(False, False, f"maildir: {exc}")
            return DeliveryResult(True)
        sender = self.mailboxes.of(item.tenant_id).address
        return await relay.send(sender, item.recipient, message)

    def _unsent(
        self, session: Session, item: OutboxItem, result: DeliveryResult, now: datetime
    ) -> Settled:
        return mark_unsent(
            session, item, now=now, error=result.error, permanent=result.permanent,
            give_up_after=timedelta(hours=self.settings.outbox_give_up_hours),
        )  # fmt: skip

    def _count_sent(
        self, sent: list[tuple[OutboxItem, bytes]], report: DeliveryReport, now: datetime
    ) -> None:
        report.sent += len(sent)
        OUTBOUND.labels(status="sent").inc(len(sent))
        for item, message in sent:
            if self.keep_sent:
                report.sent_messages.append(message)
            DELIVERY_LATENCY.observe(max(0.0, (now - item.created_at).total_seconds()))

    def _count_unsent(
        self, item: OutboxItem, result: DeliveryResult, settled: Settled, report: DeliveryReport
    ) -> None:
        report.failed += settled.status == "failed"
        report.retried += settled.status == "retry"
        OUTBOUND.labels(status=settled.status).inc()
        _log.warning(
            "mail.outbound.unsent", outbox_id=item.id, status=settled.status,
            attempts=item.attempts, error=result.error[:200],
        )  # fmt: skip


class _GroupCommit:
    """Results handed in by the lanes, committed on a thread one transaction at a time;
    results that arrive during a commit are taken together by the next one."""

    def __init__(self, settle: Callable[[list[Done]], None]) -> None:
        self.settle = settle
        self.waiting: list[tuple[Done, asyncio.Future[None]]] = []
        self.running: asyncio.Future[None] | None = None

    def add(self, done: Done) -> asyncio.Future[None]:
        """Queue done; the future resolves once it is committed (or raises if that failed)."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((done, committed))
        if self.running is None or self.running.done():
            self.running = asyncio.ensure_future(self._commit_all())
        return committed

    async def _commit_all(self) -> None:
        while self.waiting:
            taken, self.waiting = self.waiting, []
            try:
                await asyncio.to_thread(self.settle, [done for done, _ in taken])
            except Exception as exc:  # database down: the leases bring these back
                for _, committed in taken:
                    if not committed.done():
                        committed.set_exception(exc)
                continue
            for _, committed in taken:
                if not committed.done():  # its lane may have been cancelled
                    committed.set_result(None)

    async def drained(self) -> None:
        """Once everything added so far is committed (or has failed to be)."""
        if self.running is not None:
            await asyncio.shield(self.running)


def _signer(settings: Settings) -> DkimSigner | None:
    if not (settings.dkim_selector and settings.dkim_key_file):
        return None
    domain = settings.dkim_domain or settings.organizer_domain
    return DkimSigner.from_file(settings.dkim_selector, domain, settings.dkim_key_file)


def deliver_outbox(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime],
    *,
    owner: str | None = None,
) -> DeliveryReport:
    """The outbox.deliver job: send what is due, then copy it to the IMAP Sent folder."""
    report = asyncio.run(OutboxSender(settings, sessions, clock, owner=owner).run())
    if report.sent_messages and settings.imap_url:
        asyncio.run(_copy_to_sent(settings, report.sent_messages))
    return report


async def _copy_to_sent(settings: Settings, messages: list[bytes]) -> None:
    # Best effort: the mail is already delivered, a missing Sent copy is only logged.
    config = ImapConfig.from_url(settings.imap_url)
    try:
        await append_sent(
            config, settings.imap_sent_folder, messages, client_tls(settings.imap_ca_file)
        )
    except Exception as exc:
        _log.warning("mail.outbound.sent_copy_failed", error=f"{type(exc).__name__}: {exc}"[:200])
