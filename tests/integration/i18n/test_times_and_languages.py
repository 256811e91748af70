"""Every time a person is shown is in their own zone and language (#19 item 4).

One booking (Wed 3 March 2027, 10:00–10:30 UTC) between a provider in Berlin and a guest
in New York, followed through the pages each of them opens (the manage page, the
reschedule page, the approve page and what it answers, the used link's page, /me) and the
mails the outbox sends them. A table lists, per page, whose page it is: every time on it
must carry that viewer's zone (CET for Berlin, EST for New York), never UTC, and the
booking's own time must be written as core.formatting writes it for that viewer. The same
pages are asked for in German by Accept-Language and by ?lang=de; a guest who booked in
German gets German mail.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import icalendar
import pytest
from sqlalchemy import select

from core.db.models import OutboundMessage
from core.formatting import format_range
from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, hold_body, make_provider
from tests.integration.me.helpers import csrf_of, sign_in

START, END = datetime(2027, 3, 3, 10, 0, tzinfo=UTC), datetime(2027, 3, 3, 10, 30, tzinfo=UTC)
NEW_START, NEW_END = (
    datetime(2027, 3, 4, 13, 0, tzinfo=UTC),
    datetime(2027, 3, 4, 13, 30, tzinfo=UTC),
)
BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
LABEL = {BERLIN: "CET", NEW_YORK: "EST"}
GUEST, HOST = "guest@example.net", "ada@example.org"
# A clock time followed by a zone label: "05:00 EST", "11:00–11:30 MEZ", "13:00 GMT-3".
SHOWN_TIME = re.compile(r"\b(\d{1,2}:\d{2})(?:–\d{1,2}:\d{2})? ([A-Z]{2,5}|GMT[+-][\d:]+)\b")


def text_of(page: str) -> str:
    """What a reader sees of an HTML page: no tags, no attributes, entities decoded."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def mails(runtime: Runtime, kind: str, to: str) -> list[tuple[str, str]]:
    """(subject, text) of each outbox message of kind to a recipient, oldest first."""
    with runtime.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.kind == kind, OutboundMessage.recipient == to)
            .order_by(OutboundMessage.id)
        ).all()
        found = []
        for row in rows:
            message = email.message_from_bytes(row.mime, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = " ".join((body.get_content() if body else "").split())
            found.append((str(message["Subject"]), text))
    return found


def link(text: str, path: str) -> str:
    found = re.search(rf"https?://[^/\s]+({re.escape(path)}[A-Za-z0-9_\-%.~]+)", text)
    assert found, f"no {path} link in {text[:300]}"
    return found[1]


def assert_times_in(text: str, zone: str, locale: str = "en") -> None:
    """Every time shown names the viewer's zone; none is UTC (the viewer is not in UTC)."""
    shown = SHOWN_TIME.findall(text)
    assert shown, f"no time on the page: {text[:400]}"
    labels = {label for _, label in shown}
    expected = {"de": {BERLIN: "MEZ"}}.get(locale, {}).get(zone, LABEL[zone])
    assert labels == {expected}, (labels, text[:600])
    assert "UTC" not in text and "+00:00" not in text and not re.search(r"\d{4}-\d{2}-\d{2}T", text)


@dataclass
class Journey:
    """The pages and mails of one booking, opened as each person would."""

    runtime: Runtime
    guest: TestClient
    host: TestClient
    provider: str
    booking: str
    manage: str = ""
    reschedule: str = ""
    approve: str = ""
    done: str = ""


def book(runtime: Runtime, admin_headers: dict[str, str], guest_locale: str | None) -> Journey:
    api = client_for(runtime)
    provider = make_provider(api, admin_headers, slug="ada")
    body = hold_body(provider, START.isoformat(), END.isoformat(), guest_timezone=NEW_YORK,
                     guest_name="Grace")  # fmt: skip
    hold = api.post("/api/v1/holds", json=body)
    assert hold.status_code == 201, hold.text
    confirm = {"guest_locale": guest_locale} if guest_locale else {}
    made = api.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json=confirm)
    assert made.status_code == 201, made.text
    journey = Journey(runtime, api, client_for(runtime), provider, made.json()["booking"]["id"])
    ((_, guest_text),) = mails(runtime, "itip.invitation", GUEST)
    journey.manage = link(guest_text, "/booking?m=")
    journey.reschedule = link(guest_text, "/reschedule?r=")
    return journey


