"""Sign-in by emailed link, sessions, CSRF and rate limits of the provider pages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.db.models import MagicLink, OutboundMessage, WebSession
from core.runtime import Runtime
from core.tokens import token_hash
from tests.integration.api.helpers import Clock, client_for, make_provider
from tests.integration.me.helpers import csrf_of, redeem, request_link, sign_in, sign_in_links
from web.app import create_app
from web.pages.me_common import COOKIE


def _outbox_count(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return len(session.scalars(select(OutboundMessage.id)).all())


def test_link_signs_in_with_a_locked_down_cookie(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    assert "Email me a sign-in link" in client.get("/me").text
    request_link(client, "ADA@example.org")
    [token] = sign_in_links(runtime, "ada@example.org")
    with runtime.sessions() as session:
        link = session.scalars(select(MagicLink).where(MagicLink.purpose == "sign_in")).one()
    assert link.token_hash != token and token not in link.token_hash
    assert link.expires_at - link.created_at == timedelta(minutes=15)
    assert link.booking_id is None and link.provider_id is not None
    page = client.get(f"/me/link?t={token}")
    assert "Sign in as Ada Host?" in page.text
    done = client.post(
        "/me/link", data={"csrf": csrf_of(page.text), "t": token}, follow_redirects=False
    )
    assert done.status_code == 303
    cookie = done.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/me" in cookie and "Secure" not in cookie
    assert "Hello, Ada Host" in client.get("/me").text
    with runtime.sessions() as session:
        stored = session.scalars(select(WebSession)).one()
    assert stored.token_hash != client.cookies.get(COOKIE)


def test_cookie_is_secure_behind_https(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    runtime.settings = runtime.settings.model_copy(update={"base_url": "https://parley.example"})
    client = client_for(runtime)
    client.base_url = "https://testserver"  # type: ignore[assignment]
    make_provider(client, admin_headers, slug="ada")
    request_link(client, "ada@example.org")
    token = sign_in_links(runtime, "ada@example.org")[-1]
    page = client.get(f"/me/link?t={token}")
    done = client.post(
        "/me/link", data={"csrf": csrf_of(page.text), "t": token}, follow_redirects=False
    )
    assert "Secure" in done.headers["set-cookie"]


def test_unknown_address_gets_the_same_answer(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    before = _outbox_count(runtime)
    unknown = request_link(client, "nobody@example.org")
    assert _outbox_count(runtime) == before
    known = request_link(client, "ada@example.org")
    assert _outbox_count(runtime) == before + 1
    assert unknown.replace("nobody@example.org", "X") == known.replace("ada@example.org", "X")


def test_link_reuse_is_refused(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    request_link(client, "ada@example.org")
    token = sign_in_links(runtime, "ada@example.org")[-1]
    assert redeem(client, token) == 303
    other = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    page = other.get(f"/me/link?t={token}")
    assert page.status_code == 410 and "already been used" in page.text
    assert other.get("/me/availability", follow_redirects=False).status_code == 303


def test_expired_and_tampered_links(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    clock = Clock()
    client = client_for(runtime, clock)
    make_provider(client, admin_headers, slug="ada")
    request_link(client, "ada@example.org")
    token = sign_in_links(runtime, "ada@example.org")[-1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert client.get(f"/me/link?t={tampered}").status_code == 404
    assert client.get("/me/link?t=").status_code == 404
    clock.now += timedelta(minutes=15, seconds=1)
    page = client.get(f"/me/link?t={token}")
    assert page.status_code == 410 and "expired" in page.text


def test_csrf_missing_or_wrong_is_403(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    anonymous = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    assert anonymous.post("/me/sign-in", data={"email": "ada@example.org"}).status_code == 403
    assert (
        anonymous.post("/me/sign-in", data={"email": "a@b.org", "csrf": "x" * 32}).status_code
        == 403
    )
    sign_in(client, runtime, "ada@example.org")
    good = csrf_of(client.get("/me/availability").text)
    for data in ({}, {"csrf": ""}, {"csrf": good[:-1] + ("1" if good.endswith("0") else "0")}):
        for path in (
            "/me/availability",
            "/me/connect/app-passwords",
            "/me/sign-out",
            "/me/calendars",
        ):
            answer = client.post(path, data=data)
            assert answer.status_code == 403, (path, data)
    assert "Hello" in client.get("/me").text  # the refused sign-out changed nothing


def test_revoked_and_signed_out_sessions_stop_working(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    phone = client_for(runtime)
    make_provider(phone, admin_headers, slug="ada")
    laptop = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    sign_in(phone, runtime, "ada@example.org")
    sign_in(laptop, runtime, "ada@example.org")
    page = phone.get("/me/sessions")
    with runtime.sessions() as session:
        rows = session.scalars(select(WebSession).order_by(WebSession.created_at)).all()
    assert len(rows) == 2 and page.text.count("/revoke") == 2
    phone_hash = token_hash(phone.cookies.get(COOKIE) or "")
    laptop_session = next(r for r in rows if r.token_hash != phone_hash)
    revoked = phone.post(
        f"/me/sessions/{laptop_session.id}/revoke", data={"csrf": csrf_of(page.text)}
    )
    assert revoked.status_code == 200 and "Session signed out" in revoked.text
    assert (
        laptop.get("/me/availability", follow_redirects=False).headers["location"]
        == "/me?expired=1"
    )
    old_cookie = phone.cookies.get(COOKIE)
    out = phone.post(
        "/me/sign-out", data={"csrf": csrf_of(phone.get("/me").text)}, follow_redirects=False
    )
    assert out.status_code == 303
    replay = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    replay.cookies.set(COOKIE, old_cookie or "", path="/me")
    assert replay.get("/me/bookings", follow_redirects=False).status_code == 303


def test_sign_in_requests_are_rate_limited(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    runtime.settings = runtime.settings.model_copy(update={"sign_in_per_address_per_hour": 2})
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    request_link(client, "ada@example.org")
    request_link(client, "ada@example.org")
    page = client.get("/me")
    third = client.post(
        "/me/sign-in", data={"csrf": csrf_of(page.text), "email": "ada@example.org"}
    )
    assert third.status_code == 429 and "Too many" in third.text
    assert len(sign_in_links(runtime, "ada@example.org")) == 2
    bad = client.post("/me/sign-in", data={"csrf": csrf_of(page.text), "email": "not an address"})
    assert bad.status_code == 400 and "Enter an email address" in bad.text


def test_app_is_built_with_the_provider_routes(runtime: Runtime) -> None:
    paths = {getattr(r, "path", "") for r in create_app(runtime.settings, runtime=runtime).routes}
    assert {"/me", "/me/link", "/me/availability", "/me/calendars", "/me/connect"} <= paths
