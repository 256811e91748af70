"""Benchmark: importing a long external feed against icalendar's full parse of it.

Generates a deterministic 10,000-event feed (70% timed with TZID, 20% all-day, 10% weekly
series with EXDATEs and one override) over ten years, then times, in one run: icalendar
alone; read_feed; the whole first import through core.services.sync (parse, expand over the
60-day booking window, diff against the stored rows, write, dedup) into a fresh SQLite
database; and an unchanged poll (same body, and a 304).
Run: python -m bench.feed_import
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import icalendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import AvailabilitySettings, ExternalEvent, ExternalSource, Provider, new_id
from core.feeds import FeedResult, read_feed
from core.logging import configure_logging
from core.services.sync import Fetched, FetchRequest, SyncOutcome, SyncPolicy, sync_source

ZONES = ("Europe/Berlin", "America/New_York", "W. Europe Standard Time", "Asia/Tokyo")
FIRST_DAY = date(2018, 1, 1)
YEARS = 10


def generate_feed(events: int = 10_000, seed: int = 20251022) -> bytes:
    """A Google/Outlook-shaped feed; the same bytes for the same arguments."""
    rng = random.Random(seed)
    out = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Parley//bench feed//EN",
        "X-WR-CALNAME:Bench",
        "X-WR-TIMEZONE:Europe/Berlin",
    ]
    for n in range(events):
        day = FIRST_DAY + timedelta(days=rng.randrange(365 * YEARS))
        roll = n % 10
        if roll < 7:
            out += _timed(rng, n, day)
        elif roll < 9:
            out += _all_day(rng, n, day)
        else:
            out += _weekly(rng, n, day)
    out.append("END:VCALENDAR")
    return ("\r\n".join(out) + "\r\n").encode()


def _common(n: int, summary: str) -> list[str]:
    return [
        f"UID:bench-{n:05d}@example.com",
        "DTSTAMP:20251022T120000Z",
        f"SUMMARY:{summary} {n}",
        "DESCRIPTION:Generated event\\nwith an escaped newline\\, and a comma",
        "SEQUENCE:0",
        "STATUS:CONFIRMED",
    ]


def _timed(rng: random.Random, n: int, day: date) -> list[str]:
    zone = ZONES[n % len(ZONES)]
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=rng.randrange(7, 19))
    end = start + timedelta(minutes=rng.choice((30, 60, 90)))
    return [
        "BEGIN:VEVENT",
        f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID={zone}:{end:%Y%m%dT%H%M%S}",
        *_common(n, "Meeting"),
        "END:VEVENT",
    ]


def _all_day(rng: random.Random, n: int, day: date) -> list[str]:
    last = day + timedelta(days=rng.randrange(1, 6))
    return [
        "BEGIN:VEVENT",
        f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
        f"DTEND;VALUE=DATE:{last:%Y%m%d}",
        *_common(n, "Away"),
        "TRANSP:OPAQUE",
        "END:VEVENT",
    ]


def _weekly(rng: random.Random, n: int, day: date) -> list[str]:
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=rng.randrange(8, 18))
    weeks = rng.randrange(8, 60)
    tz = "TZID=Europe/Berlin"
    excluded = [start + timedelta(weeks=w) for w in (2, 5)]
    moved_from = start + timedelta(weeks=3)
    moved_to = moved_from + timedelta(days=1, hours=2)
    return [
        "BEGIN:VEVENT",
        f"DTSTART;{tz}:{start:%Y%m%dT%H%M%S}",
        f"DTEND;{tz}:{start + timedelta(hours=1):%Y%m%dT%H%M%S}",
        f"RRULE:FREQ=WEEKLY;COUNT={weeks}",
        f"EXDATE;{tz}:" + ",".join(f"{x:%Y%m%dT%H%M%S}" for x in excluded),
        *_common(n, "Weekly"),
        "END:VEVENT",
        "BEGIN:VEVENT",
        f"RECURRENCE-ID;{tz}:{moved_from:%Y%m%dT%H%M%S}",
        f"DTSTART;{tz}:{moved_to:%Y%m%dT%H%M%S}",
        f"DTEND;{tz}:{moved_to + timedelta(hours=1):%Y%m%dT%H%M%S}",
        *_common(n, "Weekly (moved)"),
        "END:VEVENT",
    ]


def import_feed(body: bytes, *, now: datetime, days: int = 60) -> FeedResult:
    """The parse half of an import; the lead adds the diff and the DB write after it."""
    return read_feed(
        body,
        window_start=now,
        window_end=now + timedelta(days=days),
        default_zone="Europe/Berlin",
        max_events=50_000,
    )


def _timed_run(label: str, action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    seconds = time.perf_counter() - began
    print(f"{label:<46} {seconds * 1000:9.1f} ms")
    return seconds


def bench_database(folder: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def add_source(sessions: sessionmaker[Session], now: datetime, url: str) -> str:
    """A provider (Berlin, 60-day window) with one ICS source; returns the source id."""
    with sessions.begin() as session:
        slug = new_id("b")[-12:]
        provider = Provider(
            id=new_id("prv"), name="Bench", slug=slug, email=f"{slug}@example.com",
            timezone="Europe/Berlin", dav_username=slug, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(provider)
        session.flush()
        session.add(AvailabilitySettings(provider_id=provider.id, updated_at=now))
        source = ExternalSource(
            id=new_id("src"), provider_id=provider.id, url=url, kind="ics",
            next_poll_at=now, created_at=now,
        )  # fmt: skip
        session.add(source)
        return source.id


def import_into_db(
    sessions: sessionmaker[Session], source_id: str, body: bytes, *, now: datetime
) -> SyncOutcome:
    """One sync attempt whose fetch hands over body at once: Parley's own time only."""

    def fetch(request: FetchRequest) -> Fetched:
        return Fetched(200, body, etag='"bench"')

    policy = SyncPolicy(secret_key=b"bench", rng=random.Random(1))
    return sync_source(sessions, source_id, fetch, now=now, policy=policy)