def propose_and_approve(journey: Journey) -> None:
    """The guest proposes a new time on the reschedule page; the host approves it."""
    proposed = journey.guest.post("/reschedule", data={
        "r": journey.reschedule.split("r=", 1)[1].replace("%3D", "="), "slot": NEW_START.isoformat()
    })  # fmt: skip
    assert proposed.status_code == 201, proposed.text
    ((_, host_text),) = mails(journey.runtime, "notice.approval_request", HOST)
    journey.approve = link(host_text, "/approve?t=")
    page = journey.host.get(journey.approve)
    assert page.status_code == 200, page.text
    token = re.search(r'name="t" value="([^"]+)"', page.text)
    assert token
    answered = journey.host.post("/approve", data={"t": html.unescape(token[1])})
    assert answered.status_code == 200, answered.text
    journey.done = answered.text


@pytest.fixture
def journey(runtime: Runtime, admin_headers: dict[str, str]) -> Journey:
    return book(runtime, admin_headers, guest_locale=None)


# (what, whose zone, how to read it, the booking's time the viewer must see)
Reader = Callable[[Journey], str]
PAGES: list[tuple[str, str, Reader, tuple[datetime, datetime]]] = [
    ("manage page", NEW_YORK, lambda j: j.guest.get(j.manage).text, (START, END)),
    ("reschedule page", NEW_YORK, lambda j: j.guest.get(j.reschedule).text, (START, END)),
    ("approve page", BERLIN, lambda j: j.host.get(j.approve).text, (NEW_START, NEW_END)),
    ("approved answer", BERLIN, lambda j: j.done, (NEW_START, NEW_END)),
    ("used link page", BERLIN, lambda j: j.host.get(j.approve).text, (NEW_START, NEW_END)),
    ("manage page, moved", NEW_YORK, lambda j: j.guest.get(j.manage).text, (NEW_START, NEW_END)),
    ("/me bookings", BERLIN, lambda j: me(j, "/me/bookings"), (NEW_START, NEW_END)),
    ("/me booking", BERLIN, lambda j: host_view(j), (NEW_START, NEW_END)),
    ("/me home", BERLIN, lambda j: me(j, "/me"), (NEW_START, NEW_END)),
    # "Why is 14:00 not free?": the booking there, in the provider's zone (was +00:00).
    (
        "/me explainer",
        BERLIN,
        lambda j: me(j, "/me/preview?at=2027-03-04T14:00"),
        (NEW_START, NEW_END),
    ),
]
MAILS: list[tuple[str, str, str, str, tuple[datetime, datetime]]] = [
    ("guest's invitation", "itip.invitation", GUEST, NEW_YORK, (START, END)),
    ("host's invitation", "itip.invitation", HOST, BERLIN, (START, END)),
    ("host's approval request", "notice.approval_request", HOST, BERLIN, (NEW_START, NEW_END)),
    ("guest's update", "itip.update", GUEST, NEW_YORK, (NEW_START, NEW_END)),
    ("host's update", "itip.update", HOST, BERLIN, (NEW_START, NEW_END)),
]


def me(journey: Journey, path: str) -> str:
    if not journey.host.cookies.get("parley_session"):
        sign_in(journey.host, journey.runtime, HOST)
    page = journey.host.get(path)
    assert page.status_code == 200, page.text
    return page.text


def host_view(journey: Journey) -> str:
    """/me/bookings/{id}, without the one line that shows the guest's own time on purpose
    (checked here: it is the guest's zone, labelled as such)."""
    page = me(journey, f"/me/bookings/{journey.booking}")
    found = re.search(r'<p class="muted" id="guest-zone">(.*?)</p>', page, re.S)
    assert found, page
    assert_times_in(text_of(found[1]), NEW_YORK)
    assert f"The guest's zone: {NEW_YORK}" in text_of(found[1])
    return page.replace(found[0], "")


def walk(journey: Journey, page: Reader, before_approval: bool) -> str:
    if not before_approval and not journey.done:
        propose_and_approve(journey)
    return page(journey)


@pytest.mark.parametrize(("what", "zone", "read", "span"), PAGES, ids=[p[0] for p in PAGES])
def test_every_time_on_every_page_is_in_the_viewers_zone(
    journey: Journey, what: str, zone: str, read: Reader, span: tuple[datetime, datetime]
) -> None:
    before = what in ("manage page", "reschedule page")
    text = text_of(walk(journey, read, before))
    assert_times_in(text, zone)
    assert format_range(*span, zone, "en") in text, (what, text[:600])


