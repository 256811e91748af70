"""The booking page in German, French and Spanish, read as HTML over the app's HTTP interface:
/book/{slug}, a meeting type's page, the hold and done pages and the error page speak the
language of ?lang= (kept in a cookie) or of Accept-Language, and write their dates and times
in that language (CLDR through core.formatting), on a 24- and a 12-hour clock. English stays
the default. NOW is Monday 1 March 2027 08:00 UTC; Ada works 09:00–17:00 in Berlin."""

from __future__ import annotations

import email
import email.policy
import re
from html import unescape
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, make_provider

TUE = "2027-03-02"
# What each language writes: words of the page, the strip's month and weekday heads, the
# chosen day, a slot's accessible name at 08:00 UTC, the hold and done pages' words.
WORDS = {
    "de": {
        "words": ["Woche", "Monat", "Zeiten anzeigen", "Ihre Zeitzone", "Uhr", "Nächste Woche"],
        "month": "März 2027",
        "weekdays": ["Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."],
        "day": "Dienstag, 2. März 2027",
        "slot": "Dienstag, 2. März 2027, 08:00 buchen",
        "twelve": "8:00\u202fAM",
        "free": r"Dienstag, 2\. März 2027: \d+ freie Termine",
        "window": "Buchbar bis zu 60 Tage im Voraus.",
        "hold": ["Fast geschafft", "Ihre E-Mail-Adresse", "Buchung bestätigen"],
        "held": "<strong>Dienstag, 2. März 2027, 08:00–08:45</strong> (UTC) mit Ada Host",
        "done": ["Sie sind gebucht", "Eine Einladung geht an grace@example.net."],
        "region": '<optgroup label="Europa">',
        "vienna": ">Wien — Österreich (UTC+01:00)<",
        "taken": "Dieser Termin wurde gerade vergeben.",
    },
    "fr": {
        "words": ["Semaine", "Mois", "Afficher les créneaux", "Votre fuseau horaire", "Horloge"],
        "month": "mars 2027",
        "weekdays": ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
        "day": "mardi 2 mars 2027",
        "slot": "Réserver mardi 2 mars 2027, 08:00",
        "twelve": "8:00\u202fAM",
        "free": r"mardi 2 mars 2027 : \d+ créneaux libres",
        "window": "Réservable jusqu’à 60 jours à l’avance.",
        "hold": ["Presque terminé", "Votre e-mail", "Confirmer la réservation"],
        "held": "<strong>mardi 2 mars 2027, 08:00–08:45</strong> (UTC) avec Ada Host",
        "done": ["C’est réservé", "Une invitation est envoyée à grace@example.net."],
        "region": '<optgroup label="Amérique">',
        "vienna": ">Vienne — Autriche (UTC+01:00)<",
        "taken": "Désolé, ce créneau vient d’être pris.",
    },
    "es": {
        "words": ["Semana", "Mes", "Mostrar horas", "Su zona horaria", "Reloj"],
        "month": "marzo de 2027",
        "weekdays": ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"],
        "day": "martes, 2 de marzo de 2027",
        "slot": "Reservar martes, 2 de marzo de 2027, 8:00",
        "twelve": "8:00\u202fa.\u202fm.",
        "free": r"martes, 2 de marzo de 2027: \d+ horas libres",
        "window": "Se puede reservar hasta con 60 días de antelación.",
        "hold": ["Casi listo", "Su correo electrónico", "Confirmar reserva"],
        "held": "<strong>martes, 2 de marzo de 2027, 8:00–8:45</strong> (UTC) con Ada Host",
        "done": ["Se envía una invitación a grace@example.net."],
        "region": '<optgroup label="África">',
        "vienna": ">Viena — Austria (UTC+01:00)<",
        "taken": "Lo sentimos, esa hora acaba de ocuparse.",
    },
}
HOWS = ["Accept-Language", "?lang="]


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> TestClient:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers, slug="ada")
    made = client.post(
        f"/api/v1/providers/{provider}/meeting-types",
        json={"slug": "planning", "title": "Planning call", "durations": [45, 90]},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    return client


def _asking(client: TestClient, locale: str, how: str) -> dict[str, str]:
    """The query parameters for the first page in locale; Accept-Language is sent on every
    request, ?lang= only on the first (its cookie carries the language on)."""
    if how == "Accept-Language":
        client.headers["Accept-Language"] = f"{locale}-XX,{locale};q=0.9,en;q=0.5"
        return {}
    return {"lang": locale}


def _get(client: TestClient, path: str, status: int = 200, **params: str) -> str:
    answer = client.get(path, params=params) if params else client.get(path)
    assert answer.status_code == status, (path, params, answer.status_code, answer.text[:300])
    return answer.text


def _day_page(client: TestClient, path: str, **params: str) -> str:
    return _get(client, path, tz="UTC", day=TUE, **params)


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", html))


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("locale", sorted(WORDS))
def test_the_booking_page_speaks_the_guests_language(
    client: TestClient, locale: str, how: str
) -> None:
    # Catches: the booking page in English (or its dates by strftime) whatever the guest asked.
    words = WORDS[locale]
    # No meeting-type cards on /book/ada: a type's page is the one with the strip.
    html = _day_page(client, "/book/ada/planning", **_asking(client, locale, how))
    text = _text(html)
    assert f'<html lang="{locale}">' in html
    for word in words["words"]:
        assert word in text, (locale, word)
    assert re.search(r'<strong id="strip-title">([^<]+)</strong>', html)[1] == words["month"]  # type: ignore[index]
    assert re.findall(r'<th scope="col">([^<]+)</th>', html) == words["weekdays"]
    assert re.search(r'<h2 id="day-title">([^<]+)</h2>', html)[1] == words["day"]  # type: ignore[index]
    names = [
        unescape(n)
        for n in re.findall(r'class="slot" data-start="[^"]+" aria-label="([^"]+)"', html)
    ]
    assert names[0] == words["slot"], names[:2]
    assert re.search(f'aria-label="{words["free"]}"', unescape(html))
    assert words["window"] not in text  # the window ends far ahead of this week
    assert "Week" not in re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    twelve = _day_page(client, "/book/ada/planning", h="12")
    assert re.findall(r'class="slot"[^>]*>([^<]+)<', unescape(twelve))[0] == words["twelve"]
    assert words["region"] in unescape(html) and words["vienna"] in unescape(html)
    month = _get(client, "/book/ada/planning", tz="UTC", day="2027-04-20", view="month")
    assert words["window"] in _text(month)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("locale", ["de", "fr"])
def test_hold_and_done_pages_speak_it_too(
    runtime: Runtime, client: TestClient, locale: str, how: str
) -> None:
    words = WORDS[locale]
    asked = _asking(client, locale, how)
    html = _day_page(client, "/book/ada/planning", **asked)
    assert f'<html lang="{locale}">' in html
    start = re.findall(r'name="start" value="([^"]+)"', html)[0]
    end = re.findall(r'name="end" value="([^"]+)"', html)[0]
    held = client.post(
        "/book/ada/hold",
        data={"start": start, "end": end, "tz": "UTC", "type": "planning"},
        follow_redirects=False,
    )
    assert held.status_code == 303, held.text
    hold = _get(client, held.headers["location"])
    assert f'<html lang="{locale}">' in hold
    for word in words["hold"]:
        assert word in _text(hold), (locale, word)
    assert words["held"] in unescape(hold), re.findall(r"<p><strong>.*?</p>", hold)
    blank = client.post(
        held.headers["location"].split("?")[0], data={"email": "", "tz": "UTC", "type": "planning"}
    )
    assert blank.status_code == 400 and "Please enter" not in blank.text
    answer = client.post(
        held.headers["location"].split("?")[0],
        data={"name": "Grace", "email": "grace@example.net", "tz": "UTC", "type": "planning"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    done = _get(client, unquote(answer.headers["location"]))
    for word in words["done"]:
        assert word in _text(done), (locale, word)
    assert words["held"] in unescape(done)
    # The invitation the guest gets speaks the language the page spoke.
    with runtime.sessions() as session:
        (mail,) = session.scalars(
            select(OutboundMessage).where(OutboundMessage.recipient == "grace@example.net")
        ).all()
        message = email.message_from_bytes(mail.mime, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    asked_again = {"de": "Sie sind eingeladen:", "fr": "Vous êtes invité :"}[locale]
    assert asked_again in body.get_content(), (locale, body.get_content()[:400])
    taken = client.post(
        "/book/ada/hold",
        data={"start": start, "end": end, "tz": "UTC", "type": "planning"},
        follow_redirects=False,
    )
    assert taken.headers["location"].endswith("m=taken")
    assert words["taken"] in _text(_get(client, taken.headers["location"]))


@pytest.mark.parametrize("how", HOWS)
def test_the_cards_and_the_error_pages_in_german(client: TestClient, how: str) -> None:
    asked = _asking(client, "de", how)
    cards = _text(_get(client, "/book/ada", tz="UTC", **asked))
    assert "Wählen Sie, was Sie buchen möchten:" in cards and "45 oder 90 Minuten" in cards
    assert "<h1>Termin mit Ada Host buchen</h1>" in cards
    typed = _text(_get(client, "/book/ada/planning", tz="UTC"))
    assert "<h1>Planning call mit Ada Host</h1>" in typed
    assert "45 Minuten · Zeiten in" in typed and "90 Minuten</a>" in typed
    far = _text(_get(client, "/book/ada/planning", 400, day="2027-06-01", tz="UTC"))
    assert "Diese Seitenadresse kann nicht angezeigt werden" in far
    assert "von Montag, 1. März 2027 bis Freitag, 30. April 2027 buchbar" in far
    assert "Zurück zur Buchungsseite" in far
    bad = _text(_get(client, "/book/ada", 400, h="13"))
    assert "Die Uhr kann 12 oder 24 Stunden zeigen, sonst nichts." in bad
    missing = _text(_get(client, "/book/nobody", 404))
    assert "Seite nicht gefunden" in missing and "Please check" not in missing


def test_english_stays_the_default(client: TestClient) -> None:
    html = _day_page(client, "/book/ada/planning")
    assert '<html lang="en">' in html
    assert re.search(r'<strong id="strip-title">([^<]+)</strong>', html)[1] == "March 2027"  # type: ignore[index]
    assert re.findall(r'<th scope="col">([^<]+)</th>', html)[:2] == ["Mon", "Tue"]
    assert '<h2 id="day-title">Tuesday, 2 March 2027</h2>' in html
    assert "24-hour (13:00)" in html and "12-hour (1:00 PM)" in html
    assert "Show times" in html and '<optgroup label="Europe">' in html
    assert ">Vienna — Austria (UTC+01:00)<" in html
