"""Mail in the recipient's language and zone, as the relay receives it (#19 item 4).

A guest in New York books in German, the provider in Berlin chose French: the outbox is
delivered over SMTP to a local relay sink, and each message is read back the way a mail
client would (RFC 2047 subject, quoted-printable text and HTML)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.runtime import Runtime
from mailagent.outbox import deliver_outbox
from tests.e2e.relay import running_relay
from tests.integration.api.helpers import client_for, hold_body, make_provider

START, END = datetime(2027, 3, 3, 10, 0, tzinfo=UTC), datetime(2027, 3, 3, 10, 30, tzinfo=UTC)


def test_each_party_receives_mail_in_their_language_and_zone(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    api = client_for(runtime)
    provider = make_provider(api, admin_headers, slug="ada")
    patched = api.patch(
        f"/api/v1/providers/{provider}", json={"locale": "fr"}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text
    body = hold_body(
        provider, START.isoformat(), END.isoformat(), guest_timezone="America/New_York"
    )
    hold = api.post("/api/v1/holds", json=body)
    made = api.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json={"guest_locale": "de-DE"})
    assert made.status_code == 201, made.text
    with running_relay() as (sink, port):
        settings = runtime.settings.model_copy(
            update={"smtp_relay_url": f"smtp://127.0.0.1:{port}"}
        )
        report = deliver_outbox(settings, runtime.sessions, runtime.clock)
        assert report.sent == 2, report
        got = {m.recipient: m.message for m in sink.wait_count(2)}
    guest, host = got["guest@example.net"], got["ada@example.org"]
    assert str(guest["Subject"]) == "Session mit Ada Host — Mi., 3. März 2027, 05:00–05:30 EST"
    guest_text = guest.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    guest_html = guest.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert (
        "Sie sind eingeladen" in guest_text and "Mi., 3. März 2027, 05:00–05:30 EST" in guest_text
    )
    assert '<html lang="de">' in guest_html and "Mi., 3. März 2027, 05:00–05:30 EST" in guest_html
    assert "UTC" not in guest_text and "CET" not in guest_text
    assert str(host["Subject"]) == "Session — mer. 3 mars 2027, 11:00–11:30 CET"
    host_text = host.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Vous êtes invité" in host_text and "mer. 3 mars 2027, 11:00–11:30 CET" in host_text
    assert "EST" not in host_text and "UTC" not in host_text
