"""The IMAP poller (aioimaplib): reads the organizer mailbox on an existing mail server.

New mail in the inbox is fetched, stored through core's Inbox like SMTP mail (which
wakes the inbound.process job), settled (``settled_outcome``: the job's own call, made
here when the job has not taken the message yet) and then moved into Parley/Processed,
Parley/Ignored or Parley/Failed by its stored outcome, so admins can watch it in any mail
client. IDLE wakes
the poller; a poll interval covers servers without it. A dropped connection is retried
with exponential back-off. Where it stopped (UIDVALIDITY, last UID) lives in imap_state.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aioimaplib

from core.db.models import ImapState, InboundMessage
from core.logging import get_logger
from core.services.inbound import Inbox
from core.services.mail_in import ProcessingContext, settled_outcome
from mailagent.delivery import client_tls
from mailagent.errors import ImapError

_log = get_logger("parley.imap")
_UIDVALIDITY_RE = re.compile(rb"UIDVALIDITY (\d+)")
_LIST_SEP_RE = re.compile(rb'\([^)]*\) (?:"(.)"|NIL)')
_FETCH_UID_RE = re.compile(rb"UID (\d+)")
MAX_BACKOFF_SECONDS = 300.0
# A server answers IDLE with "+ idling" at once; waiting longer only delays the mail.
IDLE_ACK_SECONDS = 5.0
T = TypeVar("T")
# IMAP folder (under the configured prefix) for each outcome.
FOLDERS = {
    "itip": "Processed",
    "plain_reply": "Processed",
    "bounce": "Processed",
    "auto_reply": "Ignored",
    "ignored": "Ignored",
    "unauthenticated": "Ignored",
    "unparseable": "Failed",
    "failed": "Failed",
}


def folder_for(outcome: str, prefix: str = "Parley") -> str:
    """The IMAP folder a message with this outcome is filed into."""
    return f"{prefix}/{FOLDERS.get(outcome, 'Failed')}"


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    tls: bool
    username: str
    password: str = field(repr=False)
    mailbox: str

    @classmethod
    def from_url(cls, url: str) -> ImapConfig:
        """imaps://user:pass@host[:993][/INBOX] (TLS) or imap://… (plain, loopback only)."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise ImapError(f"IMAP URL must be imaps://user:pass@host[:port][/folder]: {url!r}")
        tls = parts.scheme == "imaps"
        return cls(
            host=parts.hostname,
            port=parts.port or (993 if tls else 143),
            tls=tls,
            username=unquote(parts.username),
            password=unquote(parts.password or ""),
            mailbox=unquote(parts.path.strip("/")) or "INBOX",
        )

    @property
    def state_key(self) -> str:
        return f"{self.username}@{self.host}:{self.port}/{self.mailbox}"


async def connect(
    config: ImapConfig,
    tls: ssl.SSLContext | None = None,
    timeout: float = 30.0,
    lost: asyncio.Event | None = None,
) -> aioimaplib.IMAP4:
    """A logged-in client (TLS unless the URL said imap://); lost is set when it drops."""
    client: aioimaplib.IMAP4
    if config.tls:
        context = tls or client_tls()
        client = aioimaplib.IMAP4_SSL(
            config.host, config.port, timeout=timeout, ssl_context=context
        )
    else:
        client = aioimaplib.IMAP4(config.host, config.port, timeout=timeout)
    if lost is not None:
        # IMAP4_SSL does not pass conn_lost_cb on; the protocol object takes it directly.
        client.protocol.conn_lost_cb = lambda _exc: lost.set()
    try:
        await client.wait_hello_from_server()
        _ok(await client.login(config.username, config.password), "LOGIN")
        # The greeting's capabilities predate login; ask again so MOVE and IDLE are known.
        await asyncio.wait_for(client.protocol.capability(), timeout)
    except BaseException:
        _close_transport(client)  # a failed or cancelled connect leaves no socket behind
        raise
    return client


async def ensure_folder(client: aioimaplib.IMAP4, name: str) -> None:
    """CREATE the folder unless LIST shows it exists."""
    listed = await client.list('""', _quote(name))
    if any(line.startswith(b"(") for line in listed.lines[:-1]):
        return
    _ok(await client.create(_quote(name)), f"CREATE {name}")


async def separator(client: aioimaplib.IMAP4) -> str:
    """The server's hierarchy separator ("/" or "."); "/" when it does not say."""
    listed = await client.list('""', '""')
    for line in listed.lines:
        match = _LIST_SEP_RE.match(line)
        if match and match.group(1):
            return match.group(1).decode()
    return "/"


async def append_sent(
    config: ImapConfig, folder: str, messages: list[bytes], tls: ssl.SSLContext | None = None
) -> int:
    """Append copies of sent messages to the Sent folder (best effort); how many were stored."""
    if not messages:
        return 0
    client = await connect(config, tls)
    try:
        await ensure_folder(client, folder)
        stored = 0
        for message in messages:
            response = await client.append(message, mailbox=_quote(folder), flags="(\\Seen)")
            stored += response.result == "OK"
        return stored
    finally:
        await _logout(client)


