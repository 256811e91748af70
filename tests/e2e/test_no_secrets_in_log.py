"""`parley serve` at debug level, every kind of failed authentication, then a grep of its
whole log: no secret key, admin token, app password, link token or mail password in it."""

from __future__ import annotations

import secrets
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core import tokens
from tests.conftest import free_port
from tests.e2e.helpers import parley_env, start, wait_healthy

pytestmark = pytest.mark.slow

SECRET_KEY = "e2e-secret-key-" + secrets.token_hex(16)
ADMIN_TOKEN = "e2e-admin-token-" + secrets.token_hex(16)
RELAY_PASSWORD = "relay-pw-" + secrets.token_hex(8)
IMAP_PASSWORD = "imap-pw-" + secrets.token_hex(8)


def _link(purpose: str, *, expires: datetime, booking: str = "bkg_nothere") -> str:
    return tokens.issue(
        SECRET_KEY.encode(),
        booking_id=booking,
        role="host",
        address="host@example.org",
        purpose=purpose,
        expires_at=expires,
        nonce=secrets.token_bytes(16),
    )


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def test_failed_logins_leave_no_secret_in_the_log(tmp_path: Path) -> None:
    http_port, smtp_port, closed = free_port(), free_port(), free_port()
    env = parley_env(
        tmp_path / "data",
        PARLEY_HTTP_PORT=str(http_port),
        PARLEY_SMTP_PORT=str(smtp_port),
        PARLEY_SECRET_KEY=SECRET_KEY,
        PARLEY_ADMIN_TOKEN=ADMIN_TOKEN,
        PARLEY_LOG_LEVEL="debug",
        PARLEY_SMTP_RELAY_URL=f"smtp://relayuser:{RELAY_PASSWORD}@127.0.0.1:{closed}",
        PARLEY_IMAP_URL=f"imap://imapuser:{IMAP_PASSWORD}@127.0.0.1:{closed}/INBOX",
        PARLEY_IMAP_POLL_SECONDS="1",
    )
    proc = start(["serve"], env, tmp_path)
    base = f"http://127.0.0.1:{http_port}"
    used: list[str] = [SECRET_KEY, ADMIN_TOKEN, RELAY_PASSWORD, IMAP_PASSWORD]
    try:
        wait_healthy(base, timeout=30)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=base, timeout=30) as client:
            made = client.post(
                "/api/v1/providers",
                headers=admin,
                json={"name": "Ada", "email": "ada@example.org", "timezone": "UTC", "slug": "ada"},
            )
            assert made.status_code == 201, made.text
            provider = made.json()["id"]
            issued = client.post(
                f"/api/v1/providers/{provider}/app-passwords", headers=admin, json={}
            )
            assert issued.status_code == 201, issued.text
            user, password = issued.json()["username"], issued.json()["password"]
            revoked_issue = client.post(
                f"/api/v1/providers/{provider}/app-passwords", headers=admin, json={}
            ).json()
            used += [password, revoked_issue["password"]]
            assert (
                client.request(
                    "PROPFIND", "/dav/ada/", auth=(user, password), headers={"Depth": "0"}
                ).status_code
                == 207
            )
            gone = client.delete(
                f"/api/v1/providers/{provider}/app-passwords/{revoked_issue['id']}", headers=admin
            )
            assert gone.status_code == 200

            # CalDAV: no such user, a wrong password, a revoked one, another's password,
            # the admin token as a bearer or a password.
            for auth in [
                ("x", "wrong"),
                (user, "wrong-" + password),
                (user, revoked_issue["password"]),
                ("nobody", password),
                ("admin", ADMIN_TOKEN),
            ]:
                answer = client.request("PROPFIND", "/dav/x/", auth=auth, headers={"Depth": "0"})
                assert answer.status_code == 401
            bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Depth": "0"}
            assert client.request("PROPFIND", "/dav/ada/", headers=bearer).status_code == 401

            # The API: a wrong bearer token, one a character off, a Basic header.
            near = ADMIN_TOKEN[:-1] + ("x" if ADMIN_TOKEN[-1] != "x" else "y")
            used.append(near)
            for header in [f"Bearer {near}", "Bearer wrong", f"Basic {ADMIN_TOKEN}"]:
                answer = client.get(
                    f"/api/v1/providers/{provider}", headers={"Authorization": header}
                )
                assert answer.status_code in (401, 403)

            # Link tokens: expired, tampered, for another purpose, for no booking.
            now = datetime.now(UTC)
            links = {
                "approve": _link("approve", expires=now - timedelta(hours=1)),
                "decline": _tampered(_link("decline", expires=now + timedelta(days=1))),
                "reschedule": _link("approve", expires=now + timedelta(days=1)),
                "sign_in": _link("sign_in", expires=now - timedelta(minutes=1)),
            }
            fresh = _link("approve", expires=now + timedelta(days=1))
            links["fresh"] = fresh
            used += list(links.values())
            for path, param, token in [
                ("/approve", "t", links["approve"]),
                ("/approve", "t", fresh),
                ("/decline", "t", links["decline"]),
                ("/reschedule", "r", links["reschedule"]),
                ("/me/link", "t", links["sign_in"]),
                ("/me/link", "t", _tampered(links["sign_in"])),
            ]:
                got = client.get(path, params={param: token})
                assert got.status_code < 500, (path, got.status_code)
                posted = client.post(path, data={param: token})
                assert posted.status_code < 500, (path, posted.status_code)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("parley-*.log"))
    assert "Failed login attempt" in logs  # Radicale's warnings are in it
    assert "Logging level" in logs or "debug" in logs.lower()  # and it ran at debug level
    leaked = [value for value in used if value in logs]
    assert leaked == [], f"{len(leaked)} secrets found in the log"
