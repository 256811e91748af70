"""Outbound delivery rate: queued outbox rows sent to a local aiosmtpd sink over one connection.

Usage: python bench/outbox_send.py [messages]   (prints messages/s)
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.logging import configure_logging
from core.services.outbox import enqueue_message
from core.settings import Settings
from mailagent.outbox import OutboxSender


class Sink:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        with self.lock:
            self.count += 1
        return "250 OK"


def main() -> None:
    configure_logging("warning")
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for i in range(total):
            raw = f"From: s@p.example\r\nTo: a{i}@example.net\r\nMessage-ID: <{i}@p>\r\n\r\nhi\r\n"
            enqueue_message(
                session, idempotency_key=f"k{i}", kind="bench", uid=f"u{i}", sequence=0,
                attendee=f"a{i}@example.net", method="REQUEST", booking_id=None,
                recipient=f"a{i}@example.net", message=raw.encode(), message_id=f"<{i}@p>",
                now=now,
            )  # fmt: skip
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings = Settings(
        data_dir=folder, database_url=url, smtp_relay_url=f"smtp://127.0.0.1:{port}"
    )
    sender = OutboxSender(settings, sessions, lambda: datetime.now(UTC))
    started = time.perf_counter()
    report = asyncio.run(sender.run(max_batches=10_000))
    elapsed = time.perf_counter() - started
    controller.stop()
    engine.dispose()
    print(f"outbox -> local SMTP sink: {report.sent / elapsed:8.0f} messages/s "
          f"({report.sent} sent, sink got {sink.count}, SQLite)")  # fmt: skip


if __name__ == "__main__":
    main()