@pytest.mark.parametrize(("what", "kind", "to", "zone", "span"), MAILS, ids=[m[0] for m in MAILS])
def test_every_time_in_every_mail_is_in_the_recipients_zone(
    journey: Journey, what: str, kind: str, to: str, zone: str, span: tuple[datetime, datetime]
) -> None:
    propose_and_approve(journey)
    ((subject, text),) = mails(journey.runtime, kind, to)
    assert_times_in(f"{subject} {text}", zone)
    assert format_range(*span, zone, "en") in text, (what, text[:600])


GERMAN: list[tuple[str, Callable[[Journey, dict[str, str], str], str], str, list[str]]] = [
    ("manage page", lambda j, h, q: j.guest.get(j.manage + q, headers=h).text, NEW_YORK,
     ["Sie sind gebucht", "Neuen Termin anfragen", "Buchung absagen"]),
    ("reschedule page", lambda j, h, q: j.guest.get(j.reschedule + q, headers=h).text, NEW_YORK,
     ["Neuen Termin anfragen", "Aktueller Termin", "Vorschlag senden"]),
    ("landing page", lambda j, h, q: j.guest.get("/" + q.replace("&", "?"), headers=h).text,
     NEW_YORK, ["Einen Termin buchen?", "Anmelden"]),
]  # fmt: skip


@pytest.mark.parametrize("how", ["Accept-Language", "?lang=de"])
@pytest.mark.parametrize(("what", "read", "zone", "words"), GERMAN, ids=[g[0] for g in GERMAN])
def test_the_same_pages_in_german(
    journey: Journey, how: str, what: str, read: Any, zone: str, words: list[str]
) -> None:
    headers = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"} if how == "Accept-Language" else {}
    query = "&lang=de" if how == "?lang=de" else ""
    page = read(journey, headers, query)
    assert '<html lang="de">' in page
    text = text_of(page)
    for word in words:
        assert word in text, (what, word, text[:500])
    if what != "landing page":
        assert format_range(START, END, zone, "de") in text  # "Mi., 3. März 2027, 05:00–05:30 EST"
        assert_times_in(text, zone, "de")
        assert "You're booked" not in text and "Request a new time" not in text


def test_the_language_switch_is_remembered_and_english_stays_the_default(
    journey: Journey,
) -> None:
    english = journey.guest.get(journey.manage)
    assert "You're booked" in english.text and '<html lang="en">' in english.text
    assert 'hreflang="de"' in english.text  # the switch links to the four languages
    assert re.search(r'href="\?m=[^"]+&amp;lang=de" hreflang="de"', english.text)
    junk = journey.guest.get("/booking", params={"m": "<b>ünïcode</b>" * 20, "tz": "UTC"})
    assert "ünïcode" not in junk.text and 'href="?tz=UTC&amp;lang=de"' in junk.text
    switched = journey.guest.get(journey.manage + "&lang=fr")
    assert "C’est réservé" in switched.text
    assert "parley_lang=fr" in switched.headers.get("set-cookie", "")
    again = journey.guest.get(journey.manage)  # the cookie, not the link, says French now
    assert "C’est réservé" in again.text
    spanish = client_for(journey.runtime).get(journey.manage, headers={"Accept-Language": "es"})
    assert "Reserva hecha" in spanish.text and "mié, 3 mar 2027, 5:00–5:30 EST" in spanish.text


def test_a_guest_who_booked_in_german_gets_german_mail(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    book(runtime, admin_headers, guest_locale="de-AT")
    ((subject, text),) = mails(runtime, "itip.invitation", GUEST)
    assert subject == "Session mit Ada Host — Mi., 3. März 2027, 05:00–05:30 EST"
    assert "Sie sind eingeladen" in text and "You are invited" not in text
    assert "Mi., 3. März 2027, 05:00–05:30 EST" in text
    ((host_subject, host_text),) = mails(runtime, "itip.invitation", HOST)
    assert host_subject == "Session with Grace — Wed, 3 Mar 2027, 11:00–11:30 CET"
    assert "You are invited" in host_text
    description = calendar_description(runtime, GUEST)  # the SUMMARY stays the title
    assert (
        description.startswith("Session mit Ada Host.") and "Neuen Termin anfragen: " in description
    )
    assert calendar_description(runtime, HOST).startswith("Session with ")


def calendar_description(runtime: Runtime, to: str) -> str:
    """The DESCRIPTION of the invitation's calendar part to a recipient."""
    with runtime.sessions() as session:
        row = session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.kind == "itip.invitation", OutboundMessage.recipient == to
            )
        ).one()
    message = email.message_from_bytes(row.mime, policy=email.policy.default)
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Session"
    return str(event["DESCRIPTION"])


