"""C:expand of a recurring event with an overridden instance, as caldav's functional suite
asks for it (testRecurringDateWithExceptionSearch): every instance, the moved one moved."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

from caldav_bridge.app import make_wsgi_app
from core.runtime import Runtime
from tests.integration.dav.conftest import add_provider, dav_base  # noqa: F401

RECURRING = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:daily@test\r\nDTSTAMP:20300101T000000Z\r\n"
    "DTSTART:20300301T100000Z\r\nDTEND:20300301T110000Z\r\nRRULE:FREQ=DAILY;COUNT=5\r\n"
    "SUMMARY:Daily\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:daily@test\r\nDTSTAMP:20300101T000000Z\r\n"
    "RECURRENCE-ID:20300303T100000Z\r\nDTSTART:20300303T120000Z\r\nDTEND:20300303T130000Z\r\n"
    "SUMMARY:Moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
EXPAND_QUERY = (
    '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
    'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data>'
    '<C:expand start="20300301T000000Z" end="20300310T000000Z"/></C:calendar-data></D:prop>'
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="20300301T000000Z" end="20300310T000000Z"/>'
    "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
)


def test_expand_with_an_overridden_instance(runtime: Runtime) -> None:
    alice = add_provider(runtime, "alice")
    app = make_wsgi_app(runtime, auth_delay=0)
    auth = (alice.username, alice.password)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t", auth=auth) as c:
        assert c.request("MKCALENDAR", "/alice/work/").status_code == 201
        assert c.put("/alice/work/daily.ics", content=RECURRING).status_code == 201
        headers = {"Depth": "1", "Content-Type": "application/xml"}
        for _ in range(2):  # a second REPORT sees the same, unspoiled item
            answer = c.request("REPORT", "/alice/work/", content=EXPAND_QUERY, headers=headers)
            assert answer.status_code == 207, answer.text
            assert answer.text.count("RECURRENCE-ID") == 5
            assert "DTSTART:20300303T120000Z" in answer.text
            assert "RRULE" not in answer.text


COMPONENT_SET = '<C:supported-calendar-component-set><C:comp name="VTODO"/>'
MKCALENDAR_TODO = (
    '<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    f"<D:set><D:prop>{COMPONENT_SET}</C:supported-calendar-component-set></D:prop></D:set>"
    "</C:mkcalendar>"
)
PROPPATCH_NAME = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
    "<D:displayname>Tasks</D:displayname></D:prop></D:set></D:propertyupdate>"
)
PROPFIND_SET = (
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><C:supported-calendar-component-set/></D:prop></D:propfind>"
)


def test_mkcalendar_keeps_the_component_set_it_asked_for(runtime: Runtime) -> None:
    alice = add_provider(runtime, "alice")
    app = make_wsgi_app(runtime, auth_delay=0)
    auth = (alice.username, alice.password)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t", auth=auth) as c:
        made = c.request("MKCALENDAR", "/alice/tasks/", content=MKCALENDAR_TODO)
        assert made.status_code == 201
        assert c.request("PROPPATCH", "/alice/tasks/", content=PROPPATCH_NAME).status_code == 207
        for path, wanted in (("/alice/tasks/", ["VTODO"]), ("/alice/blocks/", ["VEVENT"])):
            found = c.request("PROPFIND", path, content=PROPFIND_SET, headers={"Depth": "0"})
            names = re.findall(r'comp name="(\w+)"', found.text)
            assert (names == wanted) if path.endswith("tasks/") else (wanted[0] in names)


def test_non_ascii_names_over_http(runtime: Runtime, dav_base: str) -> None:  # noqa: F811
    """vdirsyncer's test_specialchars: names with spaces, '@' and non-ASCII letters, through
    a real PEP 3333 server (uvicorn + a2wsgi), where the path arrives latin-1-decoded."""
    alice = add_provider(runtime, "alice")
    calendar = f"{dav_base}/dav/alice/{quote('Bücher @ home')}/"
    event = RECURRING.replace("daily@test", "град@test")
    with httpx.Client(auth=(alice.username, alice.password)) as c:
        assert c.request("MKCALENDAR", calendar).status_code == 201
        assert c.put(calendar + quote("град сатану.ics"), content=event).status_code == 201
        listing = c.request("PROPFIND", calendar, headers={"Depth": "1"})
        assert quote("град сатану.ics") in listing.text
        assert "град@test" in c.get(calendar + quote("град сатану.ics")).text
