"""Two tenants side by side over HTTP: tenants, API keys, roles, and ids that cross over.

The roles matrix drives every admin endpoint with a key of every role: allowed calls must
not answer 401/403, refused ones answer 403 ``forbidden``; another tenant's ids are 404.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.runtime import Runtime
from tests.integration.api.helpers import HOURS, client_for, hold_body, make_provider

MON = "2027-03-08"
ACME = {"name": "Acme Clinic", "slug": "acme", "organizer_email": "desk@acme.example"}


def _bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


@pytest.fixture
def world(runtime: Runtime, admin_headers: dict[str, str]) -> dict[str, Any]:
    """The default tenant with anna, tenant acme with its own anna, and a key of each role."""
    client = client_for(runtime)
    made = client.post("/api/v1/tenants", json=ACME, headers=admin_headers)
    assert made.status_code == 201, made.text
    acme = made.json()
    as_acme = {**admin_headers, "X-Parley-Tenant": "acme"}
    home_anna = make_provider(client, admin_headers, "anna")
    acme_anna = make_provider(client, as_acme, "anna")
    keys = {}
    for role in ("owner", "manager", "staff", "viewer"):
        answer = client.post(f"/api/v1/tenants/{acme['id']}/api-keys", json={"role": role},
                             headers=admin_headers)  # fmt: skip
        assert answer.status_code == 201, answer.text
        assert answer.headers["cache-control"] == "no-store"
        keys[role] = answer.json()["key"]
    return {"client": client, "acme": acme, "home_anna": home_anna, "acme_anna": acme_anna,
            "keys": keys, "as_acme": as_acme}  # fmt: skip


def test_tenants_are_made_and_listed_by_the_system_token_only(
    world: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, acme = world["client"], world["acme"]
    assert acme["slug"] == "acme" and acme["organizer_email"] == "desk@acme.example"
    listed = client.get("/api/v1/tenants", headers=admin_headers).json()["items"]
    assert [t["slug"] for t in listed] == ["default", "acme"]
    owner = _bearer(world["keys"]["owner"])
    assert client.get("/api/v1/tenants", headers=owner).status_code == 403
    again = client.post("/api/v1/tenants", json=ACME, headers=admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "tenant_taken"
    bad = client.post("/api/v1/tenants", json={**ACME, "slug": "admin"}, headers=admin_headers)
    assert bad.status_code == 400
    unknown = client.get("/api/v1/bookings", headers={**admin_headers, "X-Parley-Tenant": "nope"})
    assert unknown.status_code == 404


def test_same_slug_in_two_tenants_gets_two_addresses(
    world: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, keys = world["client"], world["keys"]
    theirs = client.get(f"/api/v1/providers/{world['acme_anna']}", headers=_bearer(keys["viewer"]))
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["dav_username"] == "anna.acme"
    assert theirs.json()["booking_url"].endswith("/t/acme/book/anna")
    ours = client.get(f"/api/v1/providers/{world['home_anna']}", headers=admin_headers)
    assert ours.json()["dav_username"] == "anna"
    assert (
        ours.json()["booking_url"].endswith("/book/anna")
        and "/t/" not in ours.json()["booking_url"]
    )


def test_another_tenants_ids_are_not_found_never_forbidden(
    world: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, keys, home = world["client"], world["keys"], world["home_anna"]
    owner = _bearer(keys["owner"])
    for method, path, body in [
        ("GET", f"/api/v1/providers/{home}", None),
        ("GET", f"/api/v1/providers/{home}/availability", None),
        ("PUT", f"/api/v1/providers/{home}/availability", HOURS),
        ("POST", f"/api/v1/providers/{home}/sources", {"url": "http://127.0.0.1:9/c.ics"}),
        ("POST", f"/api/v1/providers/{home}/feed-token", {}),
        ("GET", f"/api/v1/providers/{home}/app-passwords", None),
    ]:
        answer = client.request(method, path, json=body, headers=owner)
        assert answer.status_code == 404, (path, answer.text)
    # A booking of the default tenant, reached with acme's key.
    hold = client.post("/api/v1/holds", json=hold_body(home, f"{MON}T09:00:00+01:00",
                                                      f"{MON}T09:30:00+01:00"))  # fmt: skip
    booking = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json={}).json()["booking"]
    for method, suffix in [("GET", ""), ("POST", "/cancel"), ("POST", "/approve")]:
        answer = client.request(method, f"/api/v1/bookings/{booking['id']}{suffix}", json={},
                                headers=owner)  # fmt: skip
        assert answer.status_code == 404, suffix
    assert client.get("/api/v1/bookings", headers=owner).json()["items"] == []
    ours = client.get("/api/v1/bookings", headers=admin_headers).json()["items"]
    assert [b["id"] for b in ours] == [booking["id"]]
    # A key of acme never lists the default tenant's providers, and the other way round.
    theirs = client.get("/api/v1/providers", headers=owner).json()["items"]
    assert [p["id"] for p in theirs] == [world["acme_anna"]]
    assert world["acme_anna"] not in [
        p["id"] for p in client.get("/api/v1/providers", headers=admin_headers).json()["items"]
    ]
    # Naming another tenant in the header does not widen a key.
    wider = client.get("/api/v1/providers", headers=_bearer(keys["owner"], **{
        "X-Parley-Tenant": "default"}))  # fmt: skip
    assert wider.status_code == 404


# (method, path template, body, the weakest role allowed)
MATRIX: list[tuple[str, str, Any, str]] = [
    ("GET", "/providers", None, "viewer"),
    ("GET", "/providers/{p}", None, "viewer"),
    ("GET", "/providers/{p}/availability", None, "viewer"),
    ("GET", "/bookings", None, "viewer"),
    ("GET", "/sources", None, "viewer"),
    ("GET", "/conflicts", None, "viewer"),
    ("GET", "/inbound-messages", None, "viewer"),
    ("GET", "/outbound-messages", None, "viewer"),
    ("GET", "/audit", None, "viewer"),
    ("GET", "/stats", None, "viewer"),
    ("GET", "/providers/{p}/app-passwords", None, "viewer"),
    ("POST", "/sources/{s}/sync", None, "staff"),
    ("POST", "/bookings/{b}/approve", None, "staff"),
    ("PUT", "/providers/{p}/availability", HOURS, "manager"),
    (
        "POST",
        "/providers",
        {"name": "N", "email": "n@acme.example", "timezone": "UTC", "slug": "new-{role}"},
        "manager",
    ),
    ("POST", "/providers/{p}/sources", {"url": "http://127.0.0.1:9/{role}.ics"}, "manager"),
    ("POST", "/providers/{p}/feed-token", {}, "manager"),
    ("POST", "/providers/{p}/app-passwords", {"label": "{role}"}, "manager"),
    ("POST", "/bookings/{b}/cancel", {}, "manager"),
    ("POST", "/outbound-messages/1/retry", None, "manager"),
    ("GET", "/tenants/{t}/api-keys", None, "owner"),
    ("POST", "/tenants/{t}/api-keys", {"role": "viewer"}, "owner"),
    ("GET", "/tenants", None, "system"),
    (
        "POST",
        "/tenants",
        {**ACME, "slug": "other-{role}", "organizer_email": "x-{role}@acme.example"},
        "system",
    ),
]
RANK = {"viewer": 0, "staff": 1, "manager": 2, "owner": 3, "system": 4}


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ["viewer", "staff", "manager", "owner"])
def test_roles_matrix(world: dict[str, Any], role: str) -> None:
    client, acme_anna = world["client"], world["acme_anna"]
    key = _bearer(world["keys"][role])
    as_acme = world["as_acme"]
    url = f"http://127.0.0.1:9/{role}-src.ics"
    source = client.post(
        f"/api/v1/providers/{acme_anna}/sources", json={"url": url}, headers=as_acme
    )
    assert source.status_code == 201, source.text
    names = {"p": acme_anna, "s": source.json()["id"], "t": world["acme"]["id"], "role": role}
    for method, template, body, weakest in MATRIX:
        if template.endswith("/approve") or template.endswith("/cancel"):
            names["b"] = _requested_booking(client, as_acme, acme_anna)
        path = "/api/v1" + _fill(template, names)
        answer = client.request(method, path, json=_fill(body, names), headers=key)
        allowed = RANK[role] >= RANK[weakest]
        if allowed:
            assert answer.status_code not in (401, 403), (role, method, path, answer.text)
        else:
            assert answer.status_code == 403, (role, method, path, answer.text)
            assert answer.json()["error"]["code"] == "forbidden"


def _requested_booking(client: Any, headers: dict[str, str], provider: str) -> str:
    """A request to book (instant book off) of acme's anna, a new hour each time."""
    off = client.put(f"/api/v1/providers/{provider}/availability",
                     json={**HOURS, "instant_book": False}, headers=headers)  # fmt: skip
    assert off.status_code == 200, off.text
    for day in range(8, 13):
        for hour in range(9, 17):
            start, end = (
                f"2027-03-{day:02}T{hour:02}:00:00+01:00",
                f"2027-03-{day:02}T{hour:02}:30:00+01:00",
            )
            hold = client.post("/api/v1/holds", json=hold_body(provider, start, end))
            if hold.status_code == 201:
                done = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm", json={})
                assert done.status_code == 201, done.text
                booking_id: str = done.json()["booking"]["id"]
                return booking_id
    raise AssertionError("no free slot left")


