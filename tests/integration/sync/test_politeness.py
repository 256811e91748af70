"""Politeness towards calendar hosts, and limits on "sync now" (seed 003 §9.3).

The worker's poll job keeps at most PARLEY_POLL_PER_HOST fetches in flight to one host,
their starts PARLEY_POLL_HOST_GAP_MS apart (measured at the feed server); "sync now" is
refused with 429, Retry-After and "try again in N s" past its budget per calendar and
per tenant; when more calendars are due than a run takes, the intervals widen and
``parley_poll_pressure`` says so on /metrics.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from caldav_bridge.importers import make_fetcher
from core.jobs import JobContext
from core.runtime import Runtime
from core.services.sync import SyncPolicy, poll_due
from parley.handlers import job_handlers
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
)
from tests.integration.sync.feeds import calendar, timed
from web.app import create_app

NOW = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)
FEED = calendar(timed("p@x", datetime(2030, 3, 6, 9, tzinfo=UTC)))


def _client(runtime: Runtime, make_settings: Any, **settings: Any) -> TestClient:
    runtime.settings = make_settings(database_url=runtime.settings.database_url, **settings)
    runtime.clock = Clock(NOW)
    return TestClient(create_app(runtime.settings, runtime=runtime))


def _sources(
    api: TestClient, headers: dict[str, str], feeds: FeedServer, count: int, *, delay: float = 0
) -> list[str]:
    provider = make_provider(api, headers, "busy-host")
    ids = []
    for n in range(count):
        url = feeds.put(f"/{n}.ics", FEED, delay=delay)
        ids.append(add_source(api, headers, provider, url))
    return ids


def _poll(runtime: Runtime) -> None:
    context = JobContext(sessions=runtime.sessions, now=NOW, services={"runtime": runtime})
    job_handlers()["sources.poll"](context, {})


def test_the_poll_job_keeps_to_the_per_host_limits(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    api = _client(runtime, make_settings, poll_per_host=2, poll_host_gap_ms=50,
                  poll_concurrency=8)  # fmt: skip
    _sources(api, admin_headers, feed_server, 8, delay=0.2)
    _poll(runtime)
    assert sum(feed_server.hits.values()) == 8
    assert feed_server.most_in_flight == 2  # eight threads, two at the host at a time
    starts = sorted(feed_server.began)
    # Requests leave 50 ms apart; the server sees them within scheduling jitter of that.
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.025
    assert starts[-1] - starts[0] >= 7 * 0.05 * 0.9


def test_without_the_limit_the_host_gets_every_thread(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    # The measurement above can fail: with a generous limit the host sees them all at once.
    api = _client(runtime, make_settings, poll_per_host=8, poll_host_gap_ms=0,
                  poll_concurrency=8)  # fmt: skip
    _sources(api, admin_headers, feed_server, 8, delay=0.3)
    _poll(runtime)
    assert feed_server.most_in_flight > 2


def test_sync_now_is_throttled_per_calendar_and_per_tenant(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    api = _client(runtime, make_settings, sync_now_per_source_per_minute=2,
                  sync_now_per_tenant_per_minute=3)  # fmt: skip
    first, second, third = _sources(api, admin_headers, feed_server, 3)

    def sync(source: str) -> Any:
        return api.post(f"/api/v1/sources/{source}/sync", headers=admin_headers)

    assert [sync(first).status_code for _ in range(2)] == [200, 200]
    refused = sync(first)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "sync_throttled"
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 61
    assert refused.json()["error"]["message"] == (
        f"this calendar was synced just now; try again in {wait} s"
    )
    assert sync(second).status_code == 200
    # The tenant's fourth sync in the minute is refused (a refused one is not counted).
    over = sync(third)
    assert over.status_code == 429 and "calendars were synced" in over.json()["error"]["message"]

    runtime.clock.now = NOW + timedelta(seconds=wait)  # type: ignore[attr-defined]
    assert sync(first).status_code == 200


def test_a_queue_longer_than_a_run_widens_intervals_and_shows_on_metrics(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    api = _client(runtime, make_settings)
    ids = _sources(api, admin_headers, feed_server, 6)
    policy = SyncPolicy.from_settings(runtime.settings, runtime.secrets.secret_key)
    fetcher = make_fetcher(runtime.settings)
    try:
        # The poll job's own function, with a batch of two for six due calendars.
        done = poll_due(runtime.sessions, fetcher, now=runtime.clock, policy=policy,
                        concurrency=2, limit=2)  # fmt: skip
        assert len(done) == 2
        assert "parley_poll_pressure 3.0" in api.get("/metrics").text
        polled = [api.get(f"/api/v1/sources/{i}", headers=admin_headers).json() for i in ids]
        waits = [
            datetime.fromisoformat(s["next_poll_at"]) - NOW for s in polled if s["status"] == "ok"
        ]
        assert len(waits) == 2
        assert all(w >= timedelta(minutes=15 * 3 * 0.9) for w in waits), waits
        poll_due(runtime.sessions, fetcher, now=runtime.clock, policy=policy,
                 concurrency=2, limit=10)  # fmt: skip
        assert "parley_poll_pressure 1.0" in api.get("/metrics").text
    finally:
        fetcher.close()
