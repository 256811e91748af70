"""Inbound SMTP accept-and-store rate on SQLite, 8 concurrent senders, vs a sink storing nothing.

Senders and server share one process and one event loop, as before. On a machine shared
with other work the rates swing, so the two servers are measured in alternating rounds
and the best and median of each are printed, with the process CPU time per message.

Usage: python bench/smtp_ingest.py [messages] [rounds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.logging import configure_logging
from mailagent.smtp import InboundHandler, RecipientPolicy, smtp_factory

SENDERS = 8
TO = "scheduling@parley.localhost"


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        return "250 OK"


async def _drive(port: int, total: int) -> tuple[float, float]:
    per = total // SENDERS

    async def sender(n: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for i in range(per):
            raw = (f"From: a@example.net\r\nTo: {TO}\r\nMessage-ID: <{n}-{i}-{time.time_ns()}@b>"
                   f"\r\nSubject: bench\r\n\r\nbody {i}\r\n").encode()  # fmt: skip
            await client.sendmail("a@example.net", [TO], raw)
        await client.quit()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender(n) for n in range(SENDERS)))
    sent = per * SENDERS
    return sent / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / sent


async def _measure(factory: Any, total: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await _drive(port, total)
    finally:
        server.close()
        await server.wait_closed()


def _summary(name: str, runs: list[tuple[float, float]]) -> str:
    rates = [rate for rate, _ in runs]
    cpu = statistics.median(ms for _, ms in runs)
    return (f"{name}: best {max(rates):6.0f}  median {statistics.median(rates):6.0f} messages/s"
            f"  ({cpu:.2f} ms CPU per message)")  # fmt: skip


def main() -> None:
    configure_logging("warning")
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    handler = InboundHandler(make_sessionmaker(engine), RecipientPolicy.single(TO))
    sink: list[tuple[float, float]] = []
    store: list[tuple[float, float]] = []
    for _ in range(rounds):
        sink.append(asyncio.run(_measure(lambda: SMTP(Sink(), decode_data=False), total)))
        store.append(asyncio.run(_measure(smtp_factory(handler, data_size_limit=1 << 20), total)))
    handler.close()
    engine.dispose()
    print(_summary("aiosmtpd sink (stores nothing)", sink))
    print(_summary("Parley SMTP accept-and-store  ", store) + f" SQLite, {SENDERS} senders")


if __name__ == "__main__":
    main()
