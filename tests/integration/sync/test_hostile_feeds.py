"""Hostile feeds from a loopback feed server: each is cut off within the fetch's total
time and the size limit, leaves a clear error on the source (shown by the API), and keeps
every event imported before. The deadline covers CalDAV sources and the poller too."""

from __future__ import annotations

import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.models import ExternalEvent
from core.jobs import JobContext
from core.runtime import Runtime
from parley.handlers import job_handlers
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
    sync_now,
)
from tests.integration.sync.feeds import calendar, timed
from web.app import create_app

NOW = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)
TIMEOUT = 1.0
MARGIN = 1.5  # seconds over the timeout a fetch may take to give up (thread, parse, commit)
LIMIT = 1_000_000
GOOD = calendar(*(timed(f"k{i}@x", NOW + timedelta(days=i + 1, hours=3)) for i in range(3)))


def _gzip_bomb(size: int) -> bytes:
    """size zero bytes, gzip-compressed (about a thousandth of size)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    return b"".join(packer.compress(block) for _ in range(size >> 20)) + packer.flush()


def _many_events(count: int) -> bytes:
    start = NOW + timedelta(days=2)
    return calendar(
        *(timed(f"m{i}@x", start + timedelta(minutes=i)) for i in range(count))
    ).encode()


HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    # name: (what the feed server does, what the error says)
    "drip": ({"body": GOOD.encode(), "drip": 0.2}, "timed out after 1 s"),
    "endless body": ({"body": b"X-PAD:" + b"p" * 8000 + b"\r\n", "endless": True},
                     f"over the limit of {LIMIT} bytes"),
    "gzip bomb": ({"body": _gzip_bomb(200 << 20), "gzip": True},
                  f"over the limit of {LIMIT} bytes"),
    "huge single line": ({"body": b"BEGIN:VCALENDAR\r\nX-LINE:" + b"a" * (LIMIT - 100)}, "END:"),
    "binary garbage": ({"body": bytes(range(256)) * 64, "content_type": "image/png"}, "iCalendar"),
    "json": ({"body": b'{"events": []}', "content_type": "application/json"}, "iCalendar"),
    "bad gzip": ({"body": b"\x1f\x8b\x08\x00garbage" * 10, "gzip": True}, "compressed"),
}  # fmt: skip


def _events(runtime: Runtime, source: str) -> int:
    with runtime.sessions() as session:
        query = select(func.count()).select_from(ExternalEvent)
        return session.scalar(query.where(ExternalEvent.source_id == source)) or 0


def _app(runtime: Runtime, make_settings: Any, **extra: Any) -> TestClient:
    values = {"fetch_timeout_seconds": TIMEOUT, "feed_max_bytes": LIMIT} | extra
    runtime.settings = make_settings(database_url=runtime.settings.database_url, **values)
    runtime.clock = Clock(NOW)
    return TestClient(create_app(runtime.settings, runtime=runtime))


def _measured_sync(
    api: TestClient, admin_headers: dict[str, str], source: str
) -> tuple[dict[str, Any], float, int]:
    """(sync_now's answer, seconds it took, peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        started = time.monotonic()
        result = sync_now(api, admin_headers, source)
        elapsed = time.monotonic() - started
        return result, elapsed, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_a_hostile_feed_is_cut_off_and_keeps_what_was_imported(
    runtime: Runtime,
    make_settings: Any,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    shape: str,
) -> None:
    options, message = HOSTILE[shape]
    with _app(runtime, make_settings) as api:
        provider = make_provider(api, admin_headers, "hostile")
        url = feed_server.put("/feed.ics", GOOD)
        source = add_source(api, admin_headers, provider, url)
        assert sync_now(api, admin_headers, source)["added"] == 3
        feed_server.put("/feed.ics", **options)
        result, elapsed, peak = _measured_sync(api, admin_headers, source)
        shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).json()
    assert result["status"] == "error", result
    assert message in result["error"], result["error"]
    assert shown["status"] == "error" and shown["last_error"] == result["error"]
    assert elapsed < TIMEOUT + MARGIN, f"{shape} held the sync {elapsed:.1f} s"
    assert peak < 12 * LIMIT, f"{shape} took {peak / 1e6:.0f} MB"
    assert _events(runtime, source) == 3


