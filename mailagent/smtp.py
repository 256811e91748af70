"""The organizer mailbox's SMTP listener (aiosmtpd).

Accepts mail for every tenant's organizer address, their plus-addressed forms and the
configured aliases; stores the raw message durably and only then answers 250. When the message
cannot be stored (database down) it answers 451 so the sending server retries.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, syntax
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy.orm import Session, sessionmaker

from core.db.hot import HotConnections
from core.db.models import DEFAULT_TENANT
from core.logging import get_logger
from core.services.inbound import Inbox
from core.services.mailboxes import Mailboxes, TenantMailbox

_log = get_logger("parley.smtp")


class Reply(StrEnum):
    """Every reply line the listener gives of its own, in one place (RFC 5321, RFC 3463)."""

    OK = "250 OK"
    STORED = "250 2.0.0 Stored"
    START_DATA = "354 End data with <CR><LF>.<CR><LF>"
    NOT_STORED = "451 4.3.0 Temporary failure storing the message, try again later"
    TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
    DATA_SYNTAX = "501 Syntax: DATA"
    NEED_RCPT = "503 Error: need RCPT command"
    NO_SUCH_USER = "550 5.1.1 No such user here"
    TOO_MUCH_DATA = "552 5.3.4 Error: Too much mail data"


def reply_for(error: Exception) -> Reply:
    """The reply to DATA when storing the message raised: always transient (451), so the
    sending server keeps the message and tries again; nothing is lost while the database
    is away."""
    _log.warning("mail.inbound.store_failed", error=type(error).__name__)
    return Reply.NOT_STORED


class RecipientPolicy:
    """Which envelope recipients belong to the organizer mailbox: every tenant's organizer
    address, the aliases and (with plus addressing) their tagged forms."""

    def __init__(self, mailboxes: Mailboxes) -> None:
        self._mailboxes = mailboxes

    @classmethod
    def single(
        cls, organizer: str, aliases: Iterable[str] = (), plus: bool = True
    ) -> RecipientPolicy:
        """The policy of a deployment with the default tenant's organizer only."""
        default = TenantMailbox(DEFAULT_TENANT, organizer, "")
        return cls(Mailboxes(default, aliases=aliases, plus=plus))

    def accepts(self, address: str) -> bool:
        return self._mailboxes.accepts(address)

    async def admits(self, address: str) -> bool:
        """``accepts``, reading the tenants' table (off the event loop) for an address the
        table in memory does not know: a tenant may have been added since."""
        if self._mailboxes.knows(address):
            return True
        return await asyncio.to_thread(self._mailboxes.accepts, address)