def test_a_browser_confirming_for_itself_books_in_its_language(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    api = client_for(runtime)
    provider = make_provider(api, admin_headers, slug="ada")
    hold = api.post("/api/v1/holds", json=hold_body(provider, START.isoformat(), END.isoformat()))
    confirm = f"/api/v1/holds/{hold.json()['id']}/confirm"
    assert api.post(confirm, headers={"Accept-Language": "es-MX,es;q=0.9"}).status_code == 201
    ((subject, text),) = mails(runtime, "itip.invitation", GUEST)
    assert subject == "Session con Ada Host — mié, 3 mar 2027, 10:00–10:30 UTC"
    assert "Está invitado" in text


def test_a_provider_chooses_the_language_of_their_mails(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    api = client_for(runtime)
    provider = make_provider(api, admin_headers, slug="ada")
    wrong = api.patch(f"/api/v1/providers/{provider}", json={"locale": "xx"}, headers=admin_headers)
    assert wrong.status_code == 400, wrong.text
    chosen = api.patch(
        f"/api/v1/providers/{provider}", json={"locale": "fr"}, headers=admin_headers
    )
    assert chosen.status_code == 200 and chosen.json()["locale"] == "fr", chosen.text
    hold = api.post("/api/v1/holds", json=hold_body(provider, START.isoformat(), END.isoformat()))
    assert api.post(f"/api/v1/holds/{hold.json()['id']}/confirm").status_code == 201
    ((subject, text),) = mails(runtime, "itip.invitation", HOST)
    assert subject == "Session — mer. 3 mars 2027, 11:00–11:30 CET" and "Vous êtes invité" in text
    assert "mer. 3 mars 2027, 11:00–11:30 CET" in text
    ((_, guest_text),) = mails(runtime, "itip.invitation", GUEST)
    assert "You are invited" in guest_text  # the guest booked without a language: English


def test_pages_say_they_depend_on_the_language_and_providers_start_with_one(
    journey: Journey, admin_headers: dict[str, str]
) -> None:
    page = journey.guest.get(journey.manage)
    assert "Accept-Language" in page.headers["vary"]
    body = {"name": "Bea", "email": "bea@example.org", "timezone": BERLIN, "slug": "bea",
            "locale": "es"}  # fmt: skip
    made = journey.guest.post("/api/v1/providers", json=body, headers=admin_headers)
    assert made.status_code == 201 and made.json()["locale"] == "es", made.text


def test_a_provider_switches_their_pages_and_mails_to_german_on_me(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    api = client_for(runtime)
    provider = make_provider(api, admin_headers, slug="ada")
    host = client_for(runtime)
    sign_in(host, runtime, HOST)
    home = host.get("/me")
    assert "Set your hours" not in home.text and "Waiting for your answer" in home.text
    form = {"csrf": csrf_of(home.text), "locale": "de"}
    saved = host.post("/me/language", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    german = {
        "/me": ["Hallo, Ada Host", "Warten auf Ihre Antwort", "Verfügbarkeit"],
        "/me/availability": ["Wochenzeiten", "Montag", "Buchungsregeln", "Vorlaufzeit (Stunden)"],
        "/me/calendars": ["Kalenderverbindungen", "Kalender hinzufügen"],
        "/me/connect": ["Ihre Kalender-App verbinden", "App-Passwörter"],
        "/me/preview": ["Buchbare Zeiten", "Di., 2. März"],
        "/me/bookings": ["Anstehende Buchungen"],
        "/me/sessions": ["Wo Sie angemeldet sind"],
    }
    for path, words in german.items():
        page = host.get(path)
        assert page.status_code == 200 and '<html lang="de">' in page.text, path
        for word in words:
            assert word in text_of(page.text), (path, word)
    assert api.get(f"/api/v1/providers/{provider}", headers=admin_headers).json()["locale"] == "de"
    hold = api.post("/api/v1/holds", json=hold_body(provider, START.isoformat(), END.isoformat()))
    assert api.post(f"/api/v1/holds/{hold.json()['id']}/confirm").status_code == 201
    ((subject, text),) = mails(runtime, "itip.invitation", HOST)
    assert subject == "Session — Mi., 3. März 2027, 11:00–11:30 MEZ"
    assert "Mi., 3. März 2027, 11:00–11:30 MEZ" in text
    english = host.get("/me/bookings?lang=en")  # this browser may still switch for itself
    assert "Upcoming bookings" in english.text
