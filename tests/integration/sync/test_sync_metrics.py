"""Poll metrics, ``cal.ics.poll.*`` events and the database gauges, after real polls.

A loopback feed server answers 200, then 304 to the validators, then 500; each poll is
started the way an operator starts one (POST /sources/{id}/sync) and /metrics is read
over HTTP, as Prometheus reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from core.runtime import Runtime
from core.services import gauges
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
    sync_now,
)
from tests.integration.sync.feeds import calendar, timed
from tests.metrics import events, gauge, measured

NOW = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)


@pytest.fixture
def fresh_gauges() -> Iterator[None]:
    """Read the database on every scrape, so each step sees its own numbers."""
    kept = gauges.COLLECTOR.cache_seconds
    gauges.COLLECTOR.cache_seconds = 0.0
    yield
    gauges.COLLECTOR.cache_seconds = kept


def test_polls_by_outcome_with_the_seed_tags(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    provider = make_provider(api, admin_headers, "mira")
    body = calendar(*(timed(f"m{i}@x", NOW + (i + 1) * DAY) for i in range(3)))
    url = feed_server.put("/mira.ics", body, etag='"v1"')
    source = add_source(api, admin_headers, provider, url, platform="airbnb")

    with measured(api) as box, capture_logs() as logs:
        assert sync_now(api, admin_headers, source)["added"] == 3
    delta = box[0]
    assert delta("parley_ics_polls_total", platform="airbnb", outcome="ok") == 1
    assert delta("parley_ics_poll_seconds_count", platform="airbnb") == 1
    assert delta("parley_ics_payload_bytes_total", platform="airbnb") == len(body.encode())
    assert delta("parley_ics_events_total", change="added") == 3
    (ok,) = events(logs, "cal.ics.poll.ok")
    assert ok["src_id"] == source and ok["http_status"] == 200
    assert ok["etag_matched"] is False and ok["delta_event_count"] == 3

    with measured(api) as box, capture_logs() as logs:
        assert sync_now(api, admin_headers, source)["not_modified"] is True
    assert box[0]("parley_ics_polls_total", platform="airbnb", outcome="not_modified") == 1
    assert box[0]("parley_ics_payload_bytes_total", platform="airbnb") == 0
    (unchanged,) = events(logs, "cal.ics.poll.ok")
    assert unchanged["http_status"] == 304 and unchanged["etag_matched"] is True
    assert unchanged["delta_event_count"] == 0 and unchanged["outcome"] == "not_modified"

    feed_server.put("/mira.ics", "down for maintenance", status=500)
    with measured(api) as box, capture_logs() as logs:
        assert sync_now(api, admin_headers, source)["status"] == "error"
    assert box[0]("parley_ics_polls_total", platform="airbnb", outcome="error") == 1
    (failed,) = events(logs, "cal.ics.poll.error")
    assert failed["src_id"] == source and failed["http_status"] == 500
    assert failed["consecutive_errors"] == 1


def test_database_gauges_follow_sources_holds_and_mail(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    fresh_gauges: None,
) -> None:
    clock = Clock(NOW)
    runtime.clock = clock
    assert gauge(api, "parley_database_gauges_up") == 1
    assert gauge(api, "parley_sources_active") == 0
    provider = make_provider(api, admin_headers, "noor")
    url = feed_server.put("/noor.ics", calendar(timed("n1@x", NOW + DAY)), etag='"n1"')
    source = add_source(api, admin_headers, provider, url)
    # Added and never synced: stale, due, and as old as it is.
    clock.now = NOW + timedelta(minutes=5)
    assert gauge(api, "parley_sources_active") == 1
    assert gauge(api, "parley_sources_stale") == 1
    assert gauge(api, "parley_poll_backlog") == 1
    assert gauge(api, "parley_poll_oldest_due_seconds") == pytest.approx(300, abs=1)
    assert gauge(api, "parley_source_last_success_age_max_seconds") == pytest.approx(300, abs=1)

    sync_now(api, admin_headers, source)
    assert gauge(api, "parley_sources_stale") == 0
    assert gauge(api, "parley_poll_backlog") == 0
    clock.now += timedelta(minutes=runtime.settings.source_stale_minutes + 1)
    assert gauge(api, "parley_sources_stale") == 1
    age = (runtime.settings.source_stale_minutes + 1) * 60
    assert gauge(api, "parley_source_last_success_age_max_seconds") == pytest.approx(age, abs=1)

    start = (clock.now + 2 * DAY).replace(hour=9, minute=0)
    end = start + timedelta(hours=1)
    hold = {"provider_id": provider, "start": start.isoformat(), "end": end.isoformat(),
            "guest_email": "g@example.net"}  # fmt: skip
    made = api.post("/api/v1/holds", json=hold)
    assert made.status_code == 201, made.text
    assert gauge(api, "parley_holds_active") == 1
    pending_before = gauge(api, "parley_outbox_pending") or 0
    with measured(api) as box:
        booked = api.post(f"/api/v1/holds/{made.json()['id']}/confirm", json={})
    assert booked.status_code == 201 and booked.json()["booking"]["status"] == "requested"
    # The calendar is stale now, so instant book gave way to a request to the host.
    assert box[0]("parley_booking_attempts_total", mode="instant", outcome="downgraded") == 1
    assert gauge(api, "parley_holds_active") == 0
    # The host's approval request and the guest's "request sent".
    assert gauge(api, "parley_outbox_pending") == pending_before + 2
    assert (gauge(api, "parley_outbox_oldest_pending_seconds") or 0) >= 0

    feed_url = f"/api/v1/providers/{provider}/feed-token"
    for _ in range(4):
        assert api.post(feed_url, json={}, headers=admin_headers).status_code in (200, 201)
    assert gauge(api, "parley_feed_regenerations_24h_max") == 4
    clock.now += timedelta(hours=25)
    assert gauge(api, "parley_feed_regenerations_24h_max") == 0


def test_gauges_are_cached_between_scrapes(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str]
) -> None:
    runtime.clock = Clock(NOW)
    gauge(api, "parley_sources_active")  # binds this runtime and reads once
    reads = gauges.COLLECTOR.reads
    provider = make_provider(api, admin_headers, "cache")
    add_source(api, admin_headers, provider, "https://example.com/c.ics")
    for _ in range(5):
        assert gauge(api, "parley_sources_active") == 0  # the value of the first read
    assert gauges.COLLECTOR.reads == reads


def test_a_closed_runtime_is_never_read_again(make_settings: Any, db_url: str) -> None:
    # Catches: a scrape after a runtime closed checking a connection out of its disposed
    # engine (left open until the engine was collected).
    from core.runtime import open_runtime

    closed = open_runtime(make_settings(database_url=db_url))
    gauges.bind_runtime(closed)
    assert gauges.COLLECTOR.current()["parley_database_gauges_up"] == 1
    reads = gauges.COLLECTOR.reads
    closed.close()
    kept = gauges.COLLECTOR.cache_seconds
    gauges.COLLECTOR.cache_seconds = 0.0
    try:
        assert gauges.COLLECTOR.current() == {}
    finally:
        gauges.COLLECTOR.cache_seconds = kept
    assert gauges.COLLECTOR.reads == reads
