"""The sources API: validation, limits, SSRF refusal, encrypted credentials, 4xx JSON errors."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from caldav_bridge.importers.http_ics import normalize_url, refusal_reason
from core.crypto import seal, unseal
from core.db.models import ExternalSource
from core.errors import CannotDecrypt
from core.runtime import Runtime
from core.services.sync import SyncPolicy, error_backoff, next_interval, poll_delay
from tests.integration.sync.conftest import TestClient, add_source, make_provider
from web.app import create_app


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "ftp://example.com/cal.ics"}, 400, "invalid_source"),
        ({"url": "not a url"}, 400, "invalid_source"),
        ({"url": "https://user:pw@example.com/cal.ics"}, 400, "invalid_source"),
        ({"url": "https://example.com/c.ics", "kind": "exchange"}, 400, "invalid_request"),
        ({"url": "https://example.com/c.ics", "platform": "myspace"}, 400, "invalid_source"),
        ({"url": "https://example.com/c.ics", "priority": 0}, 400, "invalid_request"),
        ({"url": "https://example.com/c.ics", "password": "x"}, 400, "invalid_source"),
        ({"url": "webcal://example.com/c.ics", "kind": "caldav"}, 400, "invalid_source"),
        ({"url": 42}, 400, "invalid_request"),
        ({"url": "https://example.com/c.ics", "extra": 1}, 400, "invalid_request"),
    ],
)
def test_bad_input_is_a_4xx_json_error(
    api: TestClient, admin_headers: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    provider = make_provider(api, admin_headers, "val")
    answer = api.post(f"/api/v1/providers/{provider}/sources", json=body, headers=admin_headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_auth_unknown_ids_limits_and_duplicates(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str]
) -> None:
    provider = make_provider(api, admin_headers, "lim")
    path = f"/api/v1/providers/{provider}/sources"
    assert api.post(path, json={"url": "https://example.com/a.ics"}).status_code == 401
    missing = api.post("/api/v1/providers/prv_nope/sources", json={"url": "https://e.com/a"},
                       headers=admin_headers)  # fmt: skip
    assert missing.status_code == 404
    assert api.get("/api/v1/sources/src_nope", headers=admin_headers).status_code == 404
    assert api.delete("/api/v1/sources/src_nope", headers=admin_headers).status_code == 404
    assert api.post("/api/v1/sources/src_nope/sync", headers=admin_headers).status_code == 404
    first = add_source(api, admin_headers, provider, "webcal://example.com/0.ics")
    shown = api.get(f"/api/v1/sources/{first}", headers=admin_headers).json()
    assert shown["url"] == "https://example.com/0.ics" and shown["status"] == "pending"
    assert shown["kind"] == "ics" and shown["events"] == 0 and shown["platform"] == "generic_ics"
    again = api.post(path, json={"url": "https://example.com/0.ics"}, headers=admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_source"
    for n in range(1, runtime.settings.max_sources_per_provider):
        add_source(api, admin_headers, provider, f"https://example.com/{n}.ics")
    over = api.post(path, json={"url": "https://example.com/x.ics"}, headers=admin_headers)
    assert over.status_code == 409 and over.json()["error"]["code"] == "source_limit"
    assert api.delete(f"/api/v1/sources/{first}", headers=admin_headers).status_code == 204
    assert api.get(f"/api/v1/sources/{first}", headers=admin_headers).status_code == 404


def test_caldav_password_is_encrypted_at_rest(
    runtime: Runtime, api: TestClient, admin_headers: dict[str, str]
) -> None:
    provider = make_provider(api, admin_headers, "dav")
    source = add_source(api, admin_headers, provider, "https://dav.example.com/cal/",
                        kind="caldav", username="ana", password="s3cret-pass")  # fmt: skip
    with runtime.sessions() as session:
        row = session.scalars(select(ExternalSource).where(ExternalSource.id == source)).one()
        assert row.secret_encrypted is not None and b"s3cret" not in row.secret_encrypted
        assert unseal(runtime.secrets.secret_key, row.secret_encrypted) == "s3cret-pass"
    shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).text
    assert "s3cret" not in shown
    with pytest.raises(CannotDecrypt):
        unseal(b"another key", row.secret_encrypted)
    with pytest.raises(CannotDecrypt):
        unseal(runtime.secrets.secret_key, seal(runtime.secrets.secret_key, "x")[:-3] + b"AAA")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/feed.ics",
        "http://localhost/feed.ics",
        "http://10.1.2.3/feed.ics",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed.ics",
        "http://[::ffff:192.168.0.1]/feed.ics",
        "webcal://192.168.1.20/feed.ics",
    ],
)
def test_private_addresses_are_refused(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], url: str
) -> None:
    runtime.settings = make_settings(
        database_url=runtime.settings.database_url, import_allow_private=False
    )
    with TestClient(create_app(runtime.settings, runtime=runtime)) as api:
        provider = make_provider(api, admin_headers, "ssrf")
        answer = api.post(
            f"/api/v1/providers/{provider}/sources", json={"url": url}, headers=admin_headers
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "url_refused"
    assert refusal_reason(url, allow_private=True) is None


def test_url_helpers() -> None:
    assert normalize_url(" webcal://a.example/x.ics ") == "https://a.example/x.ics"
    assert normalize_url("http://a.example/x.ics") == "http://a.example/x.ics"
    assert refusal_reason("gopher://a.example/", allow_private=True) is not None
    assert refusal_reason("http:///nohost", allow_private=True) is not None


def test_polling_cadence() -> None:
    policy = SyncPolicy(secret_key=b"k", rng=random.Random(7))
    hour = timedelta(hours=1)
    assert next_interval(hour, True, policy) == timedelta(minutes=30)
    assert next_interval(timedelta(minutes=20), True, policy) == timedelta(minutes=15)
    assert next_interval(hour, False, policy) == timedelta(minutes=90)
    # A quiet source backs off to half the stale limit (3 h), never to the 6 h maximum.
    assert next_interval(timedelta(hours=5), False, policy) == timedelta(minutes=90)
    lenient = SyncPolicy(secret_key=b"k", stale_after=timedelta(hours=24))
    assert next_interval(timedelta(hours=5), False, lenient) == timedelta(hours=6)
    quiet = [poll_delay(hour, 9, policy) for _ in range(50)]
    peak = [poll_delay(hour, 15, policy) for _ in range(50)]
    assert all(timedelta(minutes=54) <= d <= timedelta(minutes=66) for d in quiet)
    assert all(timedelta(minutes=27) <= d <= timedelta(minutes=33) for d in peak)
    assert len(set(quiet)) > 1  # jitter spreads sources that were added together
    backoffs = [error_backoff(n, policy) for n in range(1, 12)]
    assert backoffs[0] < timedelta(minutes=3) and backoffs[3] > timedelta(minutes=12)
    assert max(backoffs) <= timedelta(hours=6) * 1.2


def test_freshness_gate(runtime: Runtime, api: TestClient, admin_headers: dict[str, str]) -> None:
    from core.services.freshness import instant_book_allowed

    provider = make_provider(api, admin_headers, "fresh")
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    limit = timedelta(minutes=runtime.settings.source_stale_minutes)
    with runtime.sessions() as session:
        assert instant_book_allowed(session, provider, now, stale_after=limit) == (True, None)
    source = add_source(api, admin_headers, provider, "https://example.com/a.ics",
                        platform="airbnb")  # fmt: skip
    with runtime.sessions.begin() as session:
        allowed, why = instant_book_allowed(session, provider, now, stale_after=limit)
        assert not allowed and why == "instant book paused: Airbnb calendar not synced yet"
        row = session.get(ExternalSource, source)
        assert row is not None
        row.last_success_at = now - timedelta(hours=3, minutes=5)
    with runtime.sessions() as session:
        allowed, why = instant_book_allowed(session, provider, now, stale_after=limit)
        assert not allowed and why == "instant book paused: Airbnb calendar not synced for 3 h"
        later = instant_book_allowed(session, provider, now + timedelta(hours=2), stale_after=limit)
        assert later[1] is not None and later[1].endswith("for 5 h")
        fresh = now - timedelta(hours=2)
    with runtime.sessions.begin() as session:
        row = session.get(ExternalSource, source)
        assert row is not None
        row.last_success_at = fresh
    with runtime.sessions() as session:
        assert instant_book_allowed(session, provider, now, stale_after=limit) == (True, None)
