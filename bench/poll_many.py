"""Benchmark: one worker polling 1,000 ICS sources on a local server.

A threaded HTTP server on loopback serves 1,000 small OTA-shaped feeds with ETags. The
first round imports them all (fetch, parse, diff, write); the second gets 304s. Fetches
run concurrently in a thread pool sharing one httpx client; each source's write is one
short transaction (SQLite serializes them; they are a few milliseconds each).
Run: python -m bench.poll_many [--sources N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.feed_import import add_source, bench_database
from caldav_bridge.importers import make_fetcher
from core.logging import configure_logging
from core.services.sync import SyncPolicy, poll_sources
from core.settings import Settings

NOW = datetime(2030, 6, 1, 8, tzinfo=UTC)


def feed_body(n: int) -> bytes:
    """An Airbnb-shaped feed: a few stays and blocks over the next two months."""
    rng = random.Random(n)
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Airbnb Inc//Hosting Calendar 0.8.8//EN"]
    day = date(2030, 6, 1)
    for k in range(6):
        day += timedelta(days=rng.randrange(2, 9))
        nights = rng.randrange(1, 6)
        prefix = "1418fb94e984" if k % 3 else "7f662ec65913"
        out += [
            "BEGIN:VEVENT",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=nights):%Y%m%d}",
            f"UID:{prefix}-{n:05d}{k:02d}@airbnb.com",
            "SUMMARY:Reserved" if k % 3 else "SUMMARY:Airbnb (Not available)",
            "END:VEVENT",
        ]
        day += timedelta(days=nights)
    out.append("END:VCALENDAR")
    return ("\r\n".join(out) + "\r\n").encode()


def serve(count: int) -> tuple[ThreadingHTTPServer, int]:
    bodies = {f"/f/{n}.ics": feed_body(n) for n in range(count)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = bodies.get(self.path)
            etag = f'"{self.path}"'
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            fresh = self.headers.get("If-None-Match") == etag
            self.send_response(304 if fresh else 200)
            self.send_header("ETag", etag)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", "0" if fresh else str(len(body)))
            self.end_headers()
            if not fresh:
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    configure_logging("warning")
    server, port = serve(args.sources)
    with tempfile.TemporaryDirectory() as folder:
        sessions = bench_database(Path(folder))
        ids = [
            add_source(sessions, NOW, f"http://127.0.0.1:{port}/f/{n}.ics")
            for n in range(args.sources)
        ]
        settings = Settings(data_dir=Path(folder), import_allow_private=True, smtp_port=0)
        fetcher = make_fetcher(settings)
        policy = SyncPolicy(secret_key=b"bench")
        for label in ("first poll (all changed: fetch, parse, write)", "second poll (all 304)"):
            began = time.perf_counter()
            outcomes = poll_sources(
                sessions, ids, fetcher, now=lambda: NOW, policy=policy,
                concurrency=args.concurrency,
            )  # fmt: skip
            seconds = time.perf_counter() - began
            states: dict[str, int] = {}
            for o in outcomes:
                key = "not_modified" if o.not_modified else o.status
                states[key] = states.get(key, 0) + 1
            added = sum(o.added for o in outcomes)
            print(
                f"{label:<48} {seconds:6.2f} s  {len(outcomes) / seconds:7.1f} sources/s  "
                f"{states}  events added {added}  (target <= 60 s)"
            )
        fetcher.close()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
