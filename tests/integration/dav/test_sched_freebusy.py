"""CalDAV scheduling as a provider's calendar app sees it (RFC 6638 §2, §6.1; RFC 4791 §7.10),
over a real server: the principal points at its inbox and outbox and names its address;
a free-busy request POSTed to the outbox shows another provider of the tenant busy where
its bookings, holds, imported calendar and blocks are — and nothing else about them —
while a provider of another tenant, or an unknown address, is an invalid calendar user;
the free-busy-query REPORT answers on each calendar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import caldav
import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from core.db.models import DavCalendar
from core.runtime import Runtime
from core.services import dav
from core.services.dav import ensure_inbox
from tests.conftest import ADMIN_TOKEN
from tests.integration.api.helpers import Clock
from tests.integration.dav.conftest import calendar_named, event_ics
from tests.integration.dav.sched_helpers import (
    NS,
    book,
    c,
    d,
    dav_client,
    found,
    hrefs,
    make_provider,
    propfind,
)
from tests.integration.sync.conftest import FeedServer, serving

NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1
WED = "2030-03-06"
DAY = (datetime(2030, 3, 6, tzinfo=UTC), datetime(2030, 3, 7, tzinfo=UTC))
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\nBEGIN:VEVENT\r\n"
    "UID:dentist@other\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300306T130000Z\r\n"
    "DTEND:20300306T140000Z\r\nSUMMARY:Root canal (private)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def api(runtime: Runtime, dav_base: str) -> Iterator[httpx.Client]:
    runtime.clock = Clock(NOW)
    with httpx.Client(base_url=dav_base, headers=ADMIN, timeout=30) as client:
        made = client.post(
            "/api/v1/tenants",
            json={"name": "Acme", "slug": "acme", "organizer_email": "cal@acme.example"},
        )
        assert made.status_code == 201, made.text
        yield client


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with serving(FeedServer()) as state:
        yield state


@pytest.fixture
def dana(api: httpx.Client) -> dict[str, Any]:
    return make_provider(api, "dana")


@pytest.fixture
def erik(api: httpx.Client, dav_base: str, feeds: FeedServer) -> dict[str, Any]:
    """A second provider of the tenant, busy on Wednesday: a booking 10–11 UTC, a hold
    15–15:30, an imported dentist 13–14 and a block saved from his calendar app 16–17."""
    erik = make_provider(api, "erik")
    book(api, erik["id"], f"{WED}T10:00:00Z", f"{WED}T11:00:00Z")
    book(api, erik["id"], f"{WED}T15:00:00Z", f"{WED}T15:30:00Z", confirm=False)
    source = api.post(
        f"/api/v1/providers/{erik['id']}/sources",
        json={"url": feeds.put("/erik.ics", FEED), "name": "Private practice"},
    )
    assert source.status_code == 201, source.text
    synced = api.post(f"/api/v1/sources/{source.json()['id']}/sync")
    assert synced.status_code == 200, synced.text
    with caldav.DAVClient(
        url=f"{dav_base}/dav/", username=erik["username"], password=erik["password"]
    ) as app:
        calendar_named(app, "blocks").save_event(
            event_ics("gym", datetime(2030, 3, 6, 16, tzinfo=UTC))
        )
    return erik


def _request(organizer: str, *attendees: str, start: str = "20300306T000000Z",
             end: str = "20300307T000000Z") -> str:  # fmt: skip
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "METHOD:REQUEST",
             "BEGIN:VFREEBUSY", "UID:fb-1@test", "DTSTAMP:20300304T080000Z",
             f"DTSTART:{start}", f"DTEND:{end}", f"ORGANIZER:{organizer}"]  # fmt: skip
    lines += [f"ATTENDEE:{a}" for a in attendees]
    lines += ["END:VFREEBUSY", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def _post(client: httpx.Client, user: str, body: str) -> httpx.Response:
    return client.post(f"/{user}/outbox/", content=body, headers={"Content-Type": "text/calendar"})


def _answers(answer: httpx.Response) -> dict[str, tuple[str, str]]:
    """recipient → (request-status, calendar-data) of a schedule-response."""
    from xml.etree import ElementTree as ET

    root = ET.fromstring(answer.content)
    assert root.tag == c("schedule-response"), answer.text
    out = {}
    for item in root.findall(c("response")):
        recipient = item.find(c("recipient"))
        assert recipient is not None
        out[hrefs(recipient)[0]] = (
            item.findtext(c("request-status")) or "",
            item.findtext(c("calendar-data")) or "",
        )
    return out


def _busy(text: str) -> list[tuple[str, str, str]]:
    """(start, end, FBTYPE) of every FREEBUSY period in a VFREEBUSY text."""
    spans = []
    for component in Calendar.from_ical(text).walk("VFREEBUSY"):
        found = component.get("FREEBUSY", [])
        for prop in found if isinstance(found, list) else [found]:
            fbtype = str(prop.params.get("FBTYPE", "BUSY"))
            for first, last in prop.dt if isinstance(prop.dt, list) else [prop.dt]:
                end = last if isinstance(last, datetime) else first + last
                spans.append((f"{first:%H:%M}", f"{end:%H:%M}", fbtype))
    return sorted(spans)


# --- principal properties ------------------------------------------------------------------------


def test_principal_points_at_inbox_outbox_and_address(
    runtime: Runtime, api: httpx.Client, dav_base: str, dana: dict[str, Any]
) -> None:
    user = dana["username"]
    with caldav.DAVClient(url=f"{dav_base}/dav/", username=user, password=dana["password"]) as app:
        principal = app.principal()
        assert principal.calendar_user_address_set()[0] == "mailto:dana@example.org"
        me = principal.get_vcal_address()
        assert str(me) == "mailto:dana@example.org" and me.params["cutype"] == "INDIVIDUAL"
        assert str(principal.schedule_inbox().url).endswith(f"/dav/{user}/inbox/")
        assert str(principal.schedule_outbox().url).endswith(f"/dav/{user}/outbox/")
        names = {str(cal.url).rstrip("/").rsplit("/", 1)[-1] for cal in principal.calendars()}
        assert "inbox" not in names and "outbox" not in names and "blocks" in names
        gym = principal.make_calendar(name="Gym", cal_id="gym")
        assert gym is not None

    off = api.patch(f"/api/v1/providers/{dana['id']}/calendars/gym", json={"blocking": False})
    assert off.status_code == 200, off.text
    with dav_client(dav_base, dana) as dav:
        asked = propfind(
            dav, f"/{user}/", "C:schedule-inbox-URL", "C:schedule-outbox-URL",
            "C:calendar-user-address-set", "C:calendar-user-type",
        )  # fmt: skip
        assert asked.status_code == 207, asked.text
        props = found(asked, f"/dav/{user}/")
        assert hrefs(props[c("schedule-inbox-URL")]) == [f"/dav/{user}/inbox/"]
        assert hrefs(props[c("schedule-outbox-URL")]) == [f"/dav/{user}/outbox/"]
        assert hrefs(props[c("calendar-user-address-set")]) == [
            "mailto:dana@example.org",
            f"/dav/{user}/",
        ]
        assert props[c("calendar-user-type")].text == "INDIVIDUAL"

        for _ in range(2):  # made on first use, once
            inbox = propfind(
                dav, f"/{user}/inbox/", "D:resourcetype", "C:schedule-default-calendar-URL"
            )
            assert inbox.status_code == 207, inbox.text
        props = found(inbox, f"/dav/{user}/inbox/")
        kinds = {child.tag for child in props[d("resourcetype")]}
        assert kinds == {d("collection"), c("schedule-inbox")}
        assert hrefs(props[c("schedule-default-calendar-URL")]) == [f"/dav/{user}/blocks/"]
        with runtime.sessions() as session:
            count = select(func.count()).where(DavCalendar.kind == "inbox")
            assert session.scalar(count) == 1

        outbox = propfind(dav, f"/{user}/outbox/", "D:resourcetype")
        assert outbox.status_code == 207, outbox.text
        kinds = {child.tag for child in found(outbox, f"/dav/{user}/outbox/")[d("resourcetype")]}
        assert kinds == {d("collection"), c("schedule-outbox")}

        listing = propfind(dav, f"/{user}/", "C:schedule-calendar-transp", depth="1")
        transp = {
            name: [child.tag for child in found(listing, f"/dav/{user}/{name}/")[
                c("schedule-calendar-transp")]]
            for name in ("bookings", "blocks", "gym")
        }  # fmt: skip
        assert transp == {
            "bookings": [c("opaque")],
            "blocks": [c("opaque")],
            "gym": [c("transparent")],
        }

        # A calendar app marks a calendar opaque again: its events are busy time once more.
        body = (
            f'<?xml version="1.0"?><D:propertyupdate {NS}><D:set><D:prop>'
            "<C:schedule-calendar-transp><C:opaque/></C:schedule-calendar-transp>"
            "</D:prop></D:set></D:propertyupdate>"
        )
        patched = dav.request("PROPPATCH", f"/{user}/gym/", content=body)
        assert patched.status_code == 207 and "schedule-calendar-transp" in patched.text
        assert "200 OK" in patched.text and "blocking" not in patched.text
        again = propfind(dav, f"/{user}/gym/", "C:schedule-calendar-transp")
        value = found(again, f"/dav/{user}/gym/")[c("schedule-calendar-transp")]
        assert [child.tag for child in value] == [c("opaque")]
        with runtime.sessions() as session:
            row = session.scalars(select(DavCalendar).where(DavCalendar.name == "gym")).one()
            assert row.blocking is True

        # The inbox is Parley's to fill, and its name is taken.
        put = dav.put(f"/{user}/inbox/x.ics", content=event_ics("x", DAY[0]),
                      headers={"Content-Type": "text/calendar"})  # fmt: skip
        assert put.status_code in (400, 403), put.text
        made = dav.request("MKCALENDAR", f"/{user}/outbox/")
        assert made.status_code >= 400, made.text


def test_the_inbox_holds_what_parley_delivers(
    runtime: Runtime, dav_base: str, dana: dict[str, Any]
) -> None:
    """As lane itip's delivery will: ensure_inbox, then an object stored in it. The calendar
    app reads and deletes it; the inbox itself stays, and its objects are no busy time."""
    user = dana["username"]
    with runtime.sessions.begin() as session:
        owner = dav.provider_by_dav_username(session, user)
        assert owner is not None
        inbox = ensure_inbox(session, owner, NOW)
        assert ensure_inbox(session, owner, NOW).id == inbox.id
        ics = event_ics("reply-1", datetime(2030, 3, 6, 9, tzinfo=UTC))
        span = dav.ObjectSpan(
            datetime(2030, 3, 6, 9, tzinfo=UTC), datetime(2030, 3, 6, 10, tzinfo=UTC), exact=True
        )
        dav.put_object(session, inbox, "reply-1.ics", ics, uid="reply-1", span=span, now=NOW)
    with dav_client(dav_base, dana) as client:
        listing = propfind(client, f"/{user}/inbox/", "D:getetag", depth="1")
        assert f"/dav/{user}/inbox/reply-1.ics" in listing.text
        assert client.get(f"/{user}/inbox/reply-1.ics").text.count("UID:reply-1") == 1
        me = "mailto:dana@example.org"
        (status, data) = _answers(_post(client, user, _request(me, me)))[me]
        assert status.startswith("2.0") and _busy(data) == []
        assert client.delete(f"/{user}/inbox/reply-1.ics").status_code in (200, 204)
        assert client.delete(f"/{user}/inbox/").status_code >= 400
        assert propfind(client, f"/{user}/inbox/", "D:resourcetype").status_code == 207
        assert "reply-1" not in propfind(client, f"/{user}/inbox/", "D:getetag", depth="1").text


def test_a_unit_is_a_room_and_paths_of_others_stay_closed(
    api: httpx.Client, dav_base: str, dana: dict[str, Any]
) -> None:
    flat = make_provider(api, "flat", kind="unit")
    with dav_client(dav_base, flat) as dav:
        props = found(propfind(dav, f"/{flat['username']}/", "C:calendar-user-type"),
                      f"/dav/{flat['username']}/")  # fmt: skip
        assert props[c("calendar-user-type")].text == "ROOM"
        other = propfind(dav, f"/{dana['username']}/inbox/", "D:resourcetype")
        assert other.status_code in (403, 404), other.text
        posted = _post(dav, dana["username"], _request("mailto:dana@example.org", "mailto:x@y"))
        assert posted.status_code == 403, posted.text


# --- free-busy through the outbox -----------------------------------------------------------------


def test_free_busy_of_a_colleague_from_the_busy_engine(
    api: httpx.Client, dav_base: str, dana: dict[str, Any], erik: dict[str, Any]
) -> None:
    olga = make_provider(api, "olga", tenant="acme")
    with dav_client(dav_base, dana) as dav:
        answer = _post(
            dav,
            dana["username"],
            _request(
                "mailto:dana@example.org",
                "mailto:Erik@Example.org",
                "mailto:olga@example.org",
                "mailto:nobody@example.org",
            ),
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    got = _answers(answer)
    status, data = got["mailto:Erik@Example.org"]
    assert status.startswith("2.0"), got
    assert _busy(data) == [
        ("10:00", "11:00", "BUSY"),  # the booking
        ("13:00", "14:00", "BUSY"),  # the imported dentist
        ("15:00", "15:30", "BUSY-TENTATIVE"),  # a guest's hold
        ("16:00", "17:00", "BUSY"),  # the block saved in his calendar app
    ]
    reply = Calendar.from_ical(data)
    assert str(reply["METHOD"]) == "REPLY"
    vfb = next(iter(reply.walk("VFREEBUSY")))
    assert str(vfb["UID"]) == "fb-1@test" and str(vfb["ATTENDEE"]) == "mailto:Erik@Example.org"
    assert str(vfb["ORGANIZER"]) == "mailto:dana@example.org"
    for secret in ("Root canal", "Private practice", "grace", "Grace", "SUMMARY", "Dentist"):
        assert secret not in answer.text, secret
    # Another tenant's provider and an unknown address: invalid calendar users.
    assert got["mailto:olga@example.org"] == ("3.7;Invalid calendar user", "")
    assert got["mailto:nobody@example.org"][0].startswith("3.7")

    # From the other tenant, Erik is unknown and Olga herself is found (and free).
    with dav_client(dav_base, olga) as dav:
        theirs = _answers(
            _post(dav, olga["username"], _request("mailto:olga@example.org",
                                                   "mailto:erik@example.org",
                                                   "mailto:olga@example.org"))
        )  # fmt: skip
    assert theirs["mailto:erik@example.org"][0].startswith("3.7")
    assert theirs["mailto:olga@example.org"][0].startswith("2.0")
    assert _busy(theirs["mailto:olga@example.org"][1]) == []


def test_free_busy_through_the_caldav_client(
    dav_base: str, dana: dict[str, Any], erik: dict[str, Any]
) -> None:
    with caldav.DAVClient(
        url=f"{dav_base}/dav/", username=dana["username"], password=dana["password"]
    ) as app:
        answers = app.principal().freebusy_request(
            DAY[0], DAY[1], ["mailto:erik@example.org", "mailto:olga@example.org"]
        )
    assert "mailto:olga@example.org" in answers["errors"]
    busy = answers["mailto:erik@example.org"].icalendar_component
    periods = busy.get("FREEBUSY")
    assert periods, busy.to_ical()
    assert b"10:00" not in busy.to_ical() and b"T100000Z/" in busy.to_ical()


def test_refused_free_busy_requests(dav_base: str, dana: dict[str, Any]) -> None:
    user = dana["username"]
    with dav_client(dav_base, dana) as dav:
        other = _post(dav, user, _request("mailto:erik@example.org", "mailto:dana@example.org"))
        assert other.status_code == 403 and "organizer-allowed" in other.text
        none = _post(dav, user, _request("mailto:dana@example.org"))
        assert none.status_code == 403 and "recipient-specified" in none.text
        broken = _post(dav, user, "this is not iCalendar")
        assert broken.status_code == 400 and "valid-calendar-data" in broken.text
        event = _post(dav, user, event_ics("e", DAY[0]).replace("VERSION:2.0", "METHOD:REQUEST"))
        assert event.status_code == 403 and "valid-scheduling-message" in event.text
        me = "mailto:dana@example.org"
        long = _post(dav, user, _request(me, me, start="20300101T000000Z", end="20400101T000000Z"))
        assert long.status_code == 403 and "1100 days" in long.text
        backwards = _post(dav, user, _request(me, me, start="20300308T000000Z"))
        assert backwards.status_code == 400, backwards.text
        elsewhere = _post(dav, user.replace("dana", "erik"), _request("mailto:x@y", "mailto:x@y"))
        assert elsewhere.status_code == 403


# --- free-busy-query REPORT -----------------------------------------------------------------------


def test_free_busy_query_on_each_calendar(
    dav_base: str, erik: dict[str, Any], api: httpx.Client
) -> None:
    with caldav.DAVClient(
        url=f"{dav_base}/dav/", username=erik["username"], password=erik["password"]
    ) as app:
        bookings = calendar_named(app, "bookings").freebusy_request(*DAY)
        blocks = calendar_named(app, "blocks").freebusy_request(*DAY)
    assert _busy(bookings.data) == [("10:00", "11:00", "BUSY")]
    assert "Grace" not in bookings.data and "SUMMARY" not in bookings.data
    assert _busy(blocks.data) == [("16:00", "17:00", "BUSY")]

    shown = api.put(f"/api/v1/providers/{erik['id']}/holds-calendar", json={"enabled": True})
    assert shown.status_code == 200, shown.text
    body = (
        f'<?xml version="1.0"?><C:free-busy-query {NS}>'
        '<C:time-range start="20300306T000000Z" end="20300307T000000Z"/></C:free-busy-query>'
    )
    with dav_client(dav_base, erik) as dav:
        holds = dav.request(
            "REPORT", f"/{erik['username']}/holds/", content=body,
            headers={"Depth": "1", "Content-Type": "application/xml"},
        )  # fmt: skip
        assert holds.status_code == 200, holds.text
        assert holds.headers["content-type"].startswith("text/calendar")
        assert _busy(holds.text) == [("15:00", "15:30", "BUSY-TENTATIVE")]
        no_start = dav.request(
            "REPORT", f"/{erik['username']}/bookings/",
            content=body.replace('start="20300306T000000Z" ', ""),
            headers={"Depth": "1", "Content-Type": "application/xml"},
        )  # fmt: skip
        assert no_start.status_code == 400, no_start.text
