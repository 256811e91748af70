"""The LMTP listener: the same handler as SMTP, for an MTA that delivers locally over LMTP.

LMTP answers DATA once per accepted recipient (RFC 2033). Every recipient is the one
organizer mailbox, so the message is stored once and each recipient gets that answer.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from mailagent.smtp import FastPathSMTP, InboundHandler


class FastPathLMTP(FastPathSMTP, LMTP):
    """aiosmtpd's LMTP with the listener's fast reading of plain paths."""


class LmtpHandler(InboundHandler):
    """InboundHandler whose DATA reply has one line per recipient."""

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        reply = await self.store(envelope)
        return "\r\n".join([reply] * max(1, len(envelope.rcpt_tos)))


def lmtp_factory(
    handler: LmtpHandler,
    *,
    data_size_limit: int,
    hostname: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> Callable[[], LMTP]:
    """A protocol factory for loop.create_server (or a unix socket server)."""

    def build() -> LMTP:
        return FastPathLMTP(
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="Parley LMTP",
            tls_context=tls,
            require_starttls=False,
        )

    return build
