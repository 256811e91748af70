"""Reading what Parley queued in its outbox, the way a recipient reads their mail."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import client_for, hold_body, make_provider

LINK = re.compile(r"https?://[^\s\"<>]+/(reschedule\?r|approve\?t|decline\?t)=([A-Za-z0-9_\-%.~]+)")
GUEST = "guest@example.net"


def outbox(runtime: Runtime) -> list[OutboundMessage]:
    with runtime.sessions() as session:
        return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def parsed(row: OutboundMessage) -> EmailMessage:
    message = email.message_from_bytes(row.mime, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_text(row: OutboundMessage) -> str:
    parts = []
    for part in parsed(row).walk():
        if not part.is_multipart():
            content = part.get_content()
            parts.append(content.decode() if isinstance(content, bytes) else content)
    return "\n".join(parts)


def links(row: OutboundMessage) -> dict[str, str]:
    """The link tokens in a message, by kind ("reschedule", "approve", "decline")."""
    found: dict[str, str] = {}
    for kind, token in LINK.findall(body_text(row).replace("=\r\n", "").replace("\\n", "\n")):
        found.setdefault(kind.split("?")[0], token)
    return found


def booked(runtime: Runtime, admin_headers: dict[str, str], **hours: Any) -> tuple[Any, str]:
    """A client and the id of a confirmed booking Tue 2 March 2027 10:00–10:30 Berlin."""
    client = client_for(runtime)
    provider_id = make_provider(client, admin_headers, **hours)
    hold = client.post(
        "/api/v1/holds",
        json=hold_body(
            provider_id,
            "2027-03-02T09:00:00Z",
            "2027-03-02T09:30:00Z",
            guest_name="Grace Guest",
            guest_email=GUEST,
        ),
    )
    assert hold.status_code == 201, hold.text
    confirmed = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    return client, confirmed.json()["booking"]["id"]
