"""Console set-up over HTTP: tenants and operators through the API, sign-in through the
pages with the link read from the outbox, as the operator reads it in their mail."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import TestClient
from tests.integration.me.helpers import csrf_of

LINK = re.compile(r"https?://\S+?/admin/link\?t=([A-Za-z0-9_\-]+)")
ACME = {"name": "Acme Clinic", "slug": "acme", "organizer_email": "desk@acme.example"}


def make_tenant(client: TestClient, headers: dict[str, str], **fields: str) -> str:
    made = client.post("/api/v1/tenants", json={**ACME, **fields}, headers=headers)
    assert made.status_code == 201, made.text
    tenant_id: str = made.json()["id"]
    return tenant_id


def add_operator(
    client: TestClient, headers: dict[str, str], tenant_id: str, address: str, role: str
) -> dict[str, Any]:
    made = client.post(
        f"/api/v1/tenants/{tenant_id}/operators", json={"email": address, "role": role},
        headers=headers,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def console_links(runtime: Runtime, address: str) -> list[str]:
    """Tokens of the console sign-in mails queued for address, oldest first."""
    with runtime.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage)
            .where(
                OutboundMessage.recipient == address, OutboundMessage.kind == "notice.sign_in_link"
            )
            .order_by(OutboundMessage.id)
        ).all()
    found = []
    for row in rows:
        message = email.message_from_bytes(row.mime, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        link = LINK.search(body.get_content())
        if link:
            found.append(link[1])
    return found


def request_link(client: TestClient, address: str) -> str:
    page = client.get("/admin")
    answer = client.post("/admin/sign-in", data={"csrf": csrf_of(page.text), "email": address})
    assert answer.status_code == 200, answer.text
    return answer.text


def redeem(client: TestClient, token: str) -> int:
    page = client.get(f"/admin/link?t={token}")
    if page.status_code != 200:
        return page.status_code
    done = client.post(
        "/admin/link", data={"csrf": csrf_of(page.text), "t": token}, follow_redirects=False
    )
    return done.status_code


def sign_in(client: TestClient, runtime: Runtime, address: str) -> None:
    request_link(client, address)
    token = console_links(runtime, address)[-1]
    assert redeem(client, token) == 303
    assert 'id="figures"' in client.get("/admin").text


def post_form(client: TestClient, page: str, action: str, **fields: str) -> Any:
    """POST a form of ``page`` (its CSRF token included), as the browser would."""
    csrf = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf": csrf, **fields})
