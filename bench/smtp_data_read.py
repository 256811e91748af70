"""DATA read rate of the listener's own reader vs aiosmtpd's, both storing nothing.

Each sender sends the same message over and over on one connection; the handler answers
250 without storing. Shapes: a usual 4 KB mail (CRLF, short lines), the same with bare
LF line ends, and one with a 1,200-byte header and a 20,000-byte body line (aiosmtpd
refuses the last two with 500, so only Parley's reader is measured there).

Usage: python bench/smtp_data_read.py [messages] [rounds]
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope

from core.logging import configure_logging
from mailagent.smtp import FastPathSMTP

SENDERS = 4
TO = "scheduling@parley.localhost"


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        return "250 OK" if envelope.original_content else "554 empty"


def shapes() -> dict[str, bytes]:
    head = f"From: a@example.net\r\nTo: {TO}\r\nSubject: bench\r\nMessage-ID: <x@b>\r\n\r\n"
    usual = (head + "A usual line of a mail body, not long at all.\r\n" * 85).encode()
    long = (
        f"From: a@example.net\r\nTo: {TO}\r\nSubject: {'s' * 1200}\r\n\r\n<p>{'x' * 20000}</p>\r\n"
    ).encode()
    return {"usual 4 KB, CRLF": usual, "usual 4 KB, bare LF": usual.replace(b"\r\n", b"\n"),
            "1,200 B header + 20 KB line": long}  # fmt: skip


def _sender(port: int, raw: bytes, count: int) -> int:
    """A blocking raw client (bare LFs go out as they are); the number of 250s."""
    ok = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb")

        def reply() -> bytes:
            while True:
                line = reader.readline()
                if line[3:4] != b"-":
                    return line

        reply()
        sock.sendall(b"EHLO bench\r\n")
        reply()
        for _ in range(count):
            sock.sendall(f"MAIL FROM:<a@example.net>\r\nRCPT TO:<{TO}>\r\nDATA\r\n".encode())
            reply(), reply(), reply()
            sock.sendall(raw + (b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n"))
            ok += reply().startswith(b"250")
        sock.sendall(b"QUIT\r\n")
    return ok


async def _measure(factory: Any, raw: bytes, total: int) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    per = total // SENDERS
    started = time.perf_counter()
    try:
        done = await asyncio.gather(
            *(asyncio.to_thread(_sender, port, raw, per) for _ in range(SENDERS))
        )
    finally:
        server.close()
        await server.wait_closed()
    return per * SENDERS / (time.perf_counter() - started), sum(done)


def main() -> None:
    configure_logging("warning")
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    readers = {
        "aiosmtpd": lambda: SMTP(Sink(), decode_data=False, data_size_limit=1 << 20),
        "Parley  ": lambda: FastPathSMTP(Sink(), decode_data=False, data_size_limit=1 << 20),
    }
    for n, (shape, raw) in enumerate(shapes().items()):
        for name, factory in readers.items():
            if n and name == "aiosmtpd":
                continue  # it answers 500 Line too long to these
            runs = [asyncio.run(_measure(factory, raw, total)) for _ in range(rounds)]
            rates = [rate for rate, _ in runs]
            accepted = runs[-1][1]
            print(f"{shape:30} {name}: best {max(rates):6.0f}  median "
                  f"{statistics.median(rates):6.0f} messages/s  ({accepted} of "
                  f"{total // SENDERS * SENDERS} accepted)")  # fmt: skip


if __name__ == "__main__":
    main()
