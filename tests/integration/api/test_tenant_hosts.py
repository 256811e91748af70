"""Tenants with sites of their own: pages and mailed links on the tenant's host, and one
tenant's links on the other's host answer 404 (#15: "links of one tenant on the other's
host"), over HTTP with the Host header a browser sends.

Two tenants, acme (book.acme.example) and casa (book.casa.example, given later by
PATCH), each with a provider ``anna``; a guest books acme's anna; the links in the mail
point at acme's host and work there only; on the deployment's own host they are sent on
to it (links mailed before a host was set keep working).
"""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

import pytest
from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import TestClient, client_for, hold_body, make_provider

ACME = {"name": "Acme Clinic", "slug": "acme", "organizer_email": "desk@acme.example",
        "host": "book.acme.example"}  # fmt: skip
CASA = {"name": "Casa", "slug": "casa", "organizer_email": "desk@casa.example"}
ON_ACME = {"host": "book.acme.example"}
ON_CASA = {"host": "book.casa.example"}


def _links(runtime: Runtime, recipient: str) -> list[str]:
    """Every http(s) link in the plain-text parts of the mail to recipient."""
    found: list[str] = []
    with runtime.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage).where(OutboundMessage.recipient == recipient)
        ).all()
        for row in rows:
            message = email.message_from_bytes(row.mime, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            found += re.findall(r"https?://\S+", body.get_content() if body else "")
    return found


@pytest.fixture
def sites(runtime: Runtime, admin_headers: dict[str, str]) -> dict[str, Any]:
    client = client_for(runtime)
    ids = {}
    for body in (ACME, CASA):
        made = client.post("/api/v1/tenants", json=body, headers=admin_headers)
        assert made.status_code == 201, made.text
        ids[body["slug"]] = made.json()["id"]
    assert made.json()["host"] is None
    patched = client.patch(f"/api/v1/tenants/{ids['casa']}", json={"host": "Book.Casa.Example"},
                           headers=admin_headers)  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["host"] == "book.casa.example"
    annas = {}
    for slug in ("acme", "casa"):
        headers = {**admin_headers, "X-Parley-Tenant": slug}
        annas[slug] = make_provider(client, headers, "anna")
    return {"client": client, "ids": ids, "annas": annas}


def _book_acme(client: TestClient, anna: str) -> None:
    start, end = "2027-03-03T09:00:00Z", "2027-03-03T09:30:00Z"
    hold = client.post("/api/v1/holds", json=hold_body(anna, start, end, guest_name="Grace"))
    assert hold.status_code == 201, hold.text
    assert client.post(f"/api/v1/holds/{hold.json()['id']}/confirm").status_code == 201


def test_each_tenant_books_on_its_own_host_and_its_links_work_there_only(
    runtime: Runtime, admin_headers: dict[str, str], sites: dict[str, Any]
) -> None:
    client, annas = sites["client"], sites["annas"]
    listed = client.get(f"/api/v1/providers/{annas['acme']}",
                        headers={**admin_headers, "X-Parley-Tenant": "acme"})  # fmt: skip
    assert listed.json()["booking_url"] == "http://book.acme.example/book/anna"

    params = {"tz": "UTC", "from": "2027-03-08"}
    acme_page = client.get("/book/anna", params=params, headers=ON_ACME)
    casa_page = client.get("/book/anna", params=params, headers=ON_CASA)
    assert acme_page.status_code == casa_page.status_code == 200
    assert 'action="/book/anna/hold"' in acme_page.text and "/t/" not in acme_page.text
    assert 'action="/book/anna/hold"' in casa_page.text and "/t/" not in casa_page.text
    assert client.get("/t/casa/book/anna", headers=ON_ACME).status_code == 404
    moved = client.get("/t/acme/book/anna", params=params, follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == "http://book.acme.example/book/anna?tz=UTC&from=2027-03-08"

    _book_acme(client, annas["acme"])
    links = _links(runtime, "guest@example.net")
    manage = next(u for u in links if "/booking?m=" in u)
    reschedule = next(u for u in links if "/reschedule?r=" in u)
    for url in (manage, reschedule):
        assert url.startswith("http://book.acme.example/"), url
        path = url.removeprefix("http://book.acme.example")
        assert client.get(path, headers=ON_ACME).status_code == 200, path
        foreign = client.get(path, headers=ON_CASA)
        assert foreign.status_code == 404, path
        assert "Grace" not in foreign.text and "Anna" not in foreign.text
        sent_on = client.get(path, follow_redirects=False)  # the deployment's own host
        assert sent_on.status_code == 308 and sent_on.headers["location"] == url
    host_links = _links(runtime, "anna@example.org")
    assert host_links and all(u.startswith("http://book.acme.example/") for u in host_links)


def test_hosts_are_checked_and_unique(
    runtime: Runtime, admin_headers: dict[str, str], sites: dict[str, Any]
) -> None:
    client, ids = sites["client"], sites["ids"]
    for host, status in (
        ("https://book.casa.example", 400), ("book.casa.example/x", 400), ("10.0.0.1", 400),
        ("bad_host.example", 400), ("book.acme.example", 409),
    ):  # fmt: skip
        answer = client.patch(f"/api/v1/tenants/{ids['casa']}", json={"host": host},
                              headers=admin_headers)  # fmt: skip
        assert answer.status_code == status, (host, answer.text)
    owner = client.post(f"/api/v1/tenants/{ids['casa']}/api-keys", json={"role": "owner"},
                        headers=admin_headers).json()["key"]  # fmt: skip
    refused = client.patch(f"/api/v1/tenants/{ids['casa']}", json={"host": None},
                           headers={"Authorization": f"Bearer {owner}"})  # fmt: skip
    assert refused.status_code == 403
    assert client.patch("/api/v1/tenants/default", json={"host": "x.example"},
                        headers=admin_headers).status_code == 400  # fmt: skip
    cleared = client.patch(f"/api/v1/tenants/{ids['casa']}", json={"host": None},
                           headers=admin_headers)  # fmt: skip
    assert cleared.status_code == 200 and cleared.json()["host"] is None
    # Without a host of its own, casa's pages are under /t/casa on the deployment's host.
    assert client.get("/t/casa/book/anna", params={"tz": "UTC"}).status_code == 200
    assert client.get("/book/anna", headers=ON_CASA).status_code == 404  # nobody's host now
