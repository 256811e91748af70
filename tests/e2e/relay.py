"""A local SMTP relay sink: what Parley hands to its relay, recorded for tests and the bench.

An aiosmtpd server on a free port in a background thread accepts every message and keeps
it with its envelope and the monotonic time it arrived; callers wait on a condition until
the messages they expect are there.
"""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from aiosmtpd.smtp import Session as SmtpSession

from tests.conftest import free_port


@dataclass(frozen=True)
class Received:
    """One message as the relay got it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    at: float  # time.monotonic() when DATA was accepted

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def recipient(self) -> str:
        return self.rcpt_tos[0].lower()


@dataclass
class RelaySink:
    """The aiosmtpd handler and the store of what arrived."""

    received: list[Received] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    listeners: list[Callable[[Received], None]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        item = Received(
            str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(raw), time.monotonic()
        )
        with self._changed:
            self.received.append(item)
            self._changed.notify_all()
        for listener in self.listeners:
            listener(item)
        return "250 OK queued"

    def snapshot(self) -> list[Received]:
        with self._changed:
            return list(self.received)

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 20.0
    ) -> list[Received]:
        """All messages once predicate(messages) holds; TimeoutError with a summary if not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"relay has {summary(self.received)} after {timeout} s")
                self._changed.wait(left)
            return list(self.received)

    def wait_count(self, count: int, timeout: float = 20.0) -> list[Received]:
        return self.wait_for(lambda got: len(got) >= count, timeout)


def summary(messages: list[Received]) -> str:
    return ", ".join(f"{m.recipient}:{m.message['Subject']}" for m in messages) or "nothing"


@contextmanager
def running_relay(port: int | None = None) -> Iterator[tuple[RelaySink, int]]:
    """A started relay sink and its port; stopped on exit."""
    sink = RelaySink()
    port = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, data_size_limit=50 * 1024 * 1024)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()
