"""Imported calendars' URLs are secrets (#16 item 6): sealed in the database, masked wherever
they are shown, still fetched, and rows from before sealing are sealed by the migration.

An Airbnb export URL carries the listing and a token; whoever has it reads every
reservation. Added over the API, it never appears in the database, the API answers, the
/me calendars page or the sources list; the poll job still reads the feed through it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from core.crypto import URL_PURPOSE, unseal
from core.db.migrate import upgrade
from core.runtime import Runtime
from core.services.source_urls import mask
from tests.conftest import create_pg_database, drop_pg_database, postgres_url_or_skip
from tests.integration.me.helpers import sign_in
from tests.integration.sync.conftest import Clock, FeedServer, TestClient, add_source, sync_now
from tests.integration.sync.feeds import calendar, timed

TOKEN = "s=0123456789abcdef0123456789abcdef"
NOW = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)


def _dump(runtime: Runtime) -> str:
    """Every text and byte value of external_sources, as one string."""
    with runtime.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM external_sources")).all()
    return " ".join(
        bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview)) else str(v)
        for row in rows
        for v in row
    )


def test_an_export_url_is_sealed_masked_and_still_polled(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str], feed_server: FeedServer
) -> None:
    runtime.clock = Clock(NOW)
    body = {"name": "Ada", "email": "ada@example.org", "timezone": "UTC", "slug": "ada"}
    provider = api.post("/api/v1/providers", json=body, headers=admin_headers).json()["id"]
    feed = calendar(timed("stay@x", datetime(2030, 3, 6, 9, tzinfo=UTC)))
    url = feed_server.put("/calendar/ical/41234567.ics", feed) + f"?{TOKEN}"
    feed_server.feeds[f"/calendar/ical/41234567.ics?{TOKEN}"] = feed_server.feeds.pop(
        "/calendar/ical/41234567.ics"
    )
    source = add_source(api, admin_headers, provider, url, platform="airbnb")
    masked = f"http://127.0.0.1:{feed_server.port}/calendar/ical/…"

    assert TOKEN not in _dump(runtime) and "41234567" not in _dump(runtime)
    shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers)
    assert shown.json()["url"] == masked and TOKEN not in shown.text
    listed = api.get("/api/v1/sources", headers=admin_headers)
    assert listed.status_code == 200 and TOKEN not in listed.text

    assert sync_now(api, admin_headers, source)["added"] == 1  # fetched through the real URL
    assert feed_server.hits == {f"/calendar/ical/41234567.ics?{TOKEN}": 1}
    again = api.post(f"/api/v1/providers/{provider}/sources", json={"url": url},
                     headers=admin_headers)  # fmt: skip
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_source"

    sign_in(api, runtime, "ada@example.org")
    page = api.get("/me/calendars")
    assert page.status_code == 200 and TOKEN not in page.text and "41234567" not in page.text


def test_masks_keep_words_and_hide_the_rest() -> None:
    assert mask("https://www.airbnb.com/calendar/ical/4123.ics?s=abc") == (
        "https://www.airbnb.com/calendar/ical/…"
    )
    assert mask("https://admin.booking.com/hotel/hoteladmin/ical.html?t=x") == (
        "https://admin.booking.com/hotel/hoteladmin/…"
    )
    assert mask("https://example.com/") == "https://example.com/"
    assert mask("https://example.com/calendar") == "https://example.com/calendar"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_seals_rows_stored_before(
    backend: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "migration-test-secret-key-0123456789"
    monkeypatch.setenv("PARLEY_SECRET_KEY", key)
    monkeypatch.setenv("PARLEY_DATA_DIR", str(tmp_path / "data"))
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if backend == "sqlite"
        else create_pg_database(postgres_url_or_skip())
    )
    try:
        upgrade(url, "0010")
        engine = create_engine(url)
        secret = f"https://www.airbnb.com/calendar/ical/99.ics?{TOKEN}"
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO providers (id, tenant_id, kind, name, slug, email, timezone,"
                " dav_username, show_holds_calendar, created_at, updated_at) VALUES ('prv_1',"
                " 'default', 'unit', 'Casa', 'casa', 'c@example.org', 'UTC', 'casa', false,"
                " :now, :now)"), {"now": NOW})  # fmt: skip
            connection.execute(text(
                "INSERT INTO external_sources (id, tenant_id, provider_id, url, kind, platform,"
                " priority, status, consecutive_errors, poll_interval_seconds, next_poll_at,"
                " future_event_count, created_at) VALUES ('src_1', 'default', 'prv_1', :url,"
                " 'ics', 'airbnb', 2, 'ok', 0, 3600, :now, 0, :now)"),
                {"url": secret, "now": NOW})  # fmt: skip
        upgrade(url)
        with engine.connect() as connection:
            shown, sealed, digest = connection.execute(
                text("SELECT url, url_sealed, url_digest FROM external_sources")
            ).one()
        engine.dispose()
        assert shown == "https://www.airbnb.com/calendar/ical/…" and digest
        assert unseal(key.encode(), bytes(sealed), purpose=URL_PURPOSE) == secret
    finally:
        if backend == "postgresql":
            drop_pg_database(url)
