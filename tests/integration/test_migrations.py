"""Migrations are the only way the schema is made: up, down, up again, and no drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from core.db.engine import make_engine
from core.db.migrate import check, downgrade, upgrade
from core.db.models import Base
from tests.conftest import create_pg_database, drop_pg_database, postgres_url_or_skip


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    url = create_pg_database(postgres_url_or_skip())
    yield url
    drop_pg_database(url)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_leaves_the_models_schema(empty_url: str) -> None:
    expected = set(Base.metadata.tables)
    upgrade(empty_url)
    assert _tables(empty_url) == expected
    check(empty_url)  # raises when models and migrations drift apart
    downgrade(empty_url)
    assert _tables(empty_url) == set()
    upgrade(empty_url)
    assert _tables(empty_url) == expected
    check(empty_url)


def test_every_table_carries_tenant_id() -> None:
    missing = [
        name
        for name, table in Base.metadata.tables.items()
        if name != "tenants" and "tenant_id" not in table.columns
    ]
    assert missing == []


def test_timestamps_come_back_aware(runtime) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta, timezone

    from core.db.models import Job

    local = datetime(2027, 3, 28, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    with runtime.sessions.begin() as session:
        session.add(Job(kind="k", payload={}, run_at=local, created_at=local))
    with runtime.sessions() as session:
        job = session.query(Job).one()
    assert job.run_at == local
    assert job.run_at.tzinfo is not None and job.run_at.utcoffset() == timedelta(0)
    assert job.run_at == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
