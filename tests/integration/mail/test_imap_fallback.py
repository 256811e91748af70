"""The IMAP poller against a small scripted server that accepts IDLE but never acknowledges it.

The poller must end that IDLE with DONE, keep the connection and poll it instead,
so new mail still arrives: deterministic, where the real Dovecot only rarely does this.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from core.db.models import InboundMessage
from core.runtime import Runtime
from core.services.mail_in import AuthPolicy, ProcessingContext
from mailagent import imap
from mailagent.imap import ImapConfig, ImapPoller
from parley.handlers import MAIL_READER
from tests.integration.mail.helpers import NOW, mail

CAPS = b"IMAP4rev1 IDLE MOVE"
_COMMAND = re.compile(rb"^(\S+) (?:UID )?(\S+)(.*)$", re.IGNORECASE)


class SilentIdleServer:
    """Speaks just enough IMAP for the poller; IDLE gets no "+ idling", DONE gets its OK."""

    def __init__(self) -> None:
        self.inbox: dict[int, bytes] = {}
        self.moved: dict[int, str] = {}
        self.commands: list[str] = []
        self._idle_tag: bytes | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY " + CAPS + b"] scripted server ready\r\n")
        while line := (await reader.readline()).rstrip(b"\r\n"):
            if line.upper() == b"DONE" and self._idle_tag is not None:
                self.commands.append("DONE")
                writer.write(self._idle_tag + b" OK IDLE terminated\r\n")
                self._idle_tag = None
                continue
            match = _COMMAND.match(line)
            if match is None:
                writer.write(b"* BAD what?\r\n")
                continue
            tag, name, rest = match.group(1), match.group(2).upper().decode(), match.group(3)
            self.commands.append(name)
            if name == "IDLE":
                self._idle_tag = tag  # and say nothing: the acknowledgement never comes
                continue
            writer.write(self._answer(name, rest.strip()) + tag + b" OK done\r\n")
            await writer.drain()
            if name == "LOGOUT":
                break
        writer.close()

    def _answer(self, name: str, rest: bytes) -> bytes:
        if name == "CAPABILITY":
            return b"* CAPABILITY " + CAPS + b"\r\n"
        if name == "LIST":
            folder = rest.split(b" ", 1)[1]
            return b'* LIST () "/" ' + (folder if folder != b'""' else b'""') + b"\r\n"
        if name == "SELECT":
            return b"* %d EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n" % len(self.inbox)
        if name == "SEARCH":
            return b"* SEARCH " + b" ".join(b"%d" % uid for uid in sorted(self.inbox)) + b"\r\n"
        if name == "FETCH":
            uid = int(rest.split()[0])
            body = self.inbox[uid]
            return b"* 1 FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (uid, len(body), body)
        if name == "MOVE":
            uid, folder = rest.split(b" ", 1)
            self.inbox.pop(int(uid))
            self.moved[int(uid)] = folder.strip(b'"').decode()
        if name == "LOGOUT":
            return b"* BYE see you\r\n"
        return b""


def test_unacknowledged_idle_falls_back_to_polling(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap, "IDLE_ACK_SECONDS", 0.5)
    server = SilentIdleServer()

    async def scenario() -> None:
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        config = ImapConfig.from_url(f"imap://parley:pw@127.0.0.1:{port}/INBOX")
        context = ProcessingContext(
            runtime.sessions, runtime.settings, AuthPolicy(), lambda: NOW, reader=MAIL_READER
        )
        poller = ImapPoller(config, context, poll_seconds=0.2)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            async with asyncio.timeout(60):
                while poller.idle_fallbacks == 0:
                    await asyncio.sleep(0.05)
                server.inbox[1] = mail(message_id="<polled@x>")
                while 1 not in server.moved:
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            listener.close()
            await listener.wait_closed()
        assert poller.connections == 1 and poller.idles == 0
        # The IDLE was ended with DONE, and the same connection went on with plain polls.
        assert server.commands.count("IDLE") == 1 and "DONE" in server.commands
        after = server.commands[server.commands.index("DONE") + 1 :]
        assert "SEARCH" in after and "MOVE" in after and "IDLE" not in after

    asyncio.run(scenario())
    assert server.moved == {1: "Parley/Ignored"}
    with runtime.sessions() as session:
        row = session.scalars(select(InboundMessage)).one()
    assert (row.message_key, row.outcome, row.imap_uid) == ("<polled@x>", "ignored", 1)
