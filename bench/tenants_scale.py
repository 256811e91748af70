"""The hot paths with 1,000 tenants, 10,000 providers and 1,000,000 bookings (not a test).

Run ``python bench/tenants_scale.py [--tenants T] [--providers P] [--bookings B] [--keep]``:
creates its own PostgreSQL database on 127.0.0.1:5432 and, in one run, measures the
slots, hold and negotiation figures of ``slots_http``, ``holds_pg``,
``negotiation_inprocess`` and ``negotiation_loop`` (their own measuring functions) on the
empty database; seeds T tenants, P providers (weekly rules Mon–Sun) and B bookings with
their two invitations each, in bulk SQL; ANALYZE; measures the same again with the
measured providers inside one of the seeded tenants, and prints both with the ratio.
Then times list pages of 50 bookings with a filter through the HTTP API with an owner
key of that tenant. The database is dropped after unless ``--keep``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import holds_pg
import negotiation_inprocess
import negotiation_loop
import slots_http

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import DEFAULT_TENANT
from core.logging import configure_logging
from core.services.access import SYSTEM
from core.services.tenants import create_key
from tests.pg import create_database, drop_database

MEASURED = 1  # the seeded tenant the second round measures in: scale-1

# Each statement fills one table from generate_series; :now is the seeding moment.
# Provider n belongs to tenant n % T; booking n to provider n % P (so to tenant n % P % T),
# except that the first L (--largest) go to the providers of tenant 0, the largest tenant.
# Each tenant's guests are 50 addresses guest<k>.t<tenant>@guests.example, each with about
# B / T / 50 bookings there; created_at runs over the two years before now, in id order;
# one booking in 20 each is cancelled, declined or requested, the rest confirmed (counted
# by n / T, so within each tenant, not by n, which is one residue mod T there); starts
# spread over a year either side of now on the half hour.
SEED = [
    """
    INSERT INTO tenants (id, name, slug, organizer_email, organizer_name, created_at)
    SELECT 'tnt_scale_' || t, 'Tenant ' || t, 'scale-' || t, 'org' || t || '@scale.example',
           'Organizer ' || t, :now - interval '3 years'
      FROM generate_series(0, :tenants - 1) AS t
    """,
    """
    INSERT INTO providers (id, tenant_id, kind, name, slug, email, timezone, dav_username,
                           show_holds_calendar, created_at, updated_at)
    SELECT 'prv_scale_' || n, 'tnt_scale_' || (n % :tenants), 'person', 'Provider ' || n,
           'p' || n, 'p' || n || '@providers.example', 'Europe/Berlin',
           'p' || n || '.scale-' || (n % :tenants), false,
           :now - interval '3 years', :now - interval '3 years'
      FROM generate_series(0, :providers - 1) AS n
    """,
    """
    INSERT INTO availability_settings (provider_id, tenant_id, lead_time_hours,
           booking_window_days, min_duration_minutes, slot_step_minutes,
           buffer_before_minutes, buffer_after_minutes, instant_book, updated_at)
    SELECT 'prv_scale_' || n, 'tnt_scale_' || (n % :tenants), 24, 60, 30, 30, 0, 0, true, :now
      FROM generate_series(0, :providers - 1) AS n
    """,
    """
    INSERT INTO weekly_rules (id, tenant_id, provider_id, weekday, start_minute, end_minute)
    SELECT 'wr_scale_' || n || '_' || d, 'tnt_scale_' || (n % :tenants), 'prv_scale_' || n,
           d, CASE WHEN d < 5 THEN 540 ELSE 600 END, CASE WHEN d < 5 THEN 1020 ELSE 840 END
      FROM generate_series(0, :providers - 1) AS n, generate_series(0, 6) AS d
    """,
    """
    INSERT INTO bookings (id, tenant_id, provider_id, uid, sequence, status, mode, title,
                          start_at, end_at, host_name, host_email, guest_name, guest_email,
                          guest_timezone, created_at, updated_at)
    SELECT 'bkg_scale_' || n, 'tnt_scale_' || (p % :tenants), 'prv_scale_' || p,
           'scale-' || n || '@bench.example', 0,
           CASE n / :tenants % 20 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'declined'
                WHEN 2 THEN 'requested' ELSE 'confirmed' END,
           CASE n / :tenants % 20 WHEN 1 THEN 'request' WHEN 2 THEN 'request'
                ELSE 'instant' END,
           'Session', s, s + interval '30 minutes', 'Provider ' || p,
           'p' || p || '@providers.example', 'Guest ' || n,
           'guest' || (n / :tenants % 50) || '.t' || (p % :tenants) || '@guests.example',
           'Europe/Berlin', c, c
      FROM generate_series(CAST(0 AS bigint), :bookings - 1) AS n,
           LATERAL (SELECT CASE WHEN n < :largest THEN n % (:providers / :tenants) * :tenants
                                ELSE n % :providers END AS p,
                           date_trunc('hour', CAST(:now AS timestamptz))
                           + ((n * 7919) % 35040 - 17520) * interval '30 minutes' AS s,
                           CAST(:now AS timestamptz)
                           - (:bookings - n) * (interval '730 days' / :bookings) AS c) AS at
    """,
    """
    INSERT INTO invitations (id, tenant_id, booking_id, role, address, name, timezone,
                             plus_tag, partstat, last_method_sent, last_sequence_sent,
                             delivery_state, updated_at)
    SELECT 'inv_scale_' || b.n || r.role, b.tenant_id, b.id, r.role,
           CASE r.role WHEN 'host' THEN b.host_email ELSE b.guest_email END,
           CASE r.role WHEN 'host' THEN b.host_name ELSE b.guest_name END,
           'Europe/Berlin', 's' || left(r.role, 1) || b.n, 'accepted', 'REQUEST', 0, 'sent',
           b.created_at
      FROM (SELECT CAST(substr(id, 11) AS bigint) AS n, * FROM bookings
             WHERE id LIKE 'bkg\\_scale\\_%') AS b,
           (VALUES ('host'), ('guest')) AS r(role)
    """,
]


@dataclass(frozen=True, slots=True)
class Round:
    """The figures of one round: slots median (ms), holds/s, settle CPU (ms), loop figures."""

    slots: slots_http.SlotsRun
    holds: holds_pg.HoldsRun
    settle: negotiation_inprocess.SettleRun
    loop: negotiation_loop.LoopRun | None


def measure_round(
    url: str, args: argparse.Namespace, tenant_id: str, tenant_slug: str | None, n: int = 0
) -> Round:
    """Every figure once, with fresh providers of ``tenant_id`` (their slugs end in ``n``)."""
    now = datetime.now(UTC).replace(microsecond=0)
    data_dir = Path(tempfile.mkdtemp(prefix="parley-scale-"))
    provider = slots_http.seed(url, now, tenant_id, slug=f"bench{n}")
    slots = slots_http.measure(url, data_dir, provider, now)
    print(" ", slots.line("PostgreSQL"), flush=True)
    moment = now.replace(second=0)
    holds = holds_pg.measure(
        url, holds_pg.seed(url, moment, tenant_id, f"hold{n}-"), moment, 1, args.hold_seconds
    )
    print(" ", holds.line(), flush=True)
    settle = negotiation_inprocess.measure(
        url, args.answers, tenant_slug, provider_slug=f"ada-inprocess{n}"
    )
    print(" ", settle.line(), flush=True)
    _outbox_sent(url)
    loop = None
    if args.loop_bookings:
        loop_args = argparse.Namespace(
            kind="reply", bookings=args.loop_bookings, light=40, clients=8, rate=0.0,
            workers=0, sqlite=False, set=[],
        )  # fmt: skip
        loop = negotiation_loop.measure(url, loop_args, tenant_slug, slug=f"ada{n}")
    return Round(slots, holds, settle, loop)


def _outbox_sent(url: str) -> None:
    """Marks the mail the in-process settling composed as sent: no relay ever takes it, and
    the loop's server would otherwise send it during the loop's own measurement."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE outbound_messages SET status = 'sent' WHERE status = 'pending'"))
    engine.dispose()


