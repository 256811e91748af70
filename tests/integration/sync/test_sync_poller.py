"""The sources.poll job, fetch limits (size, redirects) and real corpus feeds through a sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.jobs import JobContext
from core.runtime import Runtime
from parley.handlers import job_handlers, periodic_jobs
from tests.conftest import CORPUS
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
    sync_now,
)
from tests.integration.sync.feeds import calendar, timed

NOW = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)


def test_poll_job_syncs_due_sources_only(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    assert any(p.kind == "sources.poll" for p in periodic_jobs(runtime.settings))
    provider = make_provider(api, admin_headers, "poller")
    body = calendar(timed("p@x", datetime(2030, 3, 6, 9, tzinfo=UTC)))
    ids = [add_source(api, admin_headers, provider, feed_server.put(f"/{n}.ics", body))
           for n in range(3)]  # fmt: skip
    context = JobContext(sessions=runtime.sessions, now=NOW, services={"runtime": runtime})
    job_handlers()["sources.poll"](context, {})
    assert sorted(feed_server.hits) == ["/0.ics", "/1.ics", "/2.ics"]
    states = [api.get(f"/api/v1/sources/{i}", headers=admin_headers).json() for i in ids]
    assert all(s["status"] == "ok" and s["events"] == 1 for s in states)
    assert all(s["next_poll_at"] > "2030-03-04T06:10:00Z" for s in states)
    job_handlers()["sources.poll"](context, {})  # nothing is due yet
    assert sum(feed_server.hits.values()) == 3


def test_oversized_feeds_and_redirect_loops_are_errors(
    runtime: Runtime,
    make_settings: Any,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
) -> None:
    runtime.settings = make_settings(database_url=runtime.settings.database_url,
                                     feed_max_bytes=2000, fetch_max_redirects=2)  # fmt: skip
    runtime.clock = Clock(NOW)
    big = calendar(*(timed(f"b{n}@x", datetime(2030, 3, 6, 9, tzinfo=UTC)) for n in range(40)))
    with TestClient(create_app_for(runtime)) as api:
        provider = make_provider(api, admin_headers, "limits")
        huge = add_source(api, admin_headers, provider, feed_server.put("/big.ics", big))
        result = sync_now(api, admin_headers, huge)
        assert result["status"] == "error" and "over the limit of 2000 bytes" in result["error"]
        loop = feed_server.put("/loop", b"", status=302, location="/loop")
        looping = add_source(api, admin_headers, provider, loop)
        result = sync_now(api, admin_headers, looping)
        assert result["status"] == "error" and "more than 2 redirects" in result["error"]
        feed_server.put("/moved", b"", status=301, location="/small.ics")
        feed_server.put("/small.ics", calendar(timed("s@x", datetime(2030, 3, 6, 9, tzinfo=UTC))))
        moved = add_source(api, admin_headers, provider, feed_server.url("/moved"))
        assert sync_now(api, admin_headers, moved)["added"] == 1


def create_app_for(runtime: Runtime) -> Any:
    from web.app import create_app

    return create_app(runtime.settings, runtime=runtime)


CORPUS_FILES = sorted((CORPUS / "recurrence-tz").rglob("*.ics")) if CORPUS.exists() else []


@pytest.mark.skipif(not CORPUS_FILES, reason="shared corpus not present")
def test_real_world_feeds_sync_or_fail_cleanly(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(datetime(2019, 1, 1, tzinfo=UTC))
    provider = make_provider(api, admin_headers, "corpus")
    outcomes = {}
    for path in CORPUS_FILES[:9]:  # the per-provider source limit
        url = feed_server.put(f"/{path.name}", path.read_bytes())
        source = add_source(api, admin_headers, provider, url)
        outcomes[path.name] = sync_now(api, admin_headers, source)
    assert all(o["status"] in ("ok", "error") for o in outcomes.values())
    assert all(o["error"] for o in outcomes.values() if o["status"] == "error")


def test_poll_records_are_kept_ninety_days(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    # MUVA §4: sync logs are kept 90 days; the daily sync_logs.purge job deletes older ones.
    from sqlalchemy import func, select

    from core.db.models import SyncLog

    runtime.clock = Clock(NOW)
    provider = make_provider(api, admin_headers, "kept")
    body = calendar(timed("k@x", datetime(2030, 3, 6, 9, tzinfo=UTC)))
    add_source(api, admin_headers, provider, feed_server.put("/k.ics", body))
    poll = JobContext(sessions=runtime.sessions, now=NOW, services={"runtime": runtime})
    job_handlers()["sources.poll"](poll, {})

    def kept() -> int:
        with runtime.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(SyncLog)) or 0)

    assert kept() == 1
    for days, left in ((89, 1), (91, 0)):
        at = NOW + timedelta(days=days)
        context = JobContext(sessions=runtime.sessions, now=at, services={"runtime": runtime})
        job_handlers()["sync_logs.purge"](context, {})
        assert kept() == left, days
    assert any(p.kind == "sync_logs.purge" for p in periodic_jobs(runtime.settings))
