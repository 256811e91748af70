"""Signing a provider in through the pages, with the link read from the outbox."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from core.db.models import OutboundMessage
from core.runtime import Runtime
from tests.integration.api.helpers import TestClient

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_LINK = re.compile(r"/me/link\?t=([A-Za-z0-9_\-]+)")


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found[1]


def sign_in_links(runtime: Runtime, address: str) -> list[str]:
    """Tokens of the sign-in mails queued for address, oldest first."""
    with runtime.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage)
            .where(
                OutboundMessage.recipient == address, OutboundMessage.kind == "notice.sign_in_link"
            )
            .order_by(OutboundMessage.id)
        ).all()
    tokens = []
    for row in rows:
        message = email.message_from_bytes(row.mime, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        found = _LINK.search(body.get_content())
        assert found, "no sign-in link in the mail"
        tokens.append(found[1])
    return tokens


def request_link(client: TestClient, address: str) -> str:
    page = client.get("/me")
    answer = client.post("/me/sign-in", data={"csrf": csrf_of(page.text), "email": address})
    assert answer.status_code == 200, answer.text
    return answer.text


def redeem(client: TestClient, token: str) -> int:
    page = client.get(f"/me/link?t={token}")
    if page.status_code != 200:
        return page.status_code
    done = client.post(
        "/me/link", data={"csrf": csrf_of(page.text), "t": token}, follow_redirects=False
    )
    return done.status_code


def sign_in(client: TestClient, runtime: Runtime, address: str) -> None:
    request_link(client, address)
    token = sign_in_links(runtime, address)[-1]
    assert redeem(client, token) == 303
    assert client.get("/me").status_code == 200


@contextmanager
def serve_feed(body: str, status: int = 200) -> Iterator[str]:
    """A static calendar feed on a loopback port; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cal.ics"
    finally:
        server.shutdown()
        server.server_close()
