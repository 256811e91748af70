"""Free-busy reads the busy engine's time exactly: core.services.freebusy keeps its own
cut-down statements for speed, and these checks hold them to busy.busy_rows (what the
slots API reads) on SQLite and PostgreSQL, over every kind and status that counts or
must not count."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Booking, ExternalEvent, Hold, Provider, new_id
from core.runtime import Runtime
from core.services import dav, freebusy
from core.services.busy import busy_rows
from tests.integration.services.helpers import MON, NOW, booking, external, provider, relate

WINDOW = (MON + timedelta(hours=6), MON + timedelta(days=2, hours=6))


def _expected(session: Session, provider_id: str) -> list[freebusy.Period]:
    dialect = session.get_bind().dialect.name

    def text(moment: datetime) -> str:
        return freebusy.utc_text(dialect, moment)

    rows = busy_rows(session, provider_id, *WINDOW, NOW)
    firm = [(text(s), text(e)) for s, e, k, _, lb in rows if not freebusy.tentative(k, lb)]
    maybe = [(text(s), text(e)) for s, e, k, _, lb in rows if freebusy.tentative(k, lb)]
    return freebusy.merged_periods(firm, maybe, text(WINDOW[0]), text(WINDOW[1]))


def _ics(uid: str, start: datetime, extra: str = "") -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:{start:{fmt}}\r\n"
        f"DTEND:{start + timedelta(minutes=45):{fmt}}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _fill(session: Session, provider_id: str, rng: random.Random) -> None:
    """Busy rows of every kind around the window, some that count and some that do not."""
    owner = session.get(Provider, provider_id)
    assert owner is not None
    blocks = next(c for c in dav.ensure_calendars(session, owner, NOW) if c.name == "blocks")
    quiet = dav.create_calendar(session, owner, "quiet", {}, NOW)
    quiet.blocking = False
    named = external(session, provider_id, MON, name="requested")  # a source's name only
    for n in range(120):
        start = MON + timedelta(minutes=15 * rng.randrange(0, 4 * 24 * 3))
        minutes = rng.choice((15, 30, 60, 150))
        kind = n % 6
        if kind == 0:
            row = Booking(
                id=new_id("bkg"), provider_id=provider_id, uid=f"{new_id('u')}@t",
                status=rng.choice(("confirmed", "requested", "cancelled", "declined")),
                start_at=start, end_at=start + timedelta(minutes=minutes),
                host_email="h@example.org", guest_email="g@example.net",
                created_at=NOW, updated_at=NOW,
            )  # fmt: skip
            session.add(row)
        elif kind == 1:
            session.add(Hold(
                id=new_id("hld"), provider_id=provider_id, start_at=start,
                end_at=start + timedelta(minutes=minutes),
                status=rng.choice(("active", "active", "converted", "released")),
                expires_at=NOW + timedelta(minutes=rng.choice((-5, 30))), created_at=NOW,
            ))  # fmt: skip
        elif kind == 2:
            event = ExternalEvent(
                source_id=named, provider_id=provider_id, uid=new_id("e"), start_at=start,
                end_at=start + timedelta(minutes=minutes), content_hash="x",
                first_seen_at=NOW, last_seen_at=NOW,
            )  # fmt: skip
            session.add(event)
            session.flush()
            if rng.random() < 0.3:  # a duplicate merged into another event
                first = session.scalars(select(ExternalEvent.id).limit(1)).one()
                event.merged_into_id = first if first != event.id else None
        else:
            calendar = blocks if kind < 5 else quiet
            extra = "TRANSP:TRANSPARENT\r\n" if rng.random() < 0.2 else ""
            ics = _ics(f"o{n}", start, extra)
            span = dav.ObjectSpan(start, start + timedelta(minutes=45), exact=True)
            dav.put_object(session, calendar, f"o{n}.ics", ics, uid=f"o{n}", span=span, now=NOW)
    session.flush()


def test_free_busy_matches_the_busy_engine(runtime: Runtime) -> None:
    for seed in range(3):
        with runtime.sessions.begin() as session:
            pid = provider(session, f"p{seed}")
            _fill(session, pid, random.Random(seed))
        with runtime.sessions.begin() as session:
            got = freebusy.provider_periods(session, [pid], *WINDOW, NOW)
            want = _expected(session, pid)
        assert got == want
        assert {kind for _, _, kind in got} == {freebusy.BUSY, freebusy.TENTATIVE}
        assert got[0][0] >= "20270308T060000Z" and got[-1][1] <= "20270310T060000Z"


def test_related_units_and_shared_addresses(runtime: Runtime) -> None:
    nine = MON + timedelta(hours=8)
    with runtime.sessions.begin() as session:
        house, flat = provider(session, "house"), provider(session, "flat")
        relate(session, house, flat)
        booking(session, house, nine)
        booking(session, flat, nine + timedelta(hours=3))
    with runtime.sessions.begin() as session:
        assert freebusy.provider_periods(session, [flat], *WINDOW, NOW) == _expected(session, flat)
        assert freebusy.provider_periods(session, [flat], *WINDOW, NOW) == [
            ("20270308T080000Z", "20270308T090000Z", "BUSY"),  # the house's booking
            ("20270308T110000Z", "20270308T120000Z", "BUSY"),
        ]
        (answer,) = freebusy.answer(session, "default", ["MAILTO:House@Example.org"], *WINDOW, NOW)
        assert answer.found and answer.periods == (
            ("20270308T080000Z", "20270308T090000Z", "BUSY"),
        )
