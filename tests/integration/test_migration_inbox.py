"""Migration 0013_fb: a calendar a provider had named "inbox" moves aside for the schedule
inbox, and going back down removes the inboxes with what they held (SQLite migrates with
foreign keys off, so nothing cascades by itself)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.db.engine import make_engine
from core.db.migrate import downgrade, upgrade
from tests.conftest import create_pg_database, drop_pg_database, postgres_url_or_skip

BEFORE = "0012_meeting_types"
NOW = {"n": datetime(2030, 1, 1, tzinfo=UTC)}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    made = create_pg_database(postgres_url_or_skip())
    yield made
    drop_pg_database(made)


def _run(url: str, *statements: str) -> list[list[tuple[object, ...]]]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            results = [conn.execute(text(sql), NOW) for sql in statements]
            return [list(r.all()) if r.returns_rows else [] for r in results]
    finally:
        engine.dispose()


CALENDAR = (
    "INSERT INTO dav_calendars (id, tenant_id, provider_id, name, kind, blocking, props, "
    "revision, created_at) VALUES ('{id}', 'default', 'p1', 'inbox', '{kind}', true, '{{}}', "
    "1, :n)"
)


def test_an_inbox_named_calendar_moves_aside_and_down_removes_inboxes(url: str) -> None:
    upgrade(url, BEFORE)
    _run(
        url,
        "INSERT INTO providers (id, tenant_id, kind, name, slug, email, timezone, dav_username,"
        " show_holds_calendar, created_at, updated_at) VALUES ('p1', 'default', 'person', 'A',"
        " 'a', 'a@example.org', 'UTC', 'a', false, :n, :n)",
        CALENDAR.format(id="c1", kind="custom"),
    )
    upgrade(url)
    (names,) = _run(url, "SELECT id, name, kind FROM dav_calendars")
    assert names == [("c1", "inbox-calendar", "custom")]
    _run(
        url,
        CALENDAR.format(id="c2", kind="inbox"),
        "INSERT INTO dav_objects (tenant_id, calendar_id, href, uid, etag, ics, revision,"
        " recurring, updated_at) VALUES ('default', 'c2', 'r.ics', 'u', 'e', 'x', 1, false, :n)",
        "INSERT INTO dav_changes (tenant_id, calendar_id, revision, href, deleted)"
        " VALUES ('default', 'c2', 1, 'r.ics', false)",
    )
    downgrade(url, BEFORE)
    left = _run(
        url,
        "SELECT id FROM dav_calendars",
        "SELECT count(*) FROM dav_objects",
        "SELECT count(*) FROM dav_changes",
    )
    assert left == [[("c1",)], [(0,)], [(0,)]]
    with pytest.raises(IntegrityError, match=r"ck_dav_calendars_kind|CHECK constraint"):
        _run(url, CALENDAR.format(id="c3", kind="inbox"))
    upgrade(url)
