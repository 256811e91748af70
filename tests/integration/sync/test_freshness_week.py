"""Seven simulated days of an imported calendar, as the worker's poll job and a guest see them.

A quiet, healthy feed (it answers 304 Not Modified every time) must never pause instant
book: polls back off, but never past what the freshness gate allows. A feed that starts
failing pauses instant book once its last success is older than the limit, not before
and not later. The clock jumps from poll to poll; at the last moment before each poll
(when the source is as old as it gets) the public booking page says whether a guest's
booking would be confirmed at once or only requested.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.jobs import JobContext
from core.runtime import Runtime
from parley.handlers import job_handlers
from tests.integration.api.helpers import Clock, TestClient, client_for, make_provider
from tests.integration.sync.conftest import FeedServer
from tests.integration.sync.feeds import calendar, timed

NOW = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
STALE = timedelta(minutes=180)  # PARLEY_SOURCE_STALE_MINUTES, the default


def _world(
    runtime: Runtime, headers: dict[str, str], feeds: FeedServer
) -> tuple[TestClient, Clock, str]:
    clock = Clock(NOW)
    client = client_for(runtime, clock)
    provider = make_provider(client, headers, slug="casa", lead_time_hours=0)
    body = calendar(timed("stay@x", datetime(2027, 3, 20, 9, tzinfo=UTC)))
    url = feeds.put("/casa.ics", body, etag='"v1"')
    added = client.post(
        f"/api/v1/providers/{provider}/sources",
        json={"url": url, "platform": "airbnb"},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    return client, clock, added.json()["id"]


def _poll(runtime: Runtime, at: datetime) -> None:
    """The worker's sources.poll job, run at that moment."""
    context = JobContext(sessions=runtime.sessions, now=at, services={"runtime": runtime})
    job_handlers()["sources.poll"](context, {})


def _paused(client: TestClient) -> bool:
    page = client.get("/book/casa")
    assert page.status_code == 200, page.text
    return 'id="mode"' in page.text


def _next_poll(client: TestClient, headers: dict[str, str], source: str) -> datetime:
    state = client.get(f"/api/v1/sources/{source}", headers=headers)
    assert state.status_code == 200, state.text
    return datetime.fromisoformat(state.json()["next_poll_at"])


def test_a_quiet_healthy_feed_never_pauses_instant_book_in_a_week(
    runtime: Runtime, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    # Catches: the quiet back-off (up to PARLEY_POLL_MAX_MINUTES = 6 h) outgrowing the
    # stale limit (3 h), which paused instant book for a calendar that was fine.
    client, clock, source = _world(runtime, admin_headers, feed_server)
    _poll(runtime, NOW)
    assert not _paused(client)
    polls = paused = 0
    longest = timedelta(0)
    while clock.now < NOW + WEEK:
        due = _next_poll(client, admin_headers, source)
        longest = max(longest, due - clock.now)
        clock.now = due - timedelta(seconds=1)  # the oldest the last check gets
        paused += _paused(client)
        clock.now = due
        _poll(runtime, due)
        polls += 1
    assert paused == 0, f"paused before {paused} of {polls} polls"
    assert feed_server.not_modified.get("/casa.ics", 0) >= polls - 1  # it really was quiet
    assert longest > timedelta(minutes=60)  # and polling did back off
    assert longest < STALE


def test_a_failing_feed_pauses_instant_book_once_past_the_limit(
    runtime: Runtime, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    client, clock, source = _world(runtime, admin_headers, feed_server)
    _poll(runtime, NOW)
    last_success = NOW
    feed_server.feeds["/casa.ics"].status = 503
    first_paused = None
    while clock.now < NOW + WEEK:
        due = _next_poll(client, admin_headers, source)
        # Sample the gate every 10 minutes up to the next poll.
        moment = clock.now
        while moment < due:
            clock.now = moment
            if first_paused is None and _paused(client):
                first_paused = moment
            moment += timedelta(minutes=10)
        clock.now = due
        _poll(runtime, due)
        if first_paused is not None:
            break
    assert first_paused is not None, "a failing feed never paused instant book"
    assert STALE < first_paused - last_success <= STALE + timedelta(minutes=10)
    assert _paused(client)
