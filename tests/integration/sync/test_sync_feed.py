"""One sync attempt against a loopback feed server: deltas, 304, unchanged hash, failures, guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.models import ExternalEvent, ExternalSource, SyncLog
from core.runtime import Runtime
from core.services import sync
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
    slots,
    sync_now,
)
from tests.integration.sync.feeds import calendar, timed

NOW = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)


def _count(runtime: Runtime, model: Any, **where: Any) -> int:
    with runtime.sessions() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query) or 0


def _events(runtime: Runtime, source_id: str) -> dict[str, tuple[int, datetime, str]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(ExternalEvent).where(ExternalEvent.source_id == source_id))
        return {r.uid: (r.id, r.start_at, r.content_hash) for r in rows}


def _source(runtime: Runtime, source_id: str) -> ExternalSource:
    with runtime.sessions() as session:
        found = session.get(ExternalSource, source_id)
        assert found is not None
        return found


@pytest.fixture
def setup(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> tuple[str, str, Clock]:
    clock = Clock(NOW)
    runtime.clock = clock
    provider = make_provider(api, admin_headers, "anna")
    body = calendar(*(timed(f"e{i}@x", NOW + (i + 1) * DAY + timedelta(hours=4)) for i in range(6)))
    url = feed_server.put("/anna.ics", body, etag='"v1"')
    return provider, add_source(api, admin_headers, provider, url), clock


def test_first_sync_adds_events_and_blocks_slots(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], setup: tuple[str, str, Clock]
) -> None:
    provider, source, _ = setup
    result = sync_now(api, admin_headers, source)
    assert result["status"] == "ok" and result["added"] == 6 and not result["not_modified"]
    day_slots = slots(api, provider, "2030-03-05T00:00:00Z", "2030-03-06T00:00:00Z")
    assert ("2030-03-05T10:00:00Z", "2030-03-05T11:00:00Z") not in day_slots
    assert ("2030-03-05T09:00:00Z", "2030-03-05T10:00:00Z") in day_slots
    shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).json()
    assert shown["status"] == "ok" and shown["events"] == 6 and shown["last_error"] is None
    assert shown["last_success_at"] == "2030-03-04T06:00:00Z"


def test_only_the_delta_is_written(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
) -> None:
    _provider, source, _ = setup
    sync_now(api, admin_headers, source)
    before = _events(runtime, source)
    events = [timed(f"e{i}@x", NOW + (i + 1) * DAY + timedelta(hours=4)) for i in range(6)]
    events[1] = timed("e1@x", NOW + 2 * DAY + timedelta(hours=7))  # moved
    del events[2]  # cancelled by removal
    events.append(timed("new@x", NOW + 9 * DAY))
    feed_server.put("/anna.ics", calendar(*events), etag='"v2"')
    result = sync_now(api, admin_headers, source)
    assert (result["added"], result["updated"], result["removed"]) == (1, 1, 1)
    after = _events(runtime, source)
    assert set(after) == (set(before) - {"e2@x"}) | {"new@x"}
    for uid in ("e0@x", "e3@x", "e4@x", "e5@x"):
        assert after[uid] == before[uid]  # same row, same content: untouched
    assert after["e1@x"][0] == before["e1@x"][0] and after["e1@x"][1] != before["e1@x"][1]
    log = _last_log(runtime, source)
    assert (log.events_added, log.events_updated, log.events_removed) == (1, 1, 1)
    assert log.status == "success" and log.duration_ms >= log.parse_ms


def _last_log(runtime: Runtime, source: str) -> SyncLog:
    with runtime.sessions() as session:
        log = session.scalars(
            select(SyncLog).where(SyncLog.source_id == source).order_by(SyncLog.id.desc())
        ).first()
        assert log is not None
        return log


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an unchanged feed must not be parsed")

    monkeypatch.setattr(sync, "read_feed", refuse)


def test_304_writes_no_event_and_parses_nothing(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _provider, source, clock = setup
    sync_now(api, admin_headers, source)
    before = _events(runtime, source)
    _no_parse(monkeypatch)
    clock.now = NOW + timedelta(hours=1)
    result = sync_now(api, admin_headers, source)
    assert result["not_modified"] and result["status"] == "ok"
    assert (result["added"], result["updated"], result["removed"]) == (0, 0, 0)
    assert feed_server.not_modified["/anna.ics"] == 1
    assert feed_server.seen_headers[-1].get("If-None-Match") == '"v1"'
    assert _events(runtime, source) == before
    assert _count(runtime, SyncLog, source_id=source, not_modified=True) == 1
    assert _source(runtime, source).last_success_at == clock.now


def test_same_body_without_validators_is_not_parsed(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _provider, source, clock = setup
    feed_server.feeds["/anna.ics"].etag = None  # a server with no ETag, no Last-Modified
    sync_now(api, admin_headers, source)
    before = _events(runtime, source)
    _no_parse(monkeypatch)
    clock.now = NOW + timedelta(hours=1)
    result = sync_now(api, admin_headers, source)
    assert result["not_modified"] and "/anna.ics" not in feed_server.not_modified
    assert feed_server.hits["/anna.ics"] == 2
    assert _events(runtime, source) == before


def test_window_slide_rereads_an_unchanged_feed(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
) -> None:
    _provider, source, clock = setup
    far = timed("far@x", NOW + 64 * DAY)  # past the booking window, inside the read window
    later = timed("later@x", NOW + 75 * DAY)  # outside the first read's window
    body = calendar(far, later)
    feed_server.put("/anna.ics", body, etag='"same"')
    first = sync_now(api, admin_headers, source)
    assert first["added"] == 1
    clock.now = NOW + 20 * DAY
    second = sync_now(api, admin_headers, source)
    assert not second["not_modified"] and second["added"] == 1
    assert feed_server.seen_headers[-1].get("If-None-Match") is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("<!DOCTYPE html><html><head><title>Sign in</title></head></html>", 200, "HTML"),
        ("Internal error", 500, "HTTP 500"),
        ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:2030", 200, "END:"),
        ("", 200, "empty"),
    ],
)
def test_failures_keep_busy_time_and_record_the_error(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
    body: str,
    status: int,
    message: str,
) -> None:
    _provider, source, clock = setup
    sync_now(api, admin_headers, source)
    before = _events(runtime, source)
    feed_server.put("/anna.ics", body, status=status, etag='"broken"')
    clock.now = NOW + timedelta(hours=2)
    result = sync_now(api, admin_headers, source)
    assert result["status"] == "error" and message in (result["error"] or "")
    assert _events(runtime, source) == before
    shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).json()
    assert shown["status"] == "error" and message in shown["last_error"]
    assert shown["last_success_at"] == "2030-03-04T06:00:00Z"
    log = _last_log(runtime, source)
    assert log.status == "error" and (status != 500 or log.http_status == 500)
    # back-off: the next poll comes sooner than a normal interval, later with every error
    first_retry = _source(runtime, source).next_poll_at - clock.now
    sync_now(api, admin_headers, source)
    second_retry = _source(runtime, source).next_poll_at - clock.now
    assert timedelta(minutes=1) < first_retry < second_retry <= timedelta(hours=6, minutes=80)


def test_timeout_is_an_error_that_keeps_data(
    runtime: Runtime,
    make_settings: Any,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
) -> None:
    _provider, source, clock = setup
    sync_now(api, admin_headers, source)
    feed_server.feeds["/anna.ics"].delay = 1.5
    feed_server.feeds["/anna.ics"].etag = '"slow"'
    runtime.settings = make_settings(database_url=runtime.settings.database_url,
                                     fetch_timeout_seconds=0.5)  # fmt: skip
    result = sync.sync_source(
        runtime.sessions, source, _fetcher(runtime), now=clock.now, policy=_policy(runtime)
    )
    assert result.status == "error" and "timed out" in (result.error or "")
    assert _count(runtime, ExternalEvent, source_id=source) == 6


def _fetcher(runtime: Runtime) -> Any:
    from caldav_bridge.importers import make_fetcher

    return make_fetcher(runtime.settings)


def _policy(runtime: Runtime) -> sync.SyncPolicy:
    return sync.SyncPolicy.from_settings(runtime.settings, runtime.secrets.secret_key)


def test_mass_removal_is_held_until_confirmed(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
) -> None:
    provider, source, clock = setup
    sync_now(api, admin_headers, source)
    feed_server.put("/anna.ics", calendar(), etag='"empty"')  # an empty export
    clock.now = NOW + timedelta(hours=1)
    result = sync_now(api, admin_headers, source)
    assert result["status"] == "held" and result["removed"] == 0
    assert _count(runtime, ExternalEvent, source_id=source) == 6
    shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).json()
    assert shown["status"] == "held" and "6 of 6" in shown["held_reason"]
    blocked = ("2030-03-05T10:00:00Z", "2030-03-05T11:00:00Z")
    assert blocked not in slots(api, provider, "2030-03-05T00:00:00Z", "2030-03-06T00:00:00Z")
    # a later poll of the same empty feed is still held (validators were not advanced)
    assert sync_now(api, admin_headers, source)["status"] == "held"
    confirmed = api.post(f"/api/v1/sources/{source}/confirm-removal", headers=admin_headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "ok" and confirmed.json()["removed"] == 6
    assert _count(runtime, ExternalEvent, source_id=source) == 0
    assert blocked in slots(api, provider, "2030-03-05T00:00:00Z", "2030-03-06T00:00:00Z")
    again = api.post(f"/api/v1/sources/{source}/confirm-removal", headers=admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_held"


def test_a_held_feed_that_recovers_is_released(
    runtime: Runtime,
    api: TestClient,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    setup: tuple[str, str, Clock],
) -> None:
    _provider, source, _clock = setup
    sync_now(api, admin_headers, source)
    full = feed_server.feeds["/anna.ics"].body
    feed_server.put("/anna.ics", calendar(), etag='"empty"')
    assert sync_now(api, admin_headers, source)["status"] == "held"
    feed_server.put("/anna.ics", full, etag='"v1"')
    result = sync_now(api, admin_headers, source)
    assert result["status"] == "ok" and result["not_modified"]
    assert _source(runtime, source).held_reason is None
