"""Operators over the API and their sign-in at /admin by an emailed single-use link."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db.models import MagicLink, OutboundMessage, WebSession
from core.runtime import Runtime
from tests.integration.api.helpers import client_for, make_provider
from tests.integration.console.helpers import (
    add_operator,
    console_links,
    make_tenant,
    redeem,
    request_link,
    sign_in,
)
from tests.integration.me.helpers import csrf_of, sign_in_links
from tests.integration.me.helpers import request_link as request_me_link
from web.pages.admin_common import COOKIE


def _count(runtime: Runtime, model: type) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_operators_are_added_listed_and_removed_by_the_owner(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    acme = make_tenant(client, admin_headers)
    other = make_tenant(client, admin_headers, slug="other", organizer_email="o@other.example")
    owner = add_operator(client, admin_headers, acme, "Boss@Acme.example", "owner")
    assert owner["email"] == "boss@acme.example" and owner["role"] == "owner"
    keys = {}
    for role in ("owner", "manager"):
        made = client.post(f"/api/v1/tenants/{acme}/api-keys", json={"role": role},
                           headers=admin_headers)  # fmt: skip
        keys[role] = {"Authorization": f"Bearer {made.json()['key']}"}
    path = f"/api/v1/tenants/{acme}/operators"
    staff = client.post(path, json={"email": "desk@acme.example", "role": "staff"},
                        headers=keys["owner"])  # fmt: skip
    assert staff.status_code == 201, staff.text
    refused = client.post(path, json={"email": "x@acme.example", "role": "viewer"},
                          headers=keys["manager"])  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    again = client.post(path, json={"email": "DESK@acme.example", "role": "viewer"},
                        headers=keys["owner"])  # fmt: skip
    assert again.status_code == 409 and again.json()["error"]["code"] == "operator_exists"
    bad = client.post(path, json={"email": "y@acme.example", "role": "boss"}, headers=keys["owner"])
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_role"
    assert client.post(path, json={"email": "nope", "role": "viewer"},
                       headers=keys["owner"]).status_code == 400  # fmt: skip
    crossing = client.post(f"/api/v1/tenants/{other}/operators",
                           json={"email": "z@acme.example", "role": "viewer"},
                           headers=keys["owner"])  # fmt: skip
    assert crossing.status_code == 404
    listed = client.get(path, headers=keys["owner"]).json()["items"]
    assert sorted(o["email"] for o in listed) == ["boss@acme.example", "desk@acme.example"]
    assert (
        client.get(f"/api/v1/tenants/{other}/operators", headers=keys["owner"]).status_code == 404
    )
    assert client.get(path, headers=keys["manager"]).status_code == 403

    sign_in(client, runtime, "desk@acme.example")
    gone = client.delete(f"{path}/{staff.json()['id']}", headers=keys["owner"])
    assert gone.status_code == 204
    assert client.get("/admin", follow_redirects=False).text.count('id="figures"') == 0
    assert (
        client.get("/admin/mail", follow_redirects=False).headers["location"] == "/admin?expired=1"
    )
    assert _count(runtime, WebSession) == 0
    assert client.delete(f"{path}/{staff.json()['id']}", headers=keys["owner"]).status_code == 404
    other_owner = add_operator(client, admin_headers, other, "boss@other.example", "owner")
    cross_delete = client.delete(f"{path}/{other_owner['id']}", headers=keys["owner"])
    assert cross_delete.status_code == 404


def test_the_emailed_link_signs_in_only_when_its_button_is_pressed(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    acme = make_tenant(client, admin_headers)
    add_operator(client, admin_headers, acme, "ops@acme.example", "viewer")
    assert "Email me a sign-in link" in client.get("/admin").text
    before = _count(runtime, OutboundMessage)
    unknown = request_link(client, "nobody@acme.example")
    assert _count(runtime, OutboundMessage) == before
    known = request_link(client, "OPS@acme.example")
    assert unknown.replace("nobody@acme.example", "X") == known.replace("OPS@acme.example", "X")
    [token] = console_links(runtime, "ops@acme.example")
    with runtime.sessions() as session:
        mail = session.scalars(select(OutboundMessage)).one()
    assert mail.tenant_id == acme

    page = client.get(f"/admin/link?t={token}")
    assert page.status_code == 200 and "ops@acme.example (Acme Clinic)" in page.text
    client.get(f"/admin/link?t={token}")  # a mail scanner opening it twice changes nothing
    with runtime.sessions() as session:
        link = session.scalars(select(MagicLink)).one()
    assert link.used_at is None and _count(runtime, WebSession) == 0
    done = client.post("/admin/link", data={"csrf": csrf_of(page.text), "t": token},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/admin"
    cookie = done.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "Path=/admin" in cookie
    overview = client.get("/admin").text
    assert "ops@acme.example · viewer of Acme Clinic" in overview
    assert redeem(client_for(runtime, runtime.clock), token) == 410  # type: ignore[arg-type]


def test_provider_links_and_operator_links_do_not_cross(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    add_operator(client, admin_headers, "default", "ada@example.org", "viewer")
    request_me_link(client, "ada@example.org")
    [provider_token] = sign_in_links(runtime, "ada@example.org")
    assert client.get(f"/admin/link?t={provider_token}").status_code == 404
    request_link(client, "ada@example.org")
    [operator_token] = console_links(runtime, "ada@example.org")
    assert client.get(f"/me/link?t={operator_token}").status_code == 404
    assert redeem(client, operator_token) == 303
    # The console session opens no provider page, and the provider's pages work as before.
    assert client.get("/me/availability", follow_redirects=False).status_code == 303
    other = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    other.cookies.set("parley_session", client.cookies.get(COOKIE) or "", path="/me")
    assert other.get("/me/bookings", follow_redirects=False).status_code == 303


def test_console_forms_need_their_csrf_token_and_sign_out_ends_the_session(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    add_operator(client, admin_headers, "default", "ops@example.org", "owner")
    anonymous = client_for(runtime, runtime.clock)  # type: ignore[arg-type]
    assert anonymous.post("/admin/sign-in", data={"email": "ops@example.org"}).status_code == 403
    sign_in(client, runtime, "ops@example.org")
    for data in ({}, {"csrf": "x" * 64}):
        assert client.post("/admin/sign-out", data=data).status_code == 403
        assert client.post("/admin/mail/out/1/retry", data=data).status_code == 403
    assert 'id="figures"' in client.get("/admin").text
    csrf = csrf_of(client.get("/admin").text)
    out = client.post("/admin/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/admin/audit", follow_redirects=False).status_code == 303


def test_sign_in_requests_share_the_rate_limit(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"sign_in_per_address_per_hour": 2})
    client = client_for(runtime)
    add_operator(client, admin_headers, "default", "ops@example.org", "owner")
    request_link(client, "ops@example.org")
    request_me_link(client, "ops@example.org")  # /me counts against the same address budget
    page = client.get("/admin")
    third = client.post("/admin/sign-in", data={"csrf": csrf_of(page.text),
                                                "email": "ops@example.org"})  # fmt: skip
    assert third.status_code == 429 and "Too many" in third.text
    assert len(console_links(runtime, "ops@example.org")) == 1
