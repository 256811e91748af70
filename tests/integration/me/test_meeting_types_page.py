"""A provider offers meeting types from /me/types, the way they would without the API:
adds one, sees it as a card on the booking page and at its own address, a guest books it
there and the invitation carries its title and place; a bad form keeps what was typed and
says what is wrong; changing and removing it show on the guest's side too."""

from __future__ import annotations

import email
import email.policy
import re

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, make_provider
from tests.integration.me.helpers import csrf_of, sign_in

TYPE = {"title": "Planning call", "slug": "planning", "durations": "30, 60",
        "location": "https://meet.example/ada", "description": "We plan the quarter.",
        "active": "on"}  # fmt: skip


def _form(client: TestClient, **values: str) -> dict[str, str]:
    return {"csrf": csrf_of(client.get("/me/types").text), **values}


def _invitation(runtime: Runtime, to: str) -> str:
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboundMessage).where(OutboundMessage.recipient == to)).all()
    for row in rows:
        message = email.message_from_bytes(row.mime, policy=email.policy.default)
        for part in message.walk():
            if part.get_content_type() == "text/calendar":
                return str(part.get_content())
    raise AssertionError(f"no invitation to {to}")


def test_a_type_made_on_me_is_booked_on_its_page(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada", lead_time_hours=0)
    sign_in(client, runtime, "ada@example.org")
    assert 'id="no-types"' in client.get("/me/types").text

    bad = client.post("/me/types", data=_form(client, **{**TYPE, "durations": "thirty"}))
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text
    assert "whole numbers" in bad.text and 'value="Planning call"' in bad.text
    added = client.post("/me/types", data=_form(client, **TYPE))
    assert added.status_code == 200 and "Meeting type added" in added.text
    assert 'id="type-planning"' in added.text and "/book/ada/planning" in added.text
    taken = client.post("/me/types", data=_form(client, **TYPE))
    assert taken.status_code == 400 and "planning" in taken.text

    cards = client.get("/book/ada", params={"tz": "UTC"})
    assert cards.status_code == 200 and "Planning call" in cards.text
    page = client.get("/book/ada/planning", params={"tz": "UTC", "day": "2027-03-02"})
    assert page.status_code == 200 and "We plan the quarter." in page.text
    slot = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
    assert slot is not None  # the first free time's button, posted as a browser does
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', slot[2]))
    assert fields["type"] == "planning"
    held = client.post(slot[1], data=fields, follow_redirects=False)
    assert held.status_code == 303, held.text
    hold_path = held.headers["location"].split("?", 1)[0]
    done = client.post(hold_path, data={"name": "Grace", "email": "grace@example.net",
                                        "tz": "UTC"}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text
    invitation = _invitation(runtime, "grace@example.net")
    assert "SUMMARY:Planning call" in invitation
    assert "LOCATION:https://meet.example/ada" in invitation

    listed = client.get("/me/types").text
    type_id = re.search(r'action="/me/types/(mtt_\w+)"', listed)
    assert type_id is not None
    changed = {**TYPE, "title": "Quarter planning", "active": ""}
    saved = client.post(f"/me/types/{type_id[1]}", data=_form(client, **changed))
    assert saved.status_code == 200 and "Meeting type saved" in saved.text
    assert client.get("/book/ada/planning", params={"tz": "UTC"}).status_code == 404
    removed = client.post(f"/me/types/{type_id[1]}/remove", data=_form(client))
    assert removed.status_code == 200 and 'id="no-types"' in removed.text
    for path in ("/me/types/mtt_nope/remove", "/me/types/mtt_nope"):
        assert client.post(path, data=_form(client, **TYPE)).status_code == 404, path
