"""Fixtures for sync tests: a loopback feed server with ETag / Last-Modified / 304, providers."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from core.runtime import Runtime
from web.app import create_app

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; plain httpx works the same for these tests.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


@dataclass
class Feed:
    """What the server answers on one path."""

    body: bytes
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = "text/calendar; charset=utf-8"
    delay: float = 0.0
    location: str | None = None
    # Hostile shapes: seconds between single bytes of the whole answer (head and body);
    # an endless chunked body repeating body; body sent gzip-encoded as it is given.
    drip: float = 0.0
    endless: bool = False
    gzip: bool = False


@dataclass
class FeedServer:
    """A threaded http.server on 127.0.0.1 serving Feed objects by path, counting requests."""

    port: int = 0
    feeds: dict[str, Feed] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    not_modified: dict[str, int] = field(default_factory=dict)
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    # Requests being answered now, the most at once, and when each began (monotonic).
    in_flight: int = 0
    most_in_flight: int = 0
    began: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: bytes | str, **options: Any) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.feeds[path] = Feed(data, **options)
        return self.url(path)


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            with server.lock:
                server.in_flight += 1
                server.most_in_flight = max(server.most_in_flight, server.in_flight)
                server.began.append(time.monotonic())
            try:
                self._answer()
            finally:
                with server.lock:
                    server.in_flight -= 1

        def _answer(self) -> None:
            path = self.path
            server.hits[path] = server.hits.get(path, 0) + 1
            server.seen_headers.append(dict(self.headers))
            feed = server.feeds.get(path)
            if feed is None:
                self._send(404, b"not found", "text/plain", {})
                return
            if feed.delay:
                time.sleep(feed.delay)
            if feed.drip or feed.endless:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
                    self._hostile(feed)
                self.close_connection = True
                return
            headers = {}
            if feed.etag:
                headers["ETag"] = feed.etag
            if feed.last_modified:
                headers["Last-Modified"] = feed.last_modified
            if feed.location:
                headers["Location"] = feed.location
            if feed.status == 200 and self._fresh(feed):
                server.not_modified[path] = server.not_modified.get(path, 0) + 1
                self._send(304, b"", None, headers)
                return
            self._send(feed.status, feed.body, feed.content_type, headers)

        do_PROPFIND = do_GET  # a CalDAV client's requests get the same answers
        do_REPORT = do_GET

        def _hostile(self, feed: Feed) -> None:
            if feed.drip:
                answer = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n"
                    + f"Content-Length: {len(feed.body)}\r\n\r\n".encode()
                    + feed.body
                )
                for byte in answer:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(feed.drip)
                return
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
            chunk = b"%x\r\n%s\r\n" % (len(feed.body), feed.body)
            while True:
                self.wfile.write(chunk)

        def _fresh(self, feed: Feed) -> bool:
            match = self.headers.get("If-None-Match")
            if match is not None and feed.etag:
                return match == feed.etag
            since = self.headers.get("If-Modified-Since")
            return since is not None and since == feed.last_modified

        def _send(
            self, status: int, body: bytes, ctype: str | None, headers: dict[str, str]
        ) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if ctype:
                self.send_header("Content-Type", ctype)
            feed = server.feeds.get(self.path)
            if feed is not None and feed.gzip and status == 200:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body) if status != 304 else 0))
            self.end_headers()
            if status != 304:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serving(
    state: FeedServer, host: str = "127.0.0.1", wrap: ssl.SSLContext | None = None
) -> Iterator[FeedServer]:
    """state's feeds served on host (at state.port, or a free port it then holds), over
    TLS when wrap is given, until the block ends."""
    httpd = ThreadingHTTPServer((host, state.port), _handler(state))
    httpd.daemon_threads = True
    if wrap is not None:
        httpd.socket = wrap.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with serving(FeedServer()) as state:
        yield state


class Clock:
    """A settable clock for the runtime."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def api(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
        yield client


# A rental unit's hours: one check-in hour a day, so each day is one slot.
CHECK_IN_HOURS = {
    "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "15:00",
                "end": "16:00"}],
    "lead_time_hours": 0, "booking_window_days": 60, "slot_step_minutes": 60,
    "min_duration_minutes": 60,
}  # fmt: skip


def make_provider(
    api: TestClient,
    headers: dict[str, str],
    slug: str,
    *,
    timezone: str = "Europe/Berlin",
    availability: dict[str, Any] | None = None,
    name: str | None = None,
    kind: str = "person",
) -> str:
    """A provider made through the API, with 24/7 availability unless told otherwise."""
    body = {
        "name": name or slug.replace("-", " ").title(),
        "email": f"{slug}@example.com",
        "timezone": timezone,
        "slug": slug,
        "kind": kind,
    }
    answer = api.post("/api/v1/providers", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    provider_id: str = answer.json()["id"]
    rules = availability or {
        "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
                    "end": "24:00"}],
        "lead_time_hours": 0, "booking_window_days": 60, "slot_step_minutes": 60,
        "min_duration_minutes": 60,
    }  # fmt: skip
    answer = api.put(f"/api/v1/providers/{provider_id}/availability", json=rules, headers=headers)
    assert answer.status_code == 200, answer.text
    return provider_id


def make_unit(api: TestClient, headers: dict[str, str], slug: str, name: str | None = None) -> str:
    """A rental unit (kind unit, UTC) with CHECK_IN_HOURS."""
    return make_provider(
        api, headers, slug, timezone="UTC", availability=CHECK_IN_HOURS, name=name, kind="unit"
    )


def add_source(
    api: TestClient, headers: dict[str, str], provider_id: str, url: str, **extra: Any
) -> str:
    answer = api.post(
        f"/api/v1/providers/{provider_id}/sources", json={"url": url, **extra}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    source_id: str = answer.json()["id"]
    return source_id


def sync_now(api: TestClient, headers: dict[str, str], source_id: str) -> dict[str, Any]:
    answer = api.post(f"/api/v1/sources/{source_id}/sync", headers=headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def slots(
    api: TestClient, provider_id: str, start: str, end: str, duration: int = 60
) -> list[tuple[str, str]]:
    answer = api.get(
        f"/api/v1/providers/{provider_id}/slots",
        params={"start": start, "end": end, "duration": str(duration)},
    )
    assert answer.status_code == 200, answer.text
    return [(s["start"], s["end"]) for s in answer.json()["slots"]]