class InboundHandler:
    """aiosmtpd handler: RCPT checks the recipient, DATA stores the message (core's Inbox)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: RecipientPolicy,
        *,
        channel: str = "smtp",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_stored: Callable[[int], None] | None = None,
        max_recipients: int = 50,
        hot: HotConnections | None = None,
    ) -> None:
        self._policy = policy
        self._channel = channel
        self._clock = clock
        self._max_recipients = max_recipients
        self._inbox = Inbox(sessions, hot=hot, wake=on_stored)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not await self._policy.admits(address):
            return Reply.NO_SUCH_USER
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return Reply.TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        return Reply.OK

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        return await self.store(envelope)

    async def store(self, envelope: Envelope) -> str:
        """Store the message of envelope; the reply line to give (250 or 451)."""
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            await self._inbox.receive(
                raw, channel=self._channel, now=self._clock(),
                envelope_from=envelope.mail_from, envelope_to=list(envelope.rcpt_tos),
            )  # fmt: skip
        except Exception as exc:
            return reply_for(exc)
        # No log line per message (it cost more than the insert): the counter says enough.
        return Reply.STORED

    def close(self) -> None:
        """End the SQLite store thread and close its connection (the listener has stopped)."""
        self._inbox.close()


# A plain <local@domain> as nearly every client sends it in MAIL FROM and RCPT TO.
_SIMPLE_PATH = re.compile(
    r"[ \t]*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)",
    re.DOTALL,
)


class FastPathSMTP(SMTP):
    """aiosmtpd's SMTP, reading a plain ``<local@domain>`` path without its full parser,
    and reading DATA as Postfix does.

    The full RFC 5322 address parser (and a class it defines on every call) was a tenth
    of the listener's time per message; anything not plainly shaped still goes to it.

    DATA: aiosmtpd refuses a whole message with "500 Line too long" for one line over
    1,000 bytes, and reads a message with bare LF line ends as one such line. Mail that
    lenient servers pass on has both (long HTML lines, unfolded headers, scripts writing
    LF), so here a line may be any length, only the message size is limited, and a line
    may end in LF alone. The end of data is still only the standard <CR><LF>.<CR><LF>
    (a "." line ending in CRLF after a line ending in CRLF), as Postfix requires since
    the SMTP smuggling fixes: a bare-LF "." is content. The bytes kept are those received
    after dot-unstuffing, line ends untouched; the MIME parser reads LF and CRLF alike.
    """

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _SIMPLE_PATH.fullmatch(arg)
        if match is None:
            return super()._getaddr(arg)
        address, rest = match[1], match[2].lstrip(" \t")
        if rest.startswith(("(", "\r", "\n")):  # a comment or folding: the full parser's
            return super()._getaddr(arg)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(Reply.NEED_RCPT)
            return
        if arg:
            await self.push(Reply.DATA_SYNTAX)
            return
        await self.push(Reply.START_DATA)
        content = await self._read_data()
        if content is None:
            await self.push(Reply.TOO_MUCH_DATA)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.original_content = content
        self.envelope.content = (
            content.decode("utf-8", errors="surrogateescape") if self._decode_data else content
        )
        status = await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks else MISSING
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(Reply.OK if status is MISSING else status)

    async def _read_data(self) -> bytes | None:
        """The message up to <CR><LF>.<CR><LF>, dot-unstuffed; None when over the size limit.

        Lines are read up to LF; a line longer than the stream's buffer limit comes in
        pieces (each piece up to the limit), so no line is too long and memory stays at
        the message size. Past the size limit the rest is read and dropped (RFC 5321
        4.2.5: answer after the end of data).
        """
        limit = self.data_size_limit
        lines: list[bytes] = []
        pieces: list[bytes] = []
        size = 0
        in_line = False  # pieces of the current line have come already
        after_crlf = True  # the previous line ended in CRLF (or there was none)
        cr_before = False  # the last piece ended in CR
        too_much = False
        while True:
            try:
                chunk = await self._reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as error:
                chunk = await self._reader.read(error.consumed)
            except asyncio.CancelledError:
                self._writer.close()
                raise
            if not in_line and after_crlf and chunk == b".\r\n":
                break
            size += len(chunk)
            if limit and size > limit and not too_much:
                too_much = True
                lines.clear()
                pieces.clear()
            if not chunk.endswith(b"\n"):  # a piece of a long line
                in_line, cr_before = True, chunk.endswith(b"\r")
                if not too_much:
                    pieces.append(chunk)
                continue
            after_crlf = chunk.endswith(b"\r\n") or (chunk == b"\n" and in_line and cr_before)
            in_line = cr_before = False
            if too_much:
                continue
            line = b"".join([*pieces, chunk]) if pieces else chunk
            pieces.clear()
            lines.append(line[1:] if line.startswith(b".") else line)
        return None if too_much else b"".join(lines)


def smtp_factory(
    handler: Any,
    *,
    data_size_limit: int,
    hostname: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> Callable[[], SMTP]:
    """A protocol factory for loop.create_server."""

    def build() -> SMTP:
        return FastPathSMTP(
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="Parley ESMTP",
            tls_context=tls,
            require_starttls=False,
        )

    return build
