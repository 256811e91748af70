"""The CPU cost of one inbound answer, processed in process without SMTP (not a test).

Run ``python bench/negotiation_inprocess.py [--answers N] [--profile]``: creates its own
PostgreSQL database (``--sqlite`` for the embedded default), books N sessions through the
JSON API, stores one REPLY DECLINED per booking the way the SMTP listener stores it,
then settles them one after another on one thread, as ``inbound.process`` does. Prints
milliseconds of wall and CPU time per answer (each one: parse, match, cancel, and the
two CANCEL messages composed into the outbox).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.negotiation_loop import ALL_DAY, _calendar_fields, _parsed_calendar_fields
from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import DEFAULT_TENANT, Booking, Invitation, OutboundMessage, Tenant
from core.logging import configure_logging
from core.runtime import Runtime
from core.services.bookings import actor_of
from core.services.inbound import store_raw
from core.services.mail_in import AuthPolicy, ProcessingContext, process_one
from core.settings import Secrets, Settings
from parley.handlers import MAIL_READER
from tests.integration.api.helpers import Clock, client_for
from tests.integration.negotiation import mails
from tests.pg import create_database, drop_database

ADMIN = "bench-admin-token-0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Place:
    """Where the bookings are made: a tenant's id and slug (None: default)."""

    tenant_id: str
    slug: str | None


def place_of(runtime: Runtime, slug: str | None) -> Place:
    if slug is None:
        return Place(DEFAULT_TENANT, None)
    with runtime.sessions() as session:
        return Place(session.scalars(select(Tenant.id).where(Tenant.slug == slug)).one(), slug)