def unchanged_polls(
    sessions: sessionmaker[Session], source_id: str, body: bytes, now: datetime, rounds: int = 30
) -> tuple[float, float]:
    """Median milliseconds of a same-hash poll and of a 304 poll (both write no event)."""
    policy = SyncPolicy(secret_key=b"bench", rng=random.Random(2))
    same: list[float] = []
    not_modified: list[float] = []
    for n in range(rounds):
        for answer, out in (
            (Fetched(200, body, etag='"bench"'), same),
            (Fetched(304, None), not_modified),
        ):
            began = time.perf_counter()
            result = sync_source(sessions, source_id, lambda _r, a=answer: a,
                                 now=now + timedelta(minutes=n), policy=policy)  # fmt: skip
            out.append((time.perf_counter() - began) * 1000)
            if not result.not_modified:
                raise RuntimeError("an unchanged poll was not recognised as unchanged")
    return statistics.median(same), statistics.median(not_modified)


def main() -> None:
    configure_logging("warning")
    body = generate_feed()
    now = datetime(2023, 3, 1, tzinfo=UTC)
    print(f"feed: {len(body) / 1e6:.2f} MB, 10,000 generated events")
    parse_all = icalendar.Calendar.from_ical
    full = _timed_run("(a) icalendar.Calendar.from_ical", lambda: parse_all(body))
    ours = _timed_run("(b) read_feed, 60-day window", lambda: import_feed(body, now=now))
    result = import_feed(body, now=now)
    print(
        f"events in window: {len(result.events)}, outside: {result.outside_window}, "
        f"skipped: {result.skipped}, vevents: {result.vevents}"
    )
    print(f"ratio (b)/(a): {ours / full:.3f}  (target <= 0.25)")
    with tempfile.TemporaryDirectory() as folder:
        sessions = bench_database(Path(folder))
        source = add_source(sessions, now, "https://bench.example/feed.ics")
        holder: list[SyncOutcome] = []
        whole = _timed_run(
            "(c) import: parse, expand, diff, write (SQLite)",
            lambda: holder.append(import_into_db(sessions, source, body, now=now)),
        )
        with sessions() as session:
            rows = session.scalar(select(func.count()).select_from(ExternalEvent))
        print(f"rows written: {rows} (added {holder[0].added}, status {holder[0].status})")
        print(f"ratio (c)/(a): {whole / full:.3f}  (target <= 0.25)")
        same, not_modified = unchanged_polls(sessions, source, body, now + timedelta(hours=1))
        print(f"(d) unchanged poll, same body hash (median)  {same:9.2f} ms  (target <= 5)")
        print(f"(e) unchanged poll, 304 (median)             {not_modified:9.2f} ms  (target <= 5)")


if __name__ == "__main__":
    main()