def test_a_limited_manager_sees_only_its_providers_and_a_revoked_key_stops(
    world: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, acme = world["client"], world["acme"]
    other = make_provider(client, world["as_acme"], "bert")
    owner = _bearer(world["keys"]["owner"])
    made = client.post(f"/api/v1/tenants/{acme['id']}/api-keys",
                       json={"role": "manager", "providers": [world["acme_anna"]], "label": "anna"},
                       headers=owner)  # fmt: skip
    assert made.status_code == 201, made.text
    limited = _bearer(made.json()["key"])
    assert client.get(f"/api/v1/providers/{world['acme_anna']}", headers=limited).status_code == 200
    assert client.get(f"/api/v1/providers/{other}", headers=limited).status_code == 404
    listed = client.get("/api/v1/providers", headers=limited).json()["items"]
    assert [p["id"] for p in listed] == [world["acme_anna"]]
    new = {"name": "C", "email": "c@acme.example", "timezone": "UTC", "slug": "cleo"}
    assert client.post("/api/v1/providers", json=new, headers=limited).status_code == 403
    foreign = client.post(f"/api/v1/tenants/{acme['id']}/api-keys",
                          json={"role": "viewer", "providers": [world["home_anna"]]},
                          headers=owner)  # fmt: skip
    assert foreign.status_code == 404  # another tenant's provider cannot be granted

    keys = client.get(f"/api/v1/tenants/{acme['id']}/api-keys", headers=owner).json()["items"]
    assert all("key" not in k and "key_hash" not in k for k in keys)
    revoked = client.delete(f"/api/v1/tenants/{acme['id']}/api-keys/{made.json()['id']}",
                            headers=owner)  # fmt: skip
    assert revoked.status_code == 204
    assert client.get("/api/v1/providers", headers=limited).status_code == 401
    other_tenant = client.get("/api/v1/tenants/default/api-keys", headers=owner)
    assert other_tenant.status_code == 404
    assert client.get("/api/v1/providers", headers=_bearer("prl.default.forged")).status_code == 401


def test_a_tenants_bookings_mail_and_audit_stay_in_that_tenant(
    world: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, acme_anna = world["client"], world["acme_anna"]
    viewer = _bearer(world["keys"]["viewer"])
    # The same idempotency key in two tenants names two holds.
    for provider in (acme_anna, world["home_anna"]):
        body = hold_body(provider, f"{MON}T11:00:00+01:00", f"{MON}T11:30:00+01:00")
        made = client.post("/api/v1/holds", json={**body, "idempotency_key": "same-key"})
        assert made.status_code == 201, made.text
        assert made.json()["provider_id"] == provider
        done = client.post(f"/api/v1/holds/{made.json()['id']}/confirm", json={})
        assert done.status_code == 201, done.text
    theirs = client.get("/api/v1/bookings", headers=viewer).json()["items"]
    ours = client.get("/api/v1/bookings", headers=admin_headers).json()["items"]
    assert [b["provider_id"] for b in theirs] == [acme_anna]
    assert [b["provider_id"] for b in ours] == [world["home_anna"]]
    their_mail = client.get("/api/v1/outbound-messages", headers=viewer).json()["items"]
    assert {m["booking_id"] for m in their_mail} == {theirs[0]["id"]}
    our_mail = client.get("/api/v1/outbound-messages", headers=admin_headers).json()["items"]
    assert {m["booking_id"] for m in our_mail} == {ours[0]["id"]}
    their_audit = client.get("/api/v1/audit", headers=viewer).json()["items"]
    assert {e["subject_id"] for e in their_audit} >= {theirs[0]["id"], acme_anna}
    assert ours[0]["id"] not in {e["subject_id"] for e in their_audit}


def test_two_annas_each_book_on_their_own_page(
    world: dict[str, Any], admin_headers: dict[str, str]
) -> None:
    client, as_acme = world["client"], world["as_acme"]
    ours = client.get("/book/anna", params={"tz": "UTC", "from": MON})
    theirs = client.get("/t/acme/book/anna", params={"tz": "UTC", "from": MON})
    assert ours.status_code == theirs.status_code == 200
    assert 'action="/t/acme/book/anna/hold"' in theirs.text
    assert 'action="/book/anna/hold"' in ours.text
    for missing in ("/t/default/book/anna", "/t/nope/book/anna", "/t/acme/book/bert"):
        assert client.get(missing).status_code == 404, missing

    start = re.findall(r'data-start="([^"]+)"', theirs.text)[0]
    end = re.search(rf'value="{re.escape(start)}">\s*<input type="hidden" name="end" '
                    r'value="([^"]+)"', theirs.text)  # fmt: skip
    assert end is not None
    held = client.post("/t/acme/book/anna/hold", data={"start": start, "end": end[1], "tz": "UTC"},
                       follow_redirects=False)  # fmt: skip
    assert held.status_code == 303 and held.headers["location"].startswith(
        "/t/acme/book/anna/hold/"
    )
    hold_path = held.headers["location"].split("?", 1)[0]
    assert client.get(hold_path).status_code == 200
    assert client.get(hold_path.replace("/t/acme", "")).status_code == 404  # not the other anna's
    done = client.post(hold_path, data={"name": "Grace", "email": "grace@example.net", "tz": "UTC"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/t/acme/book/anna/done/"
    )
    assert client.get(done.headers["location"]).status_code == 200
    theirs_listed = client.get("/api/v1/bookings", headers=as_acme).json()["items"]
    assert [b["provider_id"] for b in theirs_listed] == [world["acme_anna"]]
    assert client.get("/api/v1/bookings", headers=admin_headers).json()["items"] == []