class ImapPoller:
    """Fetches, stores, processes and files new mail until stopped."""

    def __init__(
        self,
        config: ImapConfig,
        processing: ProcessingContext,
        *,
        poll_seconds: float = 60.0,
        folder_prefix: str = "Parley",
        tls: ssl.SSLContext | None = None,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.processing = processing
        self.poll_seconds = poll_seconds
        self.folder_prefix = folder_prefix
        self.tls = tls
        self.inbox = Inbox(processing.sessions, wake=on_stored)
        self.connected = asyncio.Event()
        self.waiting = asyncio.Event()  # set while waiting for new mail (IDLE or a poll's sleep)
        self.connections = 0
        self.idles = 0  # IDLEs the server acknowledged
        self.idle_fallbacks = 0  # connections that went on without IDLE
        self._use_idle = True
        self._lost = asyncio.Event()
        self.folders: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until stop is set, reconnecting with back-off (1 s doubling to 5 min)."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                    failures = 0
                except Exception as exc:  # any failure: log, back off, reconnect; never stop
                    failures += 1
                    self.connected.clear()
                    delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 1))
                    delay *= random.uniform(0.5, 1.0)
                    _log.warning("imap.disconnected", error=f"{type(exc).__name__}: {exc}"[:200],
                                 retry_in=round(delay, 1))  # fmt: skip
                    await _sleep_or_stop(stop, delay)
        finally:
            self.inbox.close()

    async def _session(self, stop: asyncio.Event) -> None:
        lost = asyncio.Event()
        client = await connect(self.config, self.tls, timeout=15.0, lost=lost)
        try:
            sep = await separator(client)
            prefix = self.folder_prefix.replace("/", sep)
            self.folders = {o: f"{prefix}{sep}{name}" for o, name in FOLDERS.items()}
            for folder in set(self.folders.values()):
                await ensure_folder(client, folder)
            self._lost = lost
            self._use_idle = True
            last_uid = await self._select(client)
            self.connections += 1
            self.connected.set()
            while not stop.is_set():
                last_uid = await self.poll_once(client, last_uid)
                await self._wait_for_mail(client, stop, lost)
        finally:
            await _logout(client)

    async def _select(self, client: aioimaplib.IMAP4) -> int:
        response = await client.select(_quote(self.config.mailbox))
        _ok(response, f"SELECT {self.config.mailbox}")
        match = _UIDVALIDITY_RE.search(b" ".join(bytes(line) for line in response.lines))
        validity = int(match.group(1)) if match else None
        return await asyncio.to_thread(self._load_state, validity)

    async def poll_once(self, client: aioimaplib.IMAP4, last_uid: int) -> int:
        """Store, process and file every message above last_uid; returns the new last UID."""
        found = await _unless_lost(
            client.uid_search(f"UID {last_uid + 1}:*", charset=None), self._lost
        )
        _ok(found, "UID SEARCH")
        uids = sorted(int(u) for u in b" ".join(found.lines[:-1]).split() if u.isdigit())
        for uid in (u for u in uids if u > last_uid):
            raw = await self._fetch(client, uid)
            stored = await self.inbox.receive(raw, channel="imap", now=self.processing.clock())
            outcome = await asyncio.to_thread(self._settle, stored.id, uid)
            await self._file(client, uid, self.folders.get(outcome, self.folders["unparseable"]))
            last_uid = uid
        return last_uid

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes:
        response = await _unless_lost(client.uid("fetch", str(uid), "(BODY.PEEK[])"), self._lost)
        _ok(response, f"UID FETCH {uid}")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        raise ImapError(f"UID FETCH {uid} returned no message body")

    async def _file(self, client: aioimaplib.IMAP4, uid: int, folder: str) -> None:
        if client.has_capability("MOVE"):
            moved = await _unless_lost(client.uid("move", str(uid), _quote(folder)), self._lost)
            _ok(moved, f"UID MOVE {uid}")
            return
        copied = await _unless_lost(client.uid("copy", str(uid), _quote(folder)), self._lost)
        _ok(copied, f"UID COPY {uid}")
        flagged = client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
        _ok(await _unless_lost(flagged, self._lost), "UID STORE")
        await _unless_lost(client.expunge(), self._lost)

    async def _wait_for_mail(
        self, client: aioimaplib.IMAP4, stop: asyncio.Event, lost: asyncio.Event
    ) -> None:
        """Until new mail may be there: IDLE when it works on this connection, else a poll."""
        self.waiting.set()
        try:
            if self._use_idle and client.has_capability("IDLE"):
                if await self._idle(client, stop, lost):
                    return
                # The server never said "+ idling" (or aioimaplib missed it): this connection
                # polls from now on; the next connection tries IDLE again.
                self._use_idle = False
                self.idle_fallbacks += 1
                _log.warning("imap.idle_fallback", wait_seconds=IDLE_ACK_SECONDS)
            await _first_of(stop.wait(), lost.wait(), timeout=self.poll_seconds)
            if lost.is_set():
                raise ImapError("connection to the IMAP server lost")
        finally:
            self.waiting.clear()

    async def _idle(
        self, client: aioimaplib.IMAP4, stop: asyncio.Event, lost: asyncio.Event
    ) -> bool:
        """One IDLE until mail arrives, stop, or the poll interval; False if never acknowledged."""
        try:
            idle = await _unless_lost(
                client.idle_start(timeout=self.poll_seconds), lost, timeout=IDLE_ACK_SECONDS
            )
        except ImapError:
            if lost.is_set():
                raise
            await _end_idle(client, lost)
            return False
        self.idles += 1
        await _first_of(
            client.wait_server_push(timeout=self.poll_seconds + 30), stop.wait(), lost.wait()
        )
        if lost.is_set():
            raise ImapError("connection to the IMAP server lost")
        client.idle_done()
        await _unless_lost(asyncio.wait_for(idle, IDLE_ACK_SECONDS), lost)
        return True

    # --- database side (runs in a thread) ---

    def _settle(self, message_id: int, uid: int) -> str:
        """Note the message's IMAP UID, settle it (or read how it was settled), move on."""
        processing = self.processing
        with processing.sessions.begin() as session:
            row = session.get(InboundMessage, message_id)
            if row is not None and row.imap_uid is None:
                row.imap_uid = uid
        outcome = settled_outcome(processing, message_id)
        self._save_state(uid)
        return outcome

    def _load_state(self, validity: int | None) -> int:
        now = self.processing.clock()
        with self.processing.sessions.begin() as session:
            state = session.get(ImapState, self.config.state_key)
            if state is None:
                state = ImapState(mailbox=self.config.state_key, last_uid=0, updated_at=now)
                session.add(state)
            if state.uidvalidity != validity:
                # New UIDVALIDITY: old UIDs mean nothing; dedup by Message-ID covers re-reads.
                state.uidvalidity, state.last_uid, state.updated_at = validity, 0, now
            return int(state.last_uid)

    def _save_state(self, uid: int) -> None:
        now: datetime = self.processing.clock()
        with self.processing.sessions.begin() as session:
            state = session.get(ImapState, self.config.state_key)
            if state is not None and uid > state.last_uid:
                state.last_uid, state.updated_at = uid, now