def test_100k_events_are_refused_within_bounds(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    body = _many_events(100_000)
    with _app(
        runtime, make_settings, feed_max_bytes=len(body) + 1, fetch_timeout_seconds=20
    ) as api:
        provider = make_provider(api, admin_headers, "many")
        source = add_source(api, admin_headers, provider, feed_server.put("/feed.ics", GOOD))
        sync_now(api, admin_headers, source)
        feed_server.put("/feed.ics", body)
        started = time.monotonic()
        result = sync_now(api, admin_headers, source)
        elapsed = time.monotonic() - started
    assert result["status"] == "error" and "50000" in result["error"], result
    assert elapsed < 15, f"100k events took {elapsed:.1f} s"
    assert _events(runtime, source) == 3


def test_a_dripping_caldav_server_is_cut_off_at_the_deadline(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    with _app(runtime, make_settings) as api:
        provider = make_provider(api, admin_headers, "davdrip")
        feed_server.put("/dav/cal/", GOOD, drip=0.2)
        source = add_source(api, admin_headers, provider, feed_server.url("/dav/cal/"),
                            kind="caldav", username="u", password="p")  # fmt: skip
        started = time.monotonic()
        result = sync_now(api, admin_headers, source)
        elapsed = time.monotonic() - started
        shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).json()
    assert result["status"] == "error" and "timed out after 1 s" in result["error"], result
    assert "timed out" in shown["last_error"]
    assert elapsed < TIMEOUT + MARGIN, f"the CalDAV sync was held {elapsed:.1f} s"


def test_a_dripping_feed_does_not_hold_the_poller(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    with _app(runtime, make_settings, poll_concurrency=2) as api:
        provider = make_provider(api, admin_headers, "poll")
        slow = add_source(api, admin_headers, provider,
                          feed_server.put("/slow.ics", GOOD, drip=0.2))  # fmt: skip
        fine = [add_source(api, admin_headers, provider, feed_server.put(f"/{n}.ics", GOOD))
                for n in range(4)]  # fmt: skip
        context = JobContext(sessions=runtime.sessions, now=NOW, services={"runtime": runtime})
        started = time.monotonic()
        job_handlers()["sources.poll"](context, {})
        elapsed = time.monotonic() - started
        states = {s: api.get(f"/api/v1/sources/{s}", headers=admin_headers).json()
                  for s in [slow, *fine]}  # fmt: skip
    assert elapsed < TIMEOUT + MARGIN + 1, f"the poll was held {elapsed:.1f} s"
    assert states[slow]["status"] == "error" and "timed out" in states[slow]["last_error"]
    assert all(states[s]["status"] == "ok" and states[s]["events"] == 3 for s in fine)


def test_an_endless_caldav_answer_is_cut_off_at_the_size_limit(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    with _app(runtime, make_settings, fetch_timeout_seconds=10) as api:
        provider = make_provider(api, admin_headers, "davendless")
        feed_server.put("/dav/cal/", b"<x>" + b"p" * 8000 + b"</x>\r\n", endless=True)
        source = add_source(api, admin_headers, provider, feed_server.url("/dav/cal/"),
                            kind="caldav", username="u", password="p")  # fmt: skip
        result, elapsed, peak = _measured_sync(api, admin_headers, source)
    assert result["status"] == "error", result
    assert f"larger than the limit of {LIMIT} bytes" in result["error"], result["error"]
    assert elapsed < 5, f"the endless CalDAV answer was read for {elapsed:.1f} s"
    assert peak < 12 * LIMIT, f"the endless CalDAV answer took {peak / 1e6:.0f} MB"