def seed(url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url)
    values = {
        "now": datetime.now(UTC),
        "tenants": args.tenants,
        "providers": args.providers,
        "bookings": args.bookings,
        "largest": args.largest,
    }
    began = time.monotonic()
    with engine.begin() as conn:
        for statement in SEED:
            conn.execute(text(statement), values)
    seeded = time.monotonic() - began
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
        print(
            f"seeded {args.tenants:,} tenants, {args.providers:,} providers, "
            f"{args.bookings:,} bookings ({2 * args.bookings:,} invitations) in {seeded:.0f} s, "
            f"VACUUM ANALYZE {time.monotonic() - began - seeded:.0f} s; "
            f"database {size.scalar_one()}",
            flush=True,
        )
    engine.dispose()


@dataclass(frozen=True, slots=True)
class ListRun:
    label: str
    samples: list[float]
    rows: float

    def line(self) -> str:
        s = sorted(self.samples)
        return (
            f"  GET /bookings?{self.label}: median {statistics.median(s):.2f} ms, "
            f"p95 {s[min(len(s) - 1, int(len(s) * 0.95))]:.2f} ms, "
            f"{self.rows:.1f} rows per page on average, {len(s)} requests"
        )


def measure_lists(url: str, args: argparse.Namespace, tenant: int) -> list[ListRun]:
    """List pages through the HTTP API with an owner key of seeded tenant ``tenant``."""
    tenant_id = f"tnt_scale_{tenant}"
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        key = create_key(
            session, SYSTEM, tenant_id, role="owner", label="bench", providers=None,
            now=datetime.now(UTC),
        ).key  # fmt: skip
        held = session.scalar(
            text("SELECT count(*) FROM bookings WHERE tenant_id = :t"), {"t": tenant_id}
        )
    engine.dispose()
    print(f"list pages, owner key of tenant scale-{tenant} ({held:,} bookings):", flush=True)
    now = datetime.now(UTC).replace(microsecond=0)
    providers = [f"prv_scale_{n}" for n in range(tenant, args.providers, args.tenants)]
    guests = [f"guest{k}.t{tenant}@guests.example" for k in range(50)]
    window = (
        f"from={(now - timedelta(days=90)).isoformat()}&to={(now + timedelta(days=90)).isoformat()}"
    )
    queries: list[tuple[str, Callable[[int], str]]] = [
        ("limit=50&status=confirmed", lambda i: "limit=50&status=confirmed"),
        (
            "limit=50&status=confirmed&email=<one of the tenant's 50 guests>",
            lambda i: f"limit=50&status=confirmed&email={guests[i % len(guests)]}",
        ),
        (
            "limit=50&email=<an address with no bookings>",
            lambda i: f"limit=50&email=nobody{i}@guests.example",
        ),
        (
            "limit=50&provider_id=<one of the tenant's>&from=-90d&to=+90d",
            lambda i: f"limit=50&provider_id={providers[i % len(providers)]}&{window}",
        ),
    ]
    port = slots_http.free_port()
    server = slots_http.serve(url, Path(tempfile.mkdtemp(prefix="parley-scale-")), port)
    runs = []
    try:
        base = f"http://127.0.0.1:{port}"
        slots_http.wait_up(base)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for label, query in queries:
                samples, rows = [], 0
                for i in range(args.list_requests + 20):
                    began = time.perf_counter()
                    answer = client.get(f"/api/v1/bookings?{query(i)}")
                    elapsed = (time.perf_counter() - began) * 1000
                    answer.raise_for_status()
                    if i >= 20:
                        samples.append(elapsed)
                        rows += len(answer.json()["items"])
                runs.append(ListRun(label, samples, rows / args.list_requests))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return runs