def _ok(response: aioimaplib.Response, what: str) -> None:
    if response.result != "OK":
        detail = b" ".join(bytes(x) for x in response.lines[-1:]).decode("utf-8", "replace")
        raise ImapError(f"{what} failed: {response.result} {detail}"[:300])


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _logout(client: aioimaplib.IMAP4) -> None:
    """LOGOUT (bounded), then close the socket ourselves: aioimaplib leaves that to the server."""
    with contextlib.suppress(aioimaplib.AioImapException, OSError, TimeoutError):
        await asyncio.wait_for(client.logout(), 5)
    await _abort(client)


async def _abort(client: aioimaplib.IMAP4) -> None:
    _close_transport(client)
    # Let the loop run the connection_lost callbacks (twice: TLS sits on a plain transport).
    for _ in range(2):
        await asyncio.sleep(0)


def _close_transport(client: aioimaplib.IMAP4) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.abort()


async def _end_idle(client: aioimaplib.IMAP4, lost: asyncio.Event) -> None:
    """End an IDLE whose acknowledgement never came: DONE, then its tagged answer (bounded)."""
    command = client.protocol.pending_sync_command
    if command is None or command.name != "IDLE":
        return
    client.idle_done()
    try:
        await _unless_lost(asyncio.wait_for(command.wait(), IDLE_ACK_SECONDS), lost)
    except (aioimaplib.AioImapException, TimeoutError) as exc:
        raise ImapError(f"IDLE did not end after DONE: {type(exc).__name__}") from exc
    for task in list(client.tasks):  # idle_start's wait for the "+ idling" that never came
        if not task.done():
            task.cancel()


async def _unless_lost(
    waiting: Coroutine[Any, Any, T], lost: asyncio.Event, timeout: float = 15.0
) -> T:
    """The result of waiting, or ImapError as soon as the connection is lost."""
    if lost.is_set():
        waiting.close()
        raise ImapError("connection to the IMAP server lost")
    task = asyncio.ensure_future(waiting)
    watcher = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait([task, watcher], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        raise ImapError("connection to the IMAP server lost or stalled")
    return task.result()


async def _first_of(*waits: Coroutine[Any, Any, Any], timeout: float | None = None) -> None:
    """Wait until the first of waits finishes (or timeout), then cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    for task in done:
        if not task.cancelled() and isinstance(task.exception(), aioimaplib.AioImapException):
            raise task.exception()  # type: ignore[misc]


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