def book(runtime: Runtime, count: int, place: Place, slug: str = "ada") -> list[str]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    if place.slug is not None:
        headers["X-Parley-Tenant"] = place.slug
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    client = client_for(runtime, Clock(now))
    created = client.post(
        "/api/v1/providers",
        json={"name": "Ada Host", "email": "ada@host.example", "timezone": "UTC", "slug": slug},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    provider_id = created.json()["id"]
    client.put(f"/api/v1/providers/{provider_id}/availability", json=ALL_DAY, headers=headers)
    ids = []
    for index in range(count):
        start = now + timedelta(days=1, minutes=30 * index)
        body = {
            "provider_id": provider_id, "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "guest_email": f"guest{index}@guests.example", "guest_name": f"Guest {index}",
        }  # fmt: skip
        hold = client.post("/api/v1/holds", json=body, headers=headers)
        assert hold.status_code == 201, hold.text
        done = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm", headers=headers)
        ids.append(done.json()["booking"]["id"])
    return ids


def answers(runtime: Runtime, booking_ids: list[str]) -> list[bytes]:
    """A DECLINED from each booking's guest, to the organizer address of the invitation
    the guest was sent (plus-addressed, in the booking's tenant)."""
    out = []
    with runtime.sessions() as session:
        for booking_id in booking_ids:
            booking = session.get(Booking, booking_id)
            assert booking is not None
            guest = session.scalar(
                select(Invitation).where(
                    Invitation.booking_id == booking_id, Invitation.role == "guest"
                )
            )
            assert guest is not None
            request = session.scalars(
                select(OutboundMessage.mime).where(
                    OutboundMessage.booking_id == booking_id,
                    OutboundMessage.method == "REQUEST",
                    OutboundMessage.attendee == guest.address,
                )
            ).first()
            assert request is not None
            fields = _calendar_fields(request) or _parsed_calendar_fields(request)
            to = fields["ORGANIZER"].rpartition("mailto:")[2]
            out.append(
                mails.apple(
                    uid=booking.uid, sequence=0, attendee=guest.address, to=to, partstat="DECLINED"
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class SettleRun:
    """Seconds of wall and CPU time for ``count`` declines, and the statements they sent."""

    count: int
    wall: float
    cpu: float
    statements: int
    last: list[str]

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.count * 1000

    def line(self) -> str:
        return (
            f"{self.count} declines settled on one thread: {self.wall / self.count * 1000:.2f} ms "
            f"wall, {self.cpu_ms:.2f} ms CPU each ({self.count / self.wall:.0f}/s), "
            f"{self.statements / self.count:.1f} SQL statements each"
        )


def runtime_for(url: str, workdir: Path) -> Runtime:
    settings = Settings(
        data_dir=workdir / "data", secret_key="bench-secret-key-0123456789abcdef",
        admin_token=ADMIN, smtp_port=0, database_url=url, public_rate_limit_per_minute=0,
    )  # fmt: skip
    engine = make_engine(url)
    return Runtime(
        settings=settings, engine=engine, sessions=make_sessionmaker(engine),
        secrets=Secrets(settings.secret_key.encode(), ADMIN, False),
    )  # fmt: skip


def measure(
    url: str,
    count: int,
    tenant_slug: str | None = None,
    profile: cProfile.Profile | None = None,
    provider_slug: str = "ada",
) -> SettleRun:
    """Books ``count`` sessions in the tenant (None: default) on the migrated database
    ``url``, stores a DECLINE for each and settles them one by one; 20 are warm-ups."""
    runtime = runtime_for(url, Path(tempfile.mkdtemp(prefix="parley-bench-")))
    try:
        place = place_of(runtime, tenant_slug)
        raws = answers(runtime, book(runtime, count, place, provider_slug))
        runtime.clock = lambda: datetime.now(UTC)
        stored = [
            store_raw(
                runtime.sessions,
                raw,
                channel="smtp",
                now=runtime.clock(),
                tenant_id=place.tenant_id,
            ).id
            for raw in raws
        ]
        context = ProcessingContext(
            runtime.sessions,
            runtime.settings,
            AuthPolicy(),
            runtime.clock,
            actor_of(runtime, "mailbox"),
            reader=MAIL_READER,
        )
        warm, timed = stored[:20], stored[20:]
        for message_id in warm:
            assert process_one(context, message_id) == "itip"
        with _counting(runtime.engine, sqlite=url.startswith("sqlite")) as last:
            wall, cpu = time.perf_counter(), time.process_time()
            if profile:
                profile.enable()
            for message_id in timed:
                last.clear()
                assert process_one(context, message_id) == "itip"
            if profile:
                profile.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return SettleRun(len(timed), wall, cpu, last.total, list(last))
    finally:
        runtime.close()


class _Statements(list[str]):
    """The statements since the last clear(); ``total`` counts them all."""

    total = 0


@contextmanager
def _counting(engine: Engine, *, sqlite: bool) -> Iterator[_Statements]:
    seen = _Statements()

    def note(sql: object) -> None:
        seen.total += 1
        seen.append(" ".join(str(sql).split())[:110])

    if sqlite:  # what goes through SQLAlchemy (the driver-level statements do not)

        def counted_sa(conn: object, cursor: object, sql: str, *_: object) -> None:
            note(sql)

        event.listen(engine, "before_cursor_execute", counted_sa)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", counted_sa)
        return
    # every statement, SQLAlchemy's and the plain ones, reaches psycopg's cursor
    execute = psycopg.Cursor.execute

    def counted(cursor: Any, query: Any, *rest: Any, **kw: Any) -> Any:
        note(query)
        return execute(cursor, query, *rest, **kw)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument(
        "--profile", choices=["cumulative", "tottime"], help="print the top of a cProfile"
    )
    parser.add_argument("--show-sql", action="store_true", help="the statements of the last one")
    args = parser.parse_args()
    configure_logging("warning", json=True)
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    sqlite = f"sqlite:///{workdir}/parley.db"
    url = sqlite if args.sqlite else create_database(prefix="parley_bench")
    try:
        upgrade(url)
        profile = cProfile.Profile(time.process_time) if args.profile else None
        result = measure(url, args.answers, profile=profile)
        print(result.line())
        if args.show_sql:
            print("\n".join(f"  {sql}" for sql in result.last))
        if profile:
            pstats.Stats(profile).sort_stats(args.profile).print_stats(45)
    finally:
        if not args.sqlite:
            drop_database(url)


if __name__ == "__main__":
    main()