def _figures(one: Round) -> dict[str, float]:
    out = {
        "slots over HTTP, median ms": one.slots.median,
        "holds created/s": one.holds.created_per_second,
        "one decline settled in process, ms CPU": one.settle.cpu_ms,
    }
    if one.loop:
        out["negotiation loop, light load median ms"] = statistics.median(one.loop.light) * 1000
        out["negotiation loop, sustained loops/s"] = one.loop.loops_per_second
        out["negotiation loop, Parley ms CPU per loop"] = one.loop.cpu_per_loop * 1000
    return out


def compare(pairs: list[tuple[Round, Round]]) -> None:
    """Each figure empty and seeded, pair by pair, with the ratio seeded / empty."""
    figures = [(_figures(before), _figures(after)) for before, after in pairs]
    heads = "".join(f" {'empty':>8} {'seeded':>8} {'ratio':>6} |" for _ in pairs)
    print(f"{'figure (pairs of rounds taken together)':<42} |{heads} median ratio")
    for label in figures[0][0]:
        ratios, cells = [], ""
        for before, after in figures:
            ratios.append(after[label] / before[label])
            cells += f" {before[label]:>8.2f} {after[label]:>8.2f} {ratios[-1]:>6.3f} |"
        print(f"{label:<42} |{cells} {statistics.median(ratios):.3f}")


def again_empty(args: argparse.Namespace, n: int) -> Round:
    """A round on a fresh empty database, for a pair taken close together in time."""
    empty = create_database(prefix="parley_scale_empty")
    try:
        upgrade(empty)
        print(f"empty database again (pair {n + 1}):", flush=True)
        return measure_round(empty, args, DEFAULT_TENANT, None, n)
    finally:
        drop_database(empty)


def again_seeded(url: str, args: argparse.Namespace, n: int) -> Round:
    print(f"seeded database again (tenant scale-{MEASURED}, pair {n + 1}):", flush=True)
    return measure_round(url, args, f"tnt_scale_{MEASURED}", f"scale-{MEASURED}", n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument(
        "--largest", type=int, default=100_000,
        help="of the bookings, this many in one tenant (scale-0); the rest spread evenly",
    )  # fmt: skip
    parser.add_argument("--hold-seconds", type=float, default=10.0)
    parser.add_argument("--answers", type=int, default=300, help="declines settled in process")
    parser.add_argument(
        "--loop-bookings", type=int, default=400, help="negotiation_loop's bookings (0: skip it)"
    )
    parser.add_argument("--list-requests", type=int, default=200)
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="pairs of rounds after the first (a fresh empty database, then the seeded one)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL printed)")
    args = parser.parse_args()
    configure_logging("warning")
    url = create_database(prefix="parley_scale")
    print(f"database {url}", flush=True)
    try:
        upgrade(url)
        print("empty database (default tenant):", flush=True)
        before = measure_round(url, args, DEFAULT_TENANT, None)
        seed(url, args)
        print(f"seeded database (tenant scale-{MEASURED}):", flush=True)
        after = measure_round(url, args, f"tnt_scale_{MEASURED}", f"scale-{MEASURED}")
        for tenant in (MEASURED, 0):
            for run in measure_lists(url, args, tenant):
                print(run.line())
        pairs = [(before, after)]
        for n in range(1, args.repeat + 1):
            pairs.append((again_empty(args, n), again_seeded(url, args, n)))
        compare(pairs)
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
