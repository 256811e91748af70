"""Upgrading an existing database keeps its rows, and the tenant keys then guard them.

A database filled at 0005 (before tenants had slugs) is brought to head: nothing is lost
(SQLite's batch rebuild of a parent once emptied its children through ON DELETE CASCADE),
and a child pointing at another tenant's parent is refused by the database itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.db.engine import make_engine
from core.db.migrate import downgrade, upgrade
from core.db.models import (
    AvailabilitySettings,
    Booking,
    Hold,
    InboundMessage,
    Invitation,
    MagicLink,
    Proposal,
    Provider,
    Tenant,
    WeeklyRule,
)
from tests.conftest import create_pg_database, drop_pg_database, postgres_url_or_skip

T0 = datetime(2027, 5, 3, 9, 0, tzinfo=UTC)
TABLES = (Provider, Booking, Invitation, Hold, InboundMessage, Proposal, MagicLink)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    made = create_pg_database(postgres_url_or_skip())
    yield made
    drop_pg_database(made)


def _fill(engine: Engine, tenant: str = "default", suffix: str = "") -> None:
    """One provider with a booking, its invitation, a hold, a COUNTER and its proposal."""
    p, b, r = f"prv_a{suffix}", f"bkg_a{suffix}", f"prp_a{suffix}"
    when: dict[str, Any] = {"start_at": T0, "end_at": T0 + timedelta(hours=1)}
    with engine.begin() as c:
        c.execute(insert(Provider.__table__).values(
            id=p, tenant_id=tenant, kind="person", name="Ann", slug=f"ann{suffix}",
            email="ann@example.org", timezone="UTC", dav_username=f"ann{suffix}",
            show_holds_calendar=False, created_at=T0, updated_at=T0))  # fmt: skip
        c.execute(insert(Booking.__table__).values(
            id=b, tenant_id=tenant, provider_id=p, uid=f"u{suffix}@x", sequence=0,
            status="confirmed", mode="instant", title="S", host_email="ann@example.org",
            guest_email="g@example.net", created_at=T0, updated_at=T0, **when))  # fmt: skip
        c.execute(insert(Invitation.__table__).values(
            id=f"inv_a{suffix}", tenant_id=tenant, booking_id=b, role="guest",
            address="g@example.net", plus_tag=f"t{suffix}", partstat="needs-action",
            delivery_state="sent", updated_at=T0))  # fmt: skip
        c.execute(insert(Hold.__table__).values(
            id=f"hld_a{suffix}", tenant_id=tenant, provider_id=p, expires_at=T0,
            status="converted", purpose="checkout", booking_id=b, created_at=T0,
            **when))  # fmt: skip
        message = c.execute(insert(InboundMessage.__table__).values(
            tenant_id=tenant, message_key=f"<m{suffix}@x>", content_hash="0" * 64, channel="smtp",
            raw=b"x", size=1, received_at=T0, outcome="counter",
        ).returning(InboundMessage.__table__.c.id)).scalar_one()  # fmt: skip
        c.execute(insert(Proposal.__table__).values(
            id=r, tenant_id=tenant, booking_id=b, proposed_by="guest",
            proposer_address="g@example.net", status="pending", via="counter", base_sequence=0,
            inbound_message_id=message, created_at=T0, expires_at=T0, **when))  # fmt: skip
        c.execute(insert(MagicLink.__table__).values(
            id=f"lnk_a{suffix}", tenant_id=tenant, token_hash=f"{suffix}h".ljust(64, "0"),
            purpose="approve", booking_id=b, proposal_id=r, provider_id=p,
            actor_address="ann@example.org", created_at=T0, expires_at=T0))  # fmt: skip


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {m.__tablename__: c.scalar(select(func.count()).select_from(m)) or 0 for m in TABLES}


def test_upgrade_and_downgrade_keep_every_row(url: str) -> None:
    upgrade(url, "0005")
    engine = make_engine(url)
    try:
        _fill(engine)
        expected = {m.__tablename__: 1 for m in TABLES}
        assert _counts(engine) == expected
        upgrade(url)
        assert _counts(engine) == expected
        downgrade(url, "0006")
        assert _counts(engine) == expected
        upgrade(url)
        assert _counts(engine) == expected
    finally:
        engine.dispose()


def test_a_child_of_another_tenants_parent_is_refused(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        _fill(engine)
        with engine.begin() as c:
            c.execute(insert(Tenant.__table__).values(
                id="tnt_b", name="B", slug="b", organizer_email="b@org.example",
                created_at=T0))  # fmt: skip
        _fill(engine, "tnt_b", suffix="b")  # the same shape in tenant B is fine
        crossing = [
            insert(Invitation.__table__).values(
                id="inv_x", tenant_id="tnt_b", booking_id="bkg_a", role="host",
                address="h@example.net", plus_tag="tx", partstat="needs-action",
                delivery_state="sent", updated_at=T0),
            update(Hold.__table__).where(Hold.id == "hld_ab").values(booking_id="bkg_a"),
            update(Proposal.__table__).where(Proposal.id == "prp_ab").values(
                inbound_message_id=select(InboundMessage.id)
                .where(InboundMessage.tenant_id == "default").scalar_subquery()),
            update(Booking.__table__).where(Booking.id == "bkg_ab").values(provider_id="prv_a"),
        ]  # fmt: skip
        for statement in crossing:
            with pytest.raises(IntegrityError), engine.begin() as c:
                c.execute(statement)
        # Same keys in two tenants are two rows, not a clash.
        with engine.begin() as c:
            c.execute(update(Booking.__table__).where(Booking.id == "bkg_ab").values(uid="u@x"))
            c.execute(update(InboundMessage.__table__).values(message_key="<same@x>"))
        # Deleting a tenant takes its rows (NO ACTION on holds.booking_id and
        # proposals.inbound_message_id holds: their rows go in the same statement).
        with engine.begin() as c:
            c.execute(delete(Tenant.__table__).where(Tenant.id == "tnt_b"))
        assert _counts(engine) == {m.__tablename__: 1 for m in TABLES}
    finally:
        engine.dispose()


def test_rows_written_in_the_wrong_tenant_move_to_their_parents(url: str) -> None:
    # Before 0007 a second tenant's provider got its settings and rules in "default".
    upgrade(url, "0006")
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            c.execute(insert(Tenant.__table__).values(
                id="tnt_b", name="B", slug="b", organizer_email="b@org.example",
                created_at=T0))  # fmt: skip
        _fill(engine, "tnt_b", suffix="b")
        with engine.begin() as c:
            c.execute(insert(AvailabilitySettings.__table__).values(
                provider_id="prv_ab", tenant_id="default", lead_time_hours=0,
                booking_window_days=30, min_duration_minutes=30, slot_step_minutes=30,
                buffer_before_minutes=0, buffer_after_minutes=0, instant_book=True,
                updated_at=T0))  # fmt: skip
            c.execute(insert(WeeklyRule.__table__).values(
                id="wkr_b", tenant_id="default", provider_id="prv_ab", weekday=0,
                start_minute=480, end_minute=1020))  # fmt: skip
            c.execute(update(Invitation.__table__).values(tenant_id="default"))
        upgrade(url)
        with engine.connect() as c:
            for model in (AvailabilitySettings, WeeklyRule, Invitation, Booking, Hold):
                tenants = set(c.scalars(select(model.__table__.c.tenant_id)))
                assert tenants == {"tnt_b"}, model.__tablename__
    finally:
        engine.dispose()
