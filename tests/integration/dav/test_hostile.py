"""Hostile CalDAV input over real HTTP: throttling per client address, expansion caps,
oversized bodies. Each answer must come fast, and nothing locks the provider out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from caldav_bridge import auth as dav_auth
from core.runtime import Runtime
from core.services import app_passwords
from tests.integration.dav.conftest import add_provider, dav_base  # noqa: F401

ATTACKER, OTHER = "127.0.0.2", "127.0.0.3"


def _client(address: str, auth: tuple[str, str]) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), auth=auth, timeout=30)


def _propfind(address: str, url: str, auth: tuple[str, str]) -> tuple[int, float]:
    with _client(address, auth) as client:
        started = time.monotonic()
        status = client.request("PROPFIND", url, headers={"Depth": "0"}).status_code
        return status, time.monotonic() - started


def test_wrong_passwords_never_lock_out_the_right_one(
    runtime: Runtime,
    dav_base: str,  # noqa: F811
) -> None:
    alice = add_provider(runtime, "alice")
    url = f"{dav_base}/dav/alice/"
    wrong = (alice.username, "wrong-password")
    right = (alice.username, alice.password)
    attempts = app_passwords.FAILURE_LIMIT + 2
    with ThreadPoolExecutor(attempts) as pool:
        answers = list(pool.map(lambda _: _propfind(ATTACKER, url, wrong), range(attempts)))
    assert [status for status, _ in answers] == [401] * attempts
    # The right password works from the attacking address and from any other.
    assert _propfind(ATTACKER, url, right)[0] == 207
    assert _propfind(OTHER, url, right)[0] == 207
    with runtime.sessions.begin() as session:
        assert app_passwords.is_throttled(session, ATTACKER, runtime.clock())
        assert not app_passwords.is_throttled(session, OTHER, runtime.clock())
    # The attacking address is slowed; another address failing once is not.
    # (Radicale makes every failure last as long as the slowest so far; the throttle's wait
    # comes on top, for the throttled address only.)
    status, slowed = _propfind(ATTACKER, url, wrong)
    assert status == 401 and slowed >= dav_auth.THROTTLED_DELAY_SECONDS
    status, normal = _propfind(OTHER, url, wrong)
    assert status == 401 and normal < slowed - dav_auth.THROTTLED_DELAY_SECONDS / 2


# --- recurrence expansion ----------------------------------------------------------------------

SECONDLY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    "UID:every-second@test\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300201T000000Z\r\n"
    "DTEND:20300201T000001Z\r\nRRULE:FREQ=SECONDLY\r\nSUMMARY:Tick\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)
DAILY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    "UID:daily@test\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300101T100000Z\r\n"
    "DTEND:20300101T110000Z\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)
_NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'


def _query(start: str, end: str, *, expand: bool) -> str:
    data = f'<C:expand start="{start}" end="{end}"/>' if expand else ""
    return (
        f'<?xml version="1.0"?><C:calendar-query {_NS}><D:prop><D:getetag/>'
        f"<C:calendar-data>{data}</C:calendar-data></D:prop><C:filter>"
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


@pytest.fixture
def hostile(runtime: Runtime, dav_base: str) -> Iterator[httpx.Client]:  # noqa: F811
    alice = add_provider(runtime, "alice")
    with httpx.Client(
        base_url=f"{dav_base}/dav", auth=(alice.username, alice.password), timeout=60
    ) as client:
        assert client.request("MKCALENDAR", "/alice/work/").status_code == 201
        assert client.put("/alice/work/tick.ics", content=SECONDLY).status_code == 201
        assert client.put("/alice/work/daily.ics", content=DAILY).status_code == 201
        yield client


def _report(client: httpx.Client, body: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = client.request(
        "REPORT",
        "/alice/work/",
        content=body,
        headers={"Depth": "1", "Content-Type": "application/xml"},
    )
    return answer, time.monotonic() - started


def test_expand_to_9999_is_refused_at_once(hostile: httpx.Client) -> None:
    answer, took = _report(hostile, _query("20300301T000000Z", "99991231T000000Z", expand=True))
    assert answer.status_code == 403, answer.text
    assert "max-instances" in answer.text and "1100 days" in answer.text
    assert took < 1.0


def test_one_day_expand_answers_quickly(hostile: httpx.Client) -> None:
    answer, took = _report(hostile, _query("20300304T000000Z", "20300305T000000Z", expand=True))
    assert answer.status_code == 207, answer.text
    # The daily event is expanded to its one instance that day; the every-second one is too
    # many to expand and comes as stored (master with its rule), so the app still syncs.
    assert "RECURRENCE-ID:20300304T100000Z" in answer.text
    assert "tick.ics" in answer.text and "FREQ=SECONDLY" in answer.text
    assert "FREQ=DAILY" not in answer.text
    assert took < 5.0


def test_long_expand_within_the_window_is_bounded(hostile: httpx.Client) -> None:
    answer, took = _report(hostile, _query("20300101T000000Z", "20321201T000000Z", expand=True))
    assert answer.status_code == 207, answer.text
    assert answer.text.count("RECURRENCE-ID") > 1000  # the daily event, ~3 years of it
    assert took < 10.0


def test_plain_sync_of_such_a_calendar(hostile: httpx.Client) -> None:
    answer, took = _report(hostile, _query("20300304T000000Z", "20300305T000000Z", expand=False))
    assert answer.status_code == 207, answer.text
    assert "tick.ics" in answer.text and "daily.ics" in answer.text
    listing = hostile.request("PROPFIND", "/alice/work/", headers={"Depth": "1"})
    assert listing.status_code == 207
    assert "tick.ics" in listing.text and "daily.ics" in listing.text
    assert took < 5.0


def test_free_busy_over_the_hostile_event_answers_busy(hostile: httpx.Client) -> None:
    body = (
        f'<?xml version="1.0"?><C:free-busy-query {_NS}>'
        '<C:time-range start="20300304T000000Z" end="20300305T000000Z"/></C:free-busy-query>'
    )
    answer, took = _report(hostile, body)
    assert answer.status_code == 200, answer.text
    # Too many instances to list: the whole window is shown busy, never free.
    assert "FREEBUSY:20300304T000000Z/20300305T000000Z" in answer.text.replace(";FBTYPE=BUSY", "")
    assert took < 5.0


# --- bodies --------------------------------------------------------------------------------------


def test_oversized_put_gets_413_at_once(hostile: httpx.Client) -> None:
    big = SECONDLY.replace("SUMMARY:Tick", "DESCRIPTION:" + "x" * (10 * 1024 * 1024))
    started = time.monotonic()
    answer = hostile.put("/alice/work/big.ics", content=big)
    assert answer.status_code == 413 and time.monotonic() - started < 1.5

    def chunks() -> Iterator[bytes]:
        yield SECONDLY[:60].encode()
        for _ in range(10 * 16):
            yield b"x" * 65536

    started = time.monotonic()
    answer = hostile.put("/alice/work/big.ics", content=chunks())
    assert answer.status_code == 413 and time.monotonic() - started < 1.5
    assert hostile.get("/alice/work/big.ics").status_code == 404


def test_chunked_put_within_the_limit_is_stored(hostile: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield DAILY.replace("daily@test", "chunked@test").encode()

    assert hostile.put("/alice/work/chunked.ics", content=chunks()).status_code == 201
    assert "chunked@test" in hostile.get("/alice/work/chunked.ics").text
